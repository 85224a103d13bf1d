"""Runs every reader over the files named on its command line; one JSON line per file and reader.

Started by tests/test_fuzz_corpus.py in a subprocess per chunk of the corpus, so that a crash
(a segfault in a compiled decoder) fails the test instead of ending the test run.
"""

from __future__ import annotations

import json
import sys


def main(paths: list[str]) -> None:
    from dnnjpeg.codec import JpegError, load_image, parse_header, read_coefficients
    from dnnjpeg.codec.strict import libjpeg_check
    from dnnjpeg.dct.planes import load_planes
    from dnnjpeg.dct.read import read_coefficients_fast

    readers = {
        "header": parse_header,
        "pixels": load_image,
        "coefficients": read_coefficients,
        "coefficients_fast": read_coefficients_fast,
        "planes": load_planes,
    }
    for p in paths:
        is_jpeg = False
        try:
            with open(p, "rb") as f:
                data = f.read()
            is_jpeg = data[:2] == b"\xff\xd8"
            libjpeg_check(data, p)
            flagged = None
        except Exception as e:  # noqa: BLE001 — the oracle's verdict, whatever it is
            flagged = f"{type(e).__name__}: {e}"
        for name, read in readers.items():
            try:
                read(p)
                kind, msg = "ok", ""
            except (JpegError, OSError) as e:
                kind, msg = "error", f"{type(e).__name__}: {e}"
            except Exception as e:  # noqa: BLE001 — a bare exception is what the test looks for
                kind, msg = "bare", f"{type(e).__name__}: {e}"
            print(json.dumps({"path": p, "reader": name, "kind": kind, "message": msg[:300],
                              "libjpeg": flagged, "jpeg": is_jpeg}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
