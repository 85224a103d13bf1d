"""The QNet choice on held-out images: samples from the design split, choices on the eval split.

1. Samples: ``dnnjpeg qnet train --work WORK`` keeps each design image's samples (the image and its
   augmented copies: every member's file size, the classifier's KL, the quantization errors and the
   probe's statistics) as WORK/000000.npz, ... in design-split order.
2. For each ``--train-images`` N, a QNet is fitted on the first N design images' samples.
3. On the eval split, the per-image records of an evaluation of the same family at original
   (``EVAL``: ``dnnjpeg evaluate --split eval --at original --codec standard --codec FAMILY
   --select``) give every member's real bits and KL; the QNet predicts the KL from each eval
   image (one probe pass, the quantization errors, the members' sizes), the rule chooses, and the
   choice is measured against the ladder (BD-rate, paired bootstrap) beside the in-the-loop choice
   and the choice by rate. ``--transfer EVAL2`` (the same family measured by another classifier on
   the same images) also measures the lite0 QNet's choice with that classifier.

    .venv/bin/python benchmarks/bench_qnet.py --eval EVALDIR --work WORK [--train-images 100,250,508]
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
from dnnjpeg.evaluate import recompare
from dnnjpeg.evaluate.selection import choose, climb_choice, selected_entry
from dnnjpeg.families import parse_family
from dnnjpeg.models import load_model
from dnnjpeg.qnet import DEFAULT_PROBE, QNetData, probe_stats, quantization_error, save_qnet, train_qnet

LAMS = [1e-3, 3e-3, 1e-2, 3e-2]


def _regret(bits, kl, pred) -> list[float]:
    """Mean excess Lagrangian cost (nats) of choosing by ``pred`` instead of the true KL, per λ; (K, N) arrays."""
    cols = np.arange(bits.shape[1])
    out = []
    for lam in LAMS:
        cost = kl + lam * bits / KIB_BITS
        out.append(float((cost[choose(bits, pred, lam), cols] - cost[choose(bits, kl, lam), cols]).mean()))
    return out


def _eval_records(path: Path, fam_name: str):
    r = json.loads((path / "results.json").read_text())
    curve = next(c for c in r["curves"] if c["name"] == fam_name)
    bits = np.array([p["per_image"]["bits"] for p in curve["points"]], np.int64)
    kl = np.array([p["per_image"]["kl"] for p in curve["points"]], np.float64)
    return r, curve, bits, kl


def _choice(r, curve, selector_kl, name, rule=None):
    pr = r["pristine"]["per_image"]
    labels, ptop1, pixels = np.array(pr["label"]), np.array(pr["top1"]), np.array(pr["pixels"])
    lams = DEFAULT_LAMBDAS_NATS_PER_KIB
    entry, _ = selected_entry([curve], labels, ptop1, pixels, lams, "x", selector_kl=selector_kl, rule=rule)
    entry["name"] = name
    return entry


def _fmt(k) -> str:
    return (
        f"BD-rate {k['bd_rate']:+.1f}% [{k['bd_rate_ci'][0]:+.1f}, {k['bd_rate_ci'][1]:+.1f}]; on KL "
        f"{k['bd_rate_kl']:+.1f}% [{k['bd_rate_kl_ci'][0]:+.1f}, {k['bd_rate_kl_ci'][1]:+.1f}]"
    )


def main() -> None:
    tune_malloc()
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", required=True, help="evaluation folder of the family at original on the eval split")
    ap.add_argument("--work", required=True, help="the samples folder of `dnnjpeg qnet train --work`")
    ap.add_argument("--family", default="preset:efficientnet-lite0-420-original-sweep")
    ap.add_argument("--model", default="efficientnet-lite0", help="the classifier the samples' KL is of")
    ap.add_argument("--probe", default=DEFAULT_PROBE)
    ap.add_argument("--train-images", default="508", help="comma-separated numbers of design images to fit on")
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--transfer", action="append", default=[], help="EVAL of the same family by another classifier")
    ap.add_argument("--out", default="bench-qnet")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    fam = parse_family(a.family)
    probe = load_model(a.probe)
    parts = [QNetData.from_bytes(f.read_bytes()) for f in sorted(Path(a.work).glob("[0-9]*.npz"))]
    r, curve, bits, kl = _eval_records(Path(a.eval), fam.name)
    pr = r["pristine"]["per_image"]
    pixels = np.array(pr["pixels"])
    cache = out / f"eval-features-{Path(a.eval).name}-{a.probe}.npz"
    t0 = time.perf_counter()
    if cache.exists():
        z = np.load(cache)
        dq, stats, t_feat = z["dq"], z["stats"], float(z["t_feat"])
    else:
        dqs, sts, t_dq, t_probe = [], [], 0.0, 0.0
        for p in pr["path"]:
            img = load_image(p, "RGB")
            t1 = time.perf_counter()
            dqs.append(quantization_error(img, fam))
            t2 = time.perf_counter()
            sts.append(probe_stats([img], probe)[0])
            t_dq, t_probe = t_dq + t2 - t1, t_probe + time.perf_counter() - t2
        dq, stats = np.stack(dqs), np.stack(sts)
        t_feat = (t_dq + t_probe) / len(dqs)
        print(f"features per eval image: quantization errors {1000 * t_dq / len(dqs):.1f} ms, "
              f"probe {1000 * t_probe / len(dqs):.1f} ms (one process, 2 torch threads)")  # fmt: skip
        np.savez(cache, dq=dq, stats=stats, t_feat=t_feat)
    print(f"eval features {time.perf_counter() - t0:.0f} s ({1000 * t_feat:.1f} ms/image)")
    kap = np.broadcast_to(np.array(fam.kappa)[:, None], kl.shape) if fam.kappa else None
    base = [c for c in r["curves"] if c["kind"] != "selected" or c["name"] == f"{fam.name} per-image"]
    extra = []
    if kap is not None:
        extra.append(_choice(r, curve, kap, f"{fam.name} per-image by rate"))
    rows = []
    for n in [int(x) for x in a.train_images.split(",")]:
        data = QNetData.concat(parts[:n])
        q = train_qnet(data, fam, a.model, a.probe, alpha=a.alpha)
        q.info.update({"n_images": min(n, len(parts))})
        save_qnet(q, out / f"qnet-{n}.json")
        pred = q.predict_kl(bits.T, pixels, dq, stats).T
        ly, lp = np.log(np.maximum(kl, 1e-5)), np.log(pred)
        r2 = [1 - np.var(ly[k] - lp[k]) / np.var(ly[k]) for k in range(len(fam))]
        extra.append(_choice(r, curve, pred, f"{fam.name} per-image by qnet ({min(n, len(parts))} images)"))
        rows.append((min(n, len(parts)), len(data), r2, _regret(bits, kl, pred), pred))
    # the network in the loop, measuring only the members a local search visits (compress --choose climb)
    passes = {}
    for name, start_kl in (("by rate", kap), ("the qnet", rows[-1][4])):
        if start_kl is None:
            continue

        def rule(lam, start_kl=start_kl, name=name):
            ch, count = climb_choice(bits, kl, lam, choose(bits, start_kl, lam))
            passes.setdefault(name, []).append(1 + count.mean())  # + the pristine pass
            return ch

        extra.append(_choice(r, curve, None, f"{fam.name} per-image, climb from {name}", rule))
    res = recompare({**r, "curves": base + extra})
    (out / "results.json").write_text(json.dumps(res.to_dict(), indent=1, default=float))
    print(f"regret (nats, mean excess KL + λ·KiB over the in-the-loop choice) at λ = {LAMS}")
    if kap is not None:
        print("  by rate:            " + " ".join(f"{x:.4f}" for x in _regret(bits, kl, kap)))
    for n, ns, r2, reg, _ in rows:
        print(f"  qnet {n:>4} images ({ns} samples): " + " ".join(f"{x:.4f}" for x in reg)
              + "   R² of log KL (coarse → fine): " + " ".join(f"{x:.2f}" for x in r2))  # fmt: skip
    for name, p in passes.items():
        print(f"climb from {name}: network passes per image (pristine included) over λ: "
              f"mean {np.mean(p):.2f}, range {min(p):.2f}–{max(p):.2f} (all members: {len(fam) + 1})")  # fmt: skip
    for k in res.comparisons:
        print(f"{k['test']:>72} vs {k['reference']}: {_fmt(k)}")
    for t in a.transfer:
        r2_, curve2, _, _ = _eval_records(Path(t), fam.name)
        if r2_["pristine"]["per_image"]["path"] != pr["path"]:
            raise SystemExit(f"{t}: other images than {a.eval}")
        n, _, _, _, pred = rows[-1]
        ent = [
            _choice(r2_, curve2, pred, f"{fam.name} per-image by the {a.model} qnet"),
            _choice(r2_, curve2, kl, f"{fam.name} per-image by {a.model} in the loop"),
        ]
        if kap is not None:
            ent.append(_choice(r2_, curve2, kap, f"{fam.name} per-image by rate"))
        b2 = [c for c in r2_["curves"] if c["kind"] != "selected" or c["name"] == f"{fam.name} per-image"]
        res2 = recompare({**r2_, "settings": {**r2_["settings"], "n_boot": 1000}, "curves": b2 + ent})
        for k in res2.comparisons:
            print(f"[{r2_['settings']['model']}] {k['test']:>60} vs {k['reference']}: {_fmt(k)}")


if __name__ == "__main__":
    main()
