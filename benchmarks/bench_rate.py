"""Fit the rate model on design-split images and report its error on eval-split images.

    .venv/bin/python benchmarks/bench_rate.py --fit-images 120 --test-images 120 --write

For each subsampling: random crops (96..320 px a side) of imagenet-sample images, each
encoded with the 12-point IJG ladder and 12 random tables (smooth profiles on Annex K
and sorted-random tables); features from the exact differentiable codec, targets the
real Pillow optimize=True sizes.  --write stores the weights in src/dnnjpeg/nn/rate_weights.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dnnjpeg._runtime import tune_malloc

tune_malloc()

from dnnjpeg.codec import ANNEX_K_CHROMA, ANNEX_K_LUMA, QuantTables, from_zigzag  # noqa: E402
from dnnjpeg.data import discover  # noqa: E402
from dnnjpeg.nn.rate import RateModel, measure_rate_pairs, smape  # noqa: E402

LADDER = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def random_tables(rng, n):
    r = np.add.outer(np.arange(8), np.arange(8)) / 14.0
    out = []
    for i in range(n):
        if i % 2 == 0:
            p = rng.uniform(-2, 2, 4)
            lu = ANNEX_K_LUMA * np.exp(p[0] * r + p[1] * r * r) * rng.uniform(0.1, 2.5)
            ch = ANNEX_K_CHROMA * np.exp(rng.uniform(-3, 1) + p[2] * r) * rng.uniform(0.1, 2.5)
        else:
            v = np.sort(np.abs(rng.normal(size=(2, 64))), axis=1)
            lo, hi = rng.integers(1, 35), rng.integers(50, 150)
            v = lo + (v - v.min(1, keepdims=True)) / np.ptp(v, axis=1, keepdims=True) * (hi - lo)
            v *= rng.uniform(0.3, 1.5)
            lu, ch = from_zigzag(v[0]), from_zigzag(v[1])
        out.append(QuantTables(np.clip(np.rint(lu), 1, 255).astype(int), np.clip(np.rint(ch), 1, 255).astype(int)))
    return out


def crops(paths, rng):
    for p in paths:
        im = np.asarray(Image.open(p).convert("RGB"))
        h, w = rng.integers(96, 321, 2)
        h, w = min(h, im.shape[0]), min(w, im.shape[1])
        y, x = rng.integers(0, im.shape[0] - h + 1), rng.integers(0, im.shape[1] - w + 1)
        yield im[y : y + h, x : x + w]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenet-sample"))
    ap.add_argument("--fit-images", type=int, default=120)
    ap.add_argument("--test-images", type=int, default=120)
    ap.add_argument("--subsamplings", default="4:2:0,4:4:4,4:2:2")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    ds = discover(a.data)
    fit_paths = [r.path for r in ds.subset("design", a.fit_images).records]
    test_paths = [r.path for r in ds.subset("eval", a.test_images).records]
    out = {}
    for ss in a.subsamplings.split(","):
        rng = np.random.default_rng(0)
        tabs = [QuantTables.standard(q) for q in LADDER] + random_tables(rng, 12)
        t0 = time.perf_counter()
        f_fit, b_fit = measure_rate_pairs(crops(fit_paths, rng), tabs, ss)
        f_te, b_te = measure_rate_pairs(crops(test_paths, rng), tabs, ss)
        m = RateModel.fit(f_fit, b_fit, ss)
        pred_fit, pred = m.predict(f_fit), m.predict(f_te)
        e, e_fit = smape(pred, b_te), smape(pred_fit, b_fit)
        ladder_mask = np.tile(np.arange(len(tabs)) < len(LADDER), len(test_paths))
        info = {
            "fit_pairs": int(len(b_fit)),
            "test_pairs": int(len(b_te)),
            "smape_fit_mean": float(e_fit.mean()),
            "smape_test_mean": float(e.mean()),
            "smape_test_std": float(e.std()),
            "smape_test_ladder": float(e[ladder_mask].mean()),
            "smape_test_random": float(e[~ladder_mask].mean()),
            "smape_test_p90": float(np.percentile(e, 90)),
            "seconds": time.perf_counter() - t0,
        }
        m.info = info
        out[ss] = m.to_dict()
        print(
            f"{ss}: SMAPE held-out {e.mean():.2f}% ± {e.std():.2f} (ladder {info['smape_test_ladder']:.2f}%, random "
            "tables "
            f"{info['smape_test_random']:.2f}%, p90 {info['smape_test_p90']:.2f}%), fit {e_fit.mean():.2f}%; "
            f"{len(b_fit)} fit / {len(b_te)} test pairs, {info['seconds']:.0f} s",
            flush=True,
        )
    if a.write:
        from dnnjpeg._io import atomic_write_text

        p = Path(__file__).resolve().parents[1] / "src/dnnjpeg/nn/rate_weights.json"
        atomic_write_text(p, json.dumps(out, indent=1))
        print("wrote", p)


if __name__ == "__main__":
    main()
