"""Every designer on the design split, every result re-measured on the held-out eval split.

For one model / place / subsampling: run each method with the same budget on
--trial-images design images, then evaluate the standard ladder and each
designed table (swept by scale) on the eval split in one run (one pristine
cache), with BD-rate against the ladder and paired-bootstrap 95% intervals.
Optionally re-measures the same tables with other models (--transfer).

    .venv/bin/python benchmarks/bench_design.py --model efficientnet-lite0 --at input --subsampling 4:2:0 \\
        --budget 40 --trial-images 200 --out bench-design/lite0-input-420

Writes OUT/tables/*.json, OUT/design.json (per method: trials, wall time, design-split gain)
and OUT/eval[-MODEL]/ (results.json, curves.png, report.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dnnjpeg._runtime import tune_malloc

tune_malloc()

from dnnjpeg.codec import QuantTables  # noqa: E402
from dnnjpeg.data import discover  # noqa: E402
from dnnjpeg.design import DesignProblem, design  # noqa: E402
from dnnjpeg.evaluate import CodecCurve, evaluate, write_outputs  # noqa: E402
from dnnjpeg.evaluate.spec import sweep_of  # noqa: E402
from dnnjpeg.models import load_model  # noqa: E402

# (row name, method, options)
RUNS = [
    ("deepn", "deepn", {}),
    ("deepn-fit", "deepn", {"fit": True}),
    ("sorted-random", "sorted-random", {}),
    ("bounded-random", "bounded-random", {}),
    ("bayes", "bayes", {}),
    ("bandit", "bandit", {}),
    ("parametric", "parametric", {}),
    ("gradient", "gradient", {}),
    ("gradient-smooth", "gradient", {"basis": "smooth", "lambdas": (0.2, 0.1, 0.05, 0.025, 0.012, 0.006)}),
    ("fisher", "fisher", {}),
    ("fisher-gamma", "fisher", {"gamma": (0.5, 0.75, 1.0, 1.5, 2.0)}),
    ("fisher-refine", "fisher", {"refine": 10}),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenet-sample"))
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--at", default="input")
    ap.add_argument("--subsampling", default="4:2:0")
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--trial-images", type=int, default=200)
    ap.add_argument("--methods", default=",".join(n for n, _, _ in RUNS))
    ap.add_argument("--transfer", default="", help="comma-separated other models to re-measure the tables with")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--eval-limit", type=int, default=None, help="at most N eval images (smoke runs)")
    ap.add_argument("--out", default="bench-design")
    ap.add_argument(
        "--from-tables", default=None, help="skip design: evaluate the tables a previous run wrote in DIR/tables"
    )
    a = ap.parse_args()
    unknown = set(a.methods.split(",")) - {n for n, _, _ in RUNS}
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {[n for n, _, _ in RUNS]}")
    out = Path(a.out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    ds = discover(a.data)
    model = load_model(a.model)
    shared = None
    summary = {}
    curves = [CodecCurve.standard(subsampling=a.subsampling)]
    for name, method, opts in RUNS:
        if name not in a.methods.split(","):
            continue
        if a.from_tables:  # re-evaluate what an earlier run designed
            path = Path(a.from_tables) / "tables" / f"{name}.json"
            summary[name] = json.loads((Path(a.from_tables) / "design.json").read_text()).get(name)
        else:
            prob = DesignProblem(ds, model, a.at, a.subsampling, a.budget, 0, a.trial_images, "kl")
            if shared is not None:  # one pristine cache and one ladder for every method
                prob._evaluator = shared
                shared.n_trials = 0
            t0 = time.perf_counter()
            res = design(method, prob, **opts)
            shared = prob._evaluator or shared
            path = res.save(out / "tables" / f"{name}.json")
            best = max(res.history, key=lambda h: h["gain"]) if res.history else None
            summary[name] = {
                "trials": res.info["trials_used"],
                "wall_seconds": time.perf_counter() - t0,
                "design_gain": best["gain"] if best else None,
                "design_bpp": best["bpp"] if best else None,
            }
        print(f"{name}: {summary[name]}", flush=True)
        curves.append(CodecCurve.from_tables(QuantTables.load(path), subsampling=a.subsampling, name=name))
        if method == "gradient":  # its own curve too: every λ point, unscaled
            pts = [h for h in json.loads(Path(path).read_text())["design"]["history"] if h.get("phase") == "gradient"]
            curves.append(
                CodecCurve.from_table_set(
                    [QuantTables.from_dict(h["tables"]) for h in pts],
                    [f"λ={h['lam']:g}" for h in pts],
                    a.subsampling,
                    name=f"{name}-lambda",
                )
            )
        sweep = sweep_of(json.loads(Path(path).read_text()), str(path))
        if len(sweep) >= 2:  # a designer's own family of tables (fisher): judged as that family too
            curves.append(
                CodecCurve.from_table_set(
                    [t for t, _ in sweep], [g for _, g in sweep], a.subsampling, name=f"{name}-sweep"
                )
            )
    (out / "design.json").write_text(json.dumps(summary, indent=1))
    for m in [a.model] + [x for x in a.transfer.split(",") if x]:
        mod = model if m == a.model else load_model(m)
        r = evaluate(
            ds.subset("eval", a.eval_limit), mod, curves, at=a.at, n_boot=a.bootstrap, split="eval", progress=False
        )
        write_outputs(r, out / ("eval" if m == a.model else f"eval-{m}"))
        print(
            f"== eval split, {m}, {a.at}, {a.subsampling}: {r['settings']['n_images']} images, pristine "
            f"{r['pristine']['top1']:.1f}%"
        )
        for k in r["comparisons"]:
            lo, hi = k["bd_rate_ci"]
            klo, khi = k["bd_rate_kl_ci"]
            print(
                f"{k['test']:>24}: BD-rate {k['bd_rate']:+6.1f}% [{lo:+.1f}, {hi:+.1f}]  "
                f"on KL {k['bd_rate_kl']:+6.1f}% [{klo:+.1f}, {khi:+.1f}]  "
                f"bpp@target {k['ref_bpp_at_target']:.3f}->{k['test_bpp_at_target']:.3f}  Δacc {k['bd_accuracy']:+.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
