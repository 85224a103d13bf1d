"""Soft-decision quantization measured with the classifier: SDQ (Fisher or MSE weights) against the ladder.

The images and the ladder's per-image records come from ``--eval`` (``dnnjpeg evaluate --split eval
--at original --codec standard``, lite0); every image is encoded with the shipped lite0 table for
stored images and each block's levels searched at each λ (`compress --sdq`), decoded and classified;
BD-rate on top-1 and on KL against the ladder with paired bootstrap intervals.

    .venv/bin/python benchmarks/bench_sdq_network.py --eval qeval [--out bench-sdq-network]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dnnjpeg._runtime import tune_malloc
from dnnjpeg.codec import decode, load_image
from dnnjpeg.evaluate import recompare
from dnnjpeg.evaluate.trial import outcome
from dnnjpeg.models import load_model
from dnnjpeg.presets import load_preset
from dnnjpeg.sdq.encode import fisher_weights, sdq_encode

LAMS = {"fisher": (0.0, 1e-7, 3e-7, 1e-6, 3e-6, 1e-5), "mse": (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0)}


def main() -> None:
    tune_malloc()
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", required=True)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--out", default="bench-sdq-network")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    r = json.loads((Path(a.eval) / "results.json").read_text())
    if r["settings"]["at"] != "original":
        raise SystemExit(f"{a.eval}: needs an evaluation --at original")
    model = load_model(a.model)
    pre = model.preprocess
    pr = r["pristine"]["per_image"]
    imgs = [load_image(p, "RGB") for p in pr["path"]]
    labels = np.array(pr["label"])
    p_logits = model.logits(np.stack([pre.geometry(x) for x in imgs]), batch_size=32)
    tables = load_preset("efficientnet-lite0-420-original")
    curves = [c for c in r["curves"] if c["name"] == "standard 4:2:0"]
    for name, lams in LAMS.items():
        w = fisher_weights() if name == "fisher" else None
        pts = []
        for lam in lams:
            t0 = time.perf_counter()
            datas = [sdq_encode(x, tables, lam, w)[0] for x in imgs]
            dt = (time.perf_counter() - t0) / len(imgs)
            logits = model.logits(np.stack([pre.geometry(decode(d)) for d in datas]), batch_size=32)
            top5, kl = outcome(p_logits, logits)
            bits = np.array([8 * len(d) for d in datas])
            px = np.array(pr["pixels"])
            pts.append({
                "label": f"λ={lam:g}", "lam": lam, "quality": None, "scale": None, "subsampling": "4:2:0",
                "optimize": True, "bpp": float(bits.sum() / px.sum()), "mean_image_bpp": float(np.mean(bits / px)),
                "compression_ratio": None, "top1": float(100 * np.mean(top5[:, 0] == labels)), "top5": None,
                "agreement": float(100 * np.mean(top5[:, 0] == p_logits.argmax(1))), "kl": float(kl.mean()),
                "seconds": dt, "tables": tables.to_dict(),
                "per_image": {"bits": bits.tolist(), "top1": top5[:, 0].tolist(), "kl": np.round(kl, 6).tolist()},
            })  # fmt: skip
            print(f"sdq {name} λ={lam:g}: {pts[-1]['bpp']:.3f} bpp, top-1 {pts[-1]['top1']:.1f}%, "
                  f"KL {pts[-1]['kl']:.4f}, {1000 * dt:.0f} ms/image", flush=True)  # fmt: skip
        curves.append({"name": f"sdq {name} (lite0 original table)", "kind": "tables", "points": pts})
    res = recompare({**r, "curves": curves})
    (out / "results.json").write_text(json.dumps(res.to_dict(), indent=1, default=float))
    for k in res.comparisons:
        print(f"{k['test']:>40} vs {k['reference']}: BD-rate {k['bd_rate']:+.1f}% "
              f"[{k['bd_rate_ci'][0]:+.1f}, {k['bd_rate_ci'][1]:+.1f}]; on KL {k['bd_rate_kl']:+.1f}% "
              f"[{k['bd_rate_kl_ci'][0]:+.1f}, {k['bd_rate_kl_ci'][1]:+.1f}]")  # fmt: skip


if __name__ == "__main__":
    main()
