"""Per-image tables from a network (dnnjpeg.tablenet) against the ladder, at the model input.

1. Train on the design split's model-input crops: the per-image network, and the same network
   with its per-image part off (a λ-indexed global sweep: the control), same seed and epochs.
2. On the eval split (the images of ``--ref``, an ``evaluate --at input --split eval --codec
   standard`` result of the same model), each λ gives every image its own rounded tables, written
   by the real encoder (optimized Huffman) and classified: bits, top-1, KL per image.
3. BD-rate against the ladder with paired bootstrap intervals (the evaluate machinery).

    .venv/bin/python benchmarks/bench_tablenet.py --ref EVAL_INPUT_DIR [--epochs 6] [--out bench-tablenet]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dnnjpeg._runtime import tune_malloc
from dnnjpeg.codec import decode, encode, load_image
from dnnjpeg.data import discover
from dnnjpeg.evaluate import recompare
from dnnjpeg.evaluate.trial import outcome
from dnnjpeg.models import load_model
from dnnjpeg.tablenet import load_tablenet, save_tablenet, train_tablenet

LAMS = (0.2, 0.1, 0.05, 0.025, 0.012, 0.006, 0.003)


def _crops(paths, pre) -> np.ndarray:
    return np.stack([pre.geometry(load_image(p, "RGB")) for p in paths])


def _curve(name, tn, crops, model, labels, p_logits, per_image) -> tuple[dict, float]:
    pts, t_tables = [], 0.0
    for lam in LAMS:
        t0 = time.perf_counter()
        tabs = tn.tables(crops, lam, per_image)
        t_tables += time.perf_counter() - t0
        datas = [encode(c, t, "4:2:0", optimize=True) for c, t in zip(crops, tabs)]
        logits = model.logits(np.stack([decode(d) for d in datas]), batch_size=32)
        top5, kl = outcome(p_logits, logits)
        bits = np.array([8 * len(d) for d in datas])
        px = crops.shape[1] * crops.shape[2]
        pts.append({
            "label": f"λ={lam:g}", "lam": lam, "quality": None, "scale": None, "subsampling": "4:2:0",
            "optimize": True, "bpp": float(bits.sum() / (px * len(bits))), "mean_image_bpp": float(np.mean(bits / px)),
            "compression_ratio": None, "top1": float(100 * np.mean(top5[:, 0] == labels)), "top5": None,
            "agreement": float(100 * np.mean(top5[:, 0] == p_logits.argmax(1))), "kl": float(kl.mean()),
            "seconds": 0.0, "tables": None,
            "per_image": {"bits": bits.tolist(), "top1": top5[:, 0].tolist(), "kl": np.round(kl, 6).tolist()},
        })  # fmt: skip
        print(f"  {name} λ={lam:g}: {pts[-1]['bpp']:.3f} bpp, top-1 {pts[-1]['top1']:.1f}%, KL {pts[-1]['kl']:.4f}",
              flush=True)  # fmt: skip
    return {"name": name, "kind": "tables", "points": pts}, t_tables / (len(LAMS) * len(crops))


def main() -> None:
    tune_malloc()
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenet-sample"))
    ap.add_argument("--ref", required=True, help="evaluate --at input --split eval --codec standard result folder")
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--train-images", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench-tablenet")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(a.model)
    pre = model.preprocess
    ref = json.loads((Path(a.ref) / "results.json").read_text())
    if ref["settings"]["at"] != "input" or ref["settings"]["model"] != model.name:
        raise SystemExit(f"{a.ref}: needs an evaluation at input by {model.name}")
    design = discover(a.data).subset("design", a.train_images)
    t0 = time.perf_counter()
    train = _crops([r.path for r in design.records], pre)
    nets = {}
    for per_image in (True, False):
        name = "tablenet per-image" if per_image else "tablenet global (control)"
        f = out / ("tablenet.pt" if per_image else "tablenet-global.pt")
        t1 = time.perf_counter()
        if f.exists():
            nets[name] = load_tablenet(f, model.name)
        else:
            nets[name] = train_tablenet(
                train, model, epochs=a.epochs, seed=a.seed, per_image=per_image,
                progress=lambda e, loss: print(f"  epoch {e}: loss {loss:.4f}", flush=True),
                checkpoint=out / (f.name + ".ckpt"),
            )  # fmt: skip
            save_tablenet(nets[name], f)
        print(f"{name}: {len(train)} design crops, {a.epochs} epochs, {time.perf_counter() - t1:.0f} s; "
              f"history {nets[name].history[-1] if nets[name].history else '-'}", flush=True)  # fmt: skip
    pr = ref["pristine"]["per_image"]
    crops = _crops(pr["path"], pre)
    labels = np.array(pr["label"])
    p_logits = model.logits(crops, batch_size=32)
    curves = [c for c in ref["curves"] if c["kind"] != "selected" and c["name"].startswith("standard")]
    speed = {}
    for name, tn in nets.items():
        c, speed[name] = _curve(name, tn, crops, model, labels, p_logits, name.endswith("per-image"))
        curves.append(c)
    res = recompare({**ref, "curves": curves})
    (out / "results.json").write_text(json.dumps(res.to_dict(), indent=1, default=float))
    for name, s in speed.items():
        print(f"{name}: tables in {1000 * s:.2f} ms per image (batched; encodes not included)")
    for k in res.comparisons:
        kl = f"; on KL {k['bd_rate_kl']:+.1f}% [{k['bd_rate_kl_ci'][0]:+.1f}, {k['bd_rate_kl_ci'][1]:+.1f}]"
        print(f"{k['test']:>40} vs {k['reference']}: BD-rate {k['bd_rate']:+.1f}% "
              f"[{k['bd_rate_ci'][0]:+.1f}, {k['bd_rate_ci'][1]:+.1f}]{kl}")  # fmt: skip
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
