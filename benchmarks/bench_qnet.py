"""The QNet choice on held-out images: train on the design split, choose on the eval split.

1. Training samples from the design split only: every image and ``--augment`` augmented copies,
   each with every family member's file size and the classifier's KL (cached in OUT).
2. A QNet fit to log KL; the last 10% of training images held out for its error and regret.
3. On the eval split, the per-image records of an evaluation of the same family at original
   (``EVAL``: ``dnnjpeg evaluate --split eval --at original --codec standard --codec FAMILY
   --select``) give every member's real bits and KL; the QNet predicts the KL from each image's
   thumbnail and the members' sizes, the rule chooses, and the choice is measured against the
   ladder (BD-rate, paired bootstrap) beside the in-the-loop choice and the choice by rate.

    .venv/bin/python benchmarks/bench_qnet.py --eval EVALDIR [--train-images 508] [--augment 4] [--out bench-qnet]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dnnjpeg._runtime import tune_malloc
from dnnjpeg.codec import load_image
from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB, KIB_BITS
from dnnjpeg.data import discover
from dnnjpeg.evaluate import recompare
from dnnjpeg.evaluate.selection import choose, selected_entry
from dnnjpeg.families import parse_family
from dnnjpeg.models import load_model
from dnnjpeg.qnet import QNetData, make_samples, save_qnet, thumbnail, train_qnet


def _regret(bits, kl, pred, lams) -> list[float]:
    """Mean excess Lagrangian cost (nats) of choosing by ``pred`` instead of the true KL, per λ."""
    cols = np.arange(bits.shape[1])
    out = []
    for lam in lams:
        cost = kl + lam * bits / KIB_BITS
        out.append(float((cost[choose(bits, pred, lam), cols] - cost[choose(bits, kl, lam), cols]).mean()))
    return out


def main() -> None:
    tune_malloc()
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenet-sample"))
    ap.add_argument("--eval", required=True, help="evaluation folder of the family at original on the eval split")
    ap.add_argument("--family", default="preset:efficientnet-lite0-420-original-sweep")
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--train-images", type=int, default=None, help="design images to train on (default: all)")
    ap.add_argument("--augment", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench-qnet")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    fam = parse_family(a.family)
    model = load_model(a.model)
    design = discover(a.data).subset("design", a.train_images)
    cache = out / f"samples-{len(design)}-aug{a.augment}-seed{a.seed}.npz"
    t0 = time.perf_counter()
    if cache.exists():
        z = np.load(cache)
        data = QNetData(z["thumbs"], z["bits"], z["pixels"], z["kl"])
    else:
        imgs = (load_image(r.path, "RGB") for r in design.records)
        data = make_samples(imgs, fam, model, a.augment, a.seed)
        np.savez(cache, thumbs=data.thumbs, bits=data.bits, pixels=data.pixels, kl=data.kl)
    t_samples = time.perf_counter() - t0
    n_val = (len(design) // 10) * a.augment
    train, val = data.split(len(data) - n_val)
    t0 = time.perf_counter()
    q = train_qnet(train, fam, model.name, epochs=a.epochs, seed=a.seed)
    t_train = time.perf_counter() - t0
    save_qnet(q, out / "qnet.pt")
    lams = [1e-3, 3e-3, 1e-2, 3e-2]
    pv = q.predict_kl(val.thumbs, val.bits, val.pixels)
    lv, lp = np.log(np.maximum(val.kl, 1e-5)), np.log(pv)
    r2 = [1 - np.var(lv[:, k] - lp[:, k]) / np.var(lv[:, k]) for k in range(len(fam))]
    reg_val = _regret(val.bits.T, val.kl.T, pv.T, lams)

    # -- the eval split: real bits and KL of every member from the evaluation's records
    r = json.loads((Path(a.eval) / "results.json").read_text())
    curve = next(c for c in r["curves"] if c["name"] == fam.name)
    pr = r["pristine"]["per_image"]
    labels, ptop1, pixels = np.array(pr["label"]), np.array(pr["top1"]), np.array(pr["pixels"])
    bits = np.array([p["per_image"]["bits"] for p in curve["points"]], np.int64)
    kl = np.array([p["per_image"]["kl"] for p in curve["points"]], np.float64)
    t0 = time.perf_counter()
    thumbs = np.stack([thumbnail(load_image(p, "RGB")) for p in pr["path"]])
    pred = q.predict_kl(thumbs, bits.T, pixels).T
    t_pred = (time.perf_counter() - t0) / len(pixels)
    entry, _ = selected_entry([curve], labels, ptop1, pixels, DEFAULT_LAMBDAS_NATS_PER_KIB, "qnet", selector_kl=pred)
    entry["name"] = f"{fam.name} per-image by qnet"
    kap = np.broadcast_to(np.array(fam.kappa)[:, None], kl.shape) if fam.kappa else None
    curves = [c for c in r["curves"] if c["kind"] != "selected" or c["name"] == f"{fam.name} per-image"] + [entry]
    if kap is not None:
        by_rate, _ = selected_entry(
            [curve], labels, ptop1, pixels, DEFAULT_LAMBDAS_NATS_PER_KIB, "rate", selector_kl=kap
        )
        by_rate["name"] = f"{fam.name} per-image by rate"
        curves.append(by_rate)
    res = recompare({**r, "curves": curves})
    (out / "results.json").write_text(json.dumps(res.to_dict(), indent=1, default=float))
    reg_eval = _regret(bits, kl, pred, lams)
    reg_rate = _regret(bits, kl, kap, lams) if kap is not None else None
    print(f"train: {len(design)} design images × {a.augment} augmentations = {len(data)} samples ({t_samples:.0f} s), "
          f"{len(train)} to fit, {len(val)} held out; fit {t_train:.0f} s, {a.epochs} epochs")  # fmt: skip
    print("held-out R² of log KL per member (coarse → fine): " + " ".join(f"{x:.2f}" for x in r2))
    print("regret (nats, mean excess KL + λ·KiB) at λ = " + ", ".join(f"{x:g}" for x in lams))
    print("  held-out design samples: " + " ".join(f"{x:.4f}" for x in reg_val))
    print("  eval split, qnet:        " + " ".join(f"{x:.4f}" for x in reg_eval))
    if reg_rate is not None:
        print("  eval split, by rate:     " + " ".join(f"{x:.4f}" for x in reg_rate))
    print(f"QNet prediction {1000 * t_pred:.1f} ms/image (thumbnail + network), K encodes not included")
    for k in res.comparisons:
        kl_txt = f"; on KL {k['bd_rate_kl']:+.1f}% [{k['bd_rate_kl_ci'][0]:+.1f}, {k['bd_rate_kl_ci'][1]:+.1f}]"
        print(f"{k['test']:>60} vs {k['reference']}: BD-rate {k['bd_rate']:+.1f}% "
              f"[{k['bd_rate_ci'][0]:+.1f}, {k['bd_rate_ci'][1]:+.1f}]{kl_txt}")  # fmt: skip


if __name__ == "__main__":
    main()
