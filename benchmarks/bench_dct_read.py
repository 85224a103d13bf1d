"""Reading JPEG files for a network, one core: coefficients (dnnjpeg's compiled reader, jpeglib)
against pixels (Pillow's full decode, Pillow's draft() reduced decode), in one run.

Files are read into memory first (the disk is not measured); each reader's files/s is the best of
``--repeat`` passes over all of them, in one process with one thread.

    .venv/bin/python benchmarks/bench_dct_read.py ../shared/data/imagenet-sample ../shared/data/cifar10/test --n 1000
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from dnnjpeg.dct.planes import planes_from_bytes  # noqa: E402
from dnnjpeg.dct.read import decode_coefficients, decode_flat  # noqa: E402


def _pillow(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _draft(data: bytes, scale: int) -> np.ndarray:
    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (max(1, im.width // scale), max(1, im.height // scale)))
    return np.asarray(im.convert("RGB"))


def _readers(datas: list[bytes], paths: list[str]) -> dict:
    import jpeglib

    return {
        "dnnjpeg coefficients (compiled reader)": lambda i: decode_coefficients(datas[i]),
        # the same without libjpeg's verdict: what it costs (dnnjpeg skips it only for its own encodes)
        "dnnjpeg coefficients, no libjpeg verdict": lambda i: decode_flat(datas[i], verify=False),
        # each file's own layout (4:2:2 and others resampled to 4:2:0)
        "dnnjpeg planes (reader + dequantize + channels)": lambda i: planes_from_bytes(datas[i], "<bench>", "file"),
        "jpeglib read_dct": lambda i: jpeglib.read_dct(paths[i]).Y,
        "Pillow full decode (RGB)": lambda i: _pillow(datas[i]),
        "Pillow draft 1/2": lambda i: _draft(datas[i], 2),
        "Pillow draft 1/8 (DC only)": lambda i: _draft(datas[i], 8),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    for folder in a.folders:
        files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))[: a.n]
        datas = [p.read_bytes() for p in files]
        tmp = Path(tempfile.mkdtemp())
        paths = []  # jpeglib reads paths: the same bytes in a tmpfs-backed folder when /tmp is one
        for i, d in enumerate(datas):
            q = tmp / f"{i}.jpg"
            q.write_bytes(d)
            paths.append(str(q))
        mpx = np.mean([decode_coefficients(d).width * decode_coefficients(d).height for d in datas[:50]]) / 1e6
        readers = _readers(datas, paths)
        print(f"{folder}: {len(datas)} files, {mpx:.3f} Mpx mean")
        for name, fn in readers.items():
            fn(0)
            best = 0.0
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                for i in range(len(datas)):
                    fn(i)
                best = max(best, len(datas) / (time.perf_counter() - t0))
            print(f"  {name:>48}: {best:8.0f} files/s ({1000 / best:.3f} ms/file)")


if __name__ == "__main__":
    main()
