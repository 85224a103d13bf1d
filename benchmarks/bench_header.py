"""Header parses per second on a folder of JPEGs (default: ../shared/data/imagenet-sample).

Compares dnnjpeg.codec.parse_header (plus quality estimation) with Pillow's lazy
Image.open (header only, no decode) and with reading every file's DCT
coefficients (dnnjpeg.codec.read_coefficients, jpeglib underneath).
Warm page cache: each method runs once untimed first.

    .venv/bin/python benchmarks/bench_header.py [DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image

from dnnjpeg.codec import estimate_quality, parse_header, read_coefficients


def _rate(fn, files, repeat):
    for f in files:  # warm-up: page cache and imports
        fn(f)
    t0 = time.perf_counter()
    for _ in range(repeat):
        for f in files:
            fn(f)
    return repeat * len(files) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenet-sample"))
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    files = sorted(p for p in Path(a.dir).iterdir() if p.is_file())

    def ours(f):
        estimate_quality(parse_header(f))

    def pillow(f):
        with Image.open(f) as im:
            im.quantization, im.layer  # noqa: B018

    r_ours = _rate(ours, files, a.repeat)
    r_pil = _rate(pillow, files, a.repeat)
    r_coef = _rate(read_coefficients, files, 1)
    print(f"files: {len(files)} from {a.dir}")
    print(f"dnnjpeg parse_header + quality : {r_ours:10.0f} files/s (1 core)")
    print(f"Pillow Image.open (lazy header): {r_pil:10.0f} files/s  -> dnnjpeg {r_ours / r_pil:.1f}x")
    print(f"read_coefficients (jpeglib)    : {r_coef:10.0f} files/s  -> dnnjpeg {r_ours / r_coef:.0f}x")


if __name__ == "__main__":
    main()
