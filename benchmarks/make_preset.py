"""Package a designed table as a preset, with the eval-split curve it was measured on.

    .venv/bin/python benchmarks/make_preset.py NAME TABLE.json EVAL_DIR [--curve CURVE_NAME] [--kappa DESIGN_EVAL_DIR]

Writes src/dnnjpeg/presets/NAME.json: the tables (natural order), how they were
designed (method, settings; the trial history is left out to keep it small),
and from EVAL_DIR/results.json the ladder's and the table's points and the
comparison (BD-rate with its bootstrap interval).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dnnjpeg._io import atomic_write_text
from dnnjpeg.codec import QuantTables
from dnnjpeg.evaluate import json_safe, recompare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("table")
    ap.add_argument("eval_dir")
    ap.add_argument("--curve", default=None, help="curve name in results.json (default: the one built from TABLE)")
    ap.add_argument(
        "--kappa",
        default=None,
        help="folder of a design-split evaluation of the sweep: records each member's mean KL "
        "there, for compress --by-rate, and the eval-split result of that choice",
    )
    a = ap.parse_args()
    doc = json.loads(Path(a.table).read_text())
    t = QuantTables.from_dict(doc)
    design = {k: v for k, v in doc.get("design", {}).items() if k not in ("history", "pareto")}
    # comparisons rebuilt from the per-image records: results written before BD-rate on KL existed gain it
    r = recompare(json.loads((Path(a.eval_dir) / "results.json").read_text()))
    curve = a.curve or next(
        c["name"] for c in r["curves"] if c["kind"] == "tables" and c["name"].startswith(Path(a.table).stem)
    )
    if "-sweep" not in curve:  # measured as one table swept by scale: `preset:NAME` must be evaluated the same way
        design.pop("sweep", None)
    pts = lambda c: [{k: p[k] for k in ("label", "bpp", "top1", "top5", "kl")} for p in c["points"]]  # noqa: E731
    measured = {
        "settings": {k: r["settings"][k] for k in ("model", "at", "split", "n_images", "data")},
        "pristine_top1": r["pristine"]["top1"],
        "ladder": pts(r["curves"][0]),
        "preset": pts(next(c for c in r["curves"] if c["name"] == curve)),
        "comparison": next(k for k in r["comparisons"] if k["test"] == curve),
    }
    if a.kappa:
        from dnnjpeg.evaluate import with_selection
        from dnnjpeg.families import TableFamily, sweep_of

        if "sweep" not in design:
            raise SystemExit("--kappa needs a preset that holds its sweep (a '-sweep' curve)")
        dres = json.loads((Path(a.kappa) / "results.json").read_text())
        members = TableFamily.from_table_set([t for t, _ in sweep_of({"design": design})])
        kap = np.array(members.kappa_from_evaluation(dres, a.kappa).kappa)
        for p, k in zip(design["sweep"], kap):
            p["kappa"] = float(k)
        design["kappa_from"] = {k: dres["settings"][k] for k in ("model", "at", "split", "n_images")}
        chosen = with_selection(r, kappa={curve: kap.tolist()}, curves=[curve])
        c = chosen["curves"][-1]
        measured["by_rate"] = {
            "points": [{k: p[k] for k in ("label", "bpp", "top1", "kl")} for p in c["points"]],
            "comparison": next(k for k in chosen["comparisons"] if k["test"] == c["name"]),
        }
    out = t.to_dict()
    out["design"] = design
    out["measured"] = measured
    dst = Path(__file__).resolve().parents[1] / "src/dnnjpeg/presets" / f"{a.name}.json"
    atomic_write_text(dst, json.dumps(json_safe(out), indent=1, allow_nan=False))
    k = measured["comparison"]
    print(
        f"wrote {dst}: BD-rate {k['bd_rate']:+.1f}% [{k['bd_rate_ci'][0]:+.1f}, {k['bd_rate_ci'][1]:+.1f}], "
        f"on KL {k['bd_rate_kl']:+.1f}% [{k['bd_rate_kl_ci'][0]:+.1f}, {k['bd_rate_kl_ci'][1]:+.1f}] on "
        f"{r['settings']['n_images']} eval images"
    )
    if "by_rate" in measured:
        k = measured["by_rate"]["comparison"]
        print(
            f"  chosen per image by rate: BD-rate {k['bd_rate']:+.1f}% [{k['bd_rate_ci'][0]:+.1f}, "
            f"{k['bd_rate_ci'][1]:+.1f}], "
            f"on KL {k['bd_rate_kl']:+.1f}%"
        )


if __name__ == "__main__":
    main()
