"""Soft-decision quantization for PSNR (the control of the SDQ issue): the trellis against the ladder on Kodak.

For each image: the IJG ladder (optimized Huffman) at several qualities, and `sdq_encode` with
unit weights (plain MSE) from the quality-85 tables at λ = 3…300 (one curve); BD-rate on PSNR
(bjontegaard, Akima) of SDQ's points against the ladder's, and the mean over images.

    .venv/bin/python benchmarks/bench_sdq.py ../shared/data/kodak --images 6
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import bjontegaard as bd
import numpy as np
from PIL import Image

from dnnjpeg.codec import QuantTables, decode, encode
from dnnjpeg.sdq import sdq_encode

LADDER = (30, 40, 50, 60, 70, 80, 90)
SDQ = [(85, lam) for lam in (3.0, 10.0, 30.0, 100.0, 300.0)]


def _psnr(a, b) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--images", type=int, default=24)
    a = ap.parse_args()
    paths = sorted(Path(a.data).glob("*.png"))[: a.images]
    rates, seconds = [], []
    for p in paths:
        img = np.asarray(Image.open(p).convert("RGB"))
        px = img.shape[0] * img.shape[1]
        lad = [encode(img, QuantTables.standard(q), "4:2:0", True) for q in LADDER]
        r1 = [8 * len(d) / px for d in lad]
        p1 = [_psnr(decode(d), img) for d in lad]
        r2, p2 = [], []
        for q, lam in SDQ:
            t0 = time.perf_counter()
            d, _ = sdq_encode(img, QuantTables.standard(q), lam)
            seconds.append(time.perf_counter() - t0)
            r2.append(8 * len(d) / px)
            p2.append(_psnr(decode(d), img))
        o = np.argsort(r2)
        rate = bd.bd_rate(r1, p1, list(np.array(r2)[o]), list(np.array(p2)[o]), method="akima",
                          require_matching_points=False)  # fmt: skip
        rates.append(rate)
        print(f"{p.name}: BD-rate on PSNR {rate:+.1f}%", flush=True)
    print(f"mean over {len(rates)} images: {np.mean(rates):+.1f}% (min {min(rates):+.1f}, max {max(rates):+.1f}); "
          f"sdq_encode {np.mean(seconds):.2f} s per image (768×512, 2 passes, one process)")  # fmt: skip


if __name__ == "__main__":
    main()
