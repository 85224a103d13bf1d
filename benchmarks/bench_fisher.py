"""How well does the Fisher designer's second-order model predict what JPEG does to the network?

For the `fisher` tables at a few estimated rates (designed from the design split's
statistics), quantize one band of one component at a time (every other entry at step
1) with the real integer encoder (`DiffJPEG` exact mode, equal to Pillow's levels) and
compare the measured KL to the pristine prediction with the model's ½ Σ w·D.
The whole table is measured as well, showing how far the per-band effects add up.

    .venv/bin/python benchmarks/bench_fisher.py --images 160 --targets 0.4,1.0 --out bench-fisher.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dnnjpeg._runtime import tune_malloc

tune_malloc()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dnnjpeg.codec import ZIGZAG, QuantTables  # noqa: E402
from dnnjpeg.data import discover  # noqa: E402
from dnnjpeg.design.fisher import fisher_lambda_for_bpp, fisher_statistics, lagrangian_tables  # noqa: E402
from dnnjpeg.evaluate.trial import build_pristine  # noqa: E402
from dnnjpeg.models import load_model  # noqa: E402
from dnnjpeg.nn import DiffJPEG  # noqa: E402

BANDS = {"DC": (0, 1), "zigzag 1-5": (1, 6), "zigzag 6-20": (6, 21), "zigzag 21-63": (21, 64)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenet-sample"))
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--subsampling", default="4:2:0")
    ap.add_argument("--images", type=int, default=160, help="design images the KL is measured on")
    ap.add_argument("--targets", default="0.4,1.0", help="estimated bpp of the tables examined")
    ap.add_argument("--out", default="bench-fisher.json")
    a = ap.parse_args()
    model = load_model(a.model)
    net, pre = model.module.eval(), model.preprocess
    design = discover(a.data).subset("design")
    stats = fisher_statistics(build_pristine(design, model, "input").inputs, model, a.subsampling)
    pr = build_pristine(design.subset("design", a.images), model, "input")
    x = torch.from_numpy(np.ascontiguousarray(pr.inputs)).permute(0, 3, 1, 2).float()
    logp0 = torch.log_softmax(torch.from_numpy(pr.logits).float(), 1)
    codec = DiffJPEG(a.subsampling, "exact")

    def kl(t: QuantTables) -> float:
        out = []
        with torch.no_grad():
            for i in range(0, len(x), 32):
                lq = torch.log_softmax(net(pre.normalize_tensor(codec(x[i : i + 32], t.as_array()) / 255.0)), 1)
                lp = logp0[i : i + 32]
                out.append((lp.exp() * (lp - lq)).sum(1))
        return float(torch.cat(out).mean())

    k = np.arange(64)
    rank = np.empty(64, int)
    rank[np.asarray(ZIGZAG)] = k

    def predicted(qy: np.ndarray, qc: np.ndarray) -> float:
        y = (stats.w_luma * stats.d_luma[qy - 1, k]).sum() * stats.luma_blocks
        c = sum((stats.w_chroma[i] * stats.d_chroma[i][qc - 1, k]).sum() for i in (0, 1)) * stats.chroma_blocks
        return 0.5 * float(y + c)

    ones = np.ones(64, int)
    base = kl(QuantTables(ones.reshape(8, 8), ones.reshape(8, 8)))  # step 1 everywhere: rounding alone
    rows = []
    for target in (float(t) for t in a.targets.split(",")):
        ref = lagrangian_tables(stats, fisher_lambda_for_bpp(stats, target))
        rows.append(
            {
                "target_bpp": target,
                "part": "whole table",
                "measured": kl(ref) - base,
                "predicted": predicted(ref.luma.ravel(), ref.chroma.ravel()),
            }
        )
        for comp in ("luma", "chroma"):
            for band, (lo, hi) in BANDS.items():
                sel = (rank >= lo) & (rank < hi)
                qy, qc = ones.copy(), ones.copy()
                (qy if comp == "luma" else qc)[sel] = (ref.luma if comp == "luma" else ref.chroma).ravel()[sel]
                rows.append(
                    {
                        "target_bpp": target,
                        "part": f"{comp} {band}",
                        "measured": kl(QuantTables(qy.reshape(8, 8), qc.reshape(8, 8))) - base,
                        "predicted": predicted(qy, qc),
                    }
                )
        for r in rows[-9:]:
            print(
                f"{r['target_bpp']:.2f} bpp  {r['part']:>20}: KL measured {r['measured']:.4f}  predicted "
                f"{r['predicted']:.4f}  "
                f"ratio {r['measured'] / max(r['predicted'], 1e-12):.2f}",
                flush=True,
            )
    Path(a.out).write_text(json.dumps({"settings": vars(a), "kl_step1": base, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
