"""Candidates read at the classifier's resolution: libjpeg's scaled IDCT (½, ¼) instead of a full decode.

The network in the loop decodes every candidate file and resizes it to the classifier's input. For a
file at least twice the classifier's resize on its shorter side, libjpeg can decode straight to ½ (or
¼) size with its scaled IDCT (Pillow's ``Image.draft``), and the resize then has less to do. This
measures, per candidate, the KL of the network's output from the pristine one both ways, whether the
per-image choice (least KL + λ·KiB, λ = 0.002 nats/KiB) picks the same member, and the time of
decode + preprocessing per candidate::

    .venv/bin/python benchmarks/bench_scaled_decode.py --data ../shared/data/kodak
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dnnjpeg._runtime import tune_malloc
from dnnjpeg.codec import load_image
from dnnjpeg.data import find_images
from dnnjpeg.evaluate.selection import choose
from dnnjpeg.evaluate.trial import outcome
from dnnjpeg.families import parse_family
from dnnjpeg.models import load_model

SWEEP = "preset:efficientnet-lite0-420-original-sweep"


def scaled(data: bytes, resize: int) -> tuple[np.ndarray, int]:
    """The file decoded at the smallest libjpeg scale (1, ½, ¼, ⅛) whose shorter side stays ≥ ``resize``,
    and that scale's denominator."""
    im = Image.open(io.BytesIO(data))
    w, h = im.size
    d = 1
    while d < 8 and min(w, h) // (2 * d) >= resize:
        d *= 2
    if d > 1:
        im.draft("RGB", (w // d, h // d))
    return np.asarray(im.convert("RGB")), d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/kodak")
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--lam", type=float, default=0.002)
    a = ap.parse_args(argv)
    tune_malloc()
    model = load_model(a.model)
    pre = model.preprocess
    fam = parse_family(SWEEP)
    kl_full, kl_fast, t_full, t_fast, same, scales = [], [], 0.0, 0.0, 0, []
    paths = find_images(a.data)[0]
    for p in paths:
        rgb = load_image(p, "RGB")
        datas = [pt.encode(rgb) for pt in fam.points]
        bits = np.array([8 * len(d) for d in datas])
        x0 = pre.geometry(rgb)[None]
        t = time.perf_counter()
        full = np.stack([pre.geometry(np.asarray(Image.open(io.BytesIO(d)).convert("RGB"))) for d in datas])
        t_full += time.perf_counter() - t
        t = time.perf_counter()
        fast_px = [scaled(d, pre.resize) for d in datas]
        fast = np.stack([pre.geometry(px) for px, _ in fast_px])
        t_fast += time.perf_counter() - t
        scales.append(fast_px[0][1])
        lg0 = model.logits(x0)
        k_full = outcome(np.repeat(lg0, len(datas), 0), model.logits(full))[1]
        k_fast = outcome(np.repeat(lg0, len(datas), 0), model.logits(fast))[1]
        kl_full.append(k_full)
        kl_fast.append(k_fast)
        same += int(
            choose(bits[:, None], k_full[:, None], a.lam)[0] == choose(bits[:, None], k_fast[:, None], a.lam)[0]
        )
    kf, ks = np.array(kl_full), np.array(kl_fast)
    n, k = kf.shape
    rel = np.abs(ks - kf) / np.maximum(kf, 1e-6)
    print(f"{n} images ({Path(a.data).name}), {k} members each, {a.model}; decode scale used: "
          f"{dict(zip(*np.unique(scales, return_counts=True)))}")  # fmt: skip
    print(f"mean KL full decode {kf.mean():.4f}, scaled decode {ks.mean():.4f} nats; median |ΔKL|/KL "
          f"{100 * np.median(rel):.1f}%, 90th percentile {100 * np.percentile(rel, 90):.1f}%")  # fmt: skip
    print(f"the choice at λ = {a.lam:g} nats/KiB is the same on {same} of {n} images")
    print(f"decode + preprocessing per candidate: full {1e3 * t_full / (n * k):.1f} ms, scaled "
          f"{1e3 * t_fast / (n * k):.1f} ms ({t_full / max(t_fast, 1e-9):.2f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
