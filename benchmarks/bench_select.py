"""Per-image choice of tables by the network, measured from saved evaluations.

    .venv/bin/python benchmarks/bench_select.py bench-design/lite0-original-420-fisher [...] [--markdown]

Each argument is a ``benchmarks/bench_design.py`` output folder: ``eval/results.json`` (the
design model on the eval split) and optionally ``eval-MODEL/results.json`` (the same tables
measured on other models).  Every curve of the run (the IJG ladder, each designed table swept
by scale, a designer's own sweep) becomes a family; ``dnnjpeg.evaluate.with_selection`` then
gives each eval image the member with least KL + λ·KiB, one point per λ of
``dnnjpeg.conventions.DEFAULT_LAMBDAS_NATS_PER_KIB`` (fixed before any of these measurements), and compares the
result with the ladder.  Exact, not a model of the encoder: encoding is deterministic, so the
chosen file's bits and prediction are the member's recorded ones (tests/test_select.py checks
this against ``compress --choose network``).  On the other models two rows: chosen by the
design model (the choice transfers) and by the measuring model itself.

``--design DIR``: a ``dnnjpeg evaluate --split design`` result holding the same families
(matched by their tables): adds the choice by rate alone, each member's KL replaced by its
mean KL on the design split (κ), so no network runs per image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dnnjpeg.evaluate import with_selection


def _fmt(v, ci) -> str:
    return "n/a" if v is None or v != v else f"{v:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]"


def _rows(run: str, result: dict, chooser: str) -> list[list[str]]:
    s = result["settings"]
    out = []
    for k in result["comparisons"]:
        if "per-image" not in k["test"]:
            continue
        out.append(
            [
                run,
                s["model"],
                s["at"],
                k["test"].replace(" by " + chooser, ""),
                chooser,
                _fmt(k["bd_rate"], k["bd_rate_ci"]),
                _fmt(k["bd_rate_kl"], k["bd_rate_kl_ci"]),
                "n/a"
                if k["test_bpp_at_target"] is None
                else f"{k['ref_bpp_at_target']:.2f} → {k['test_bpp_at_target']:.2f}",
                "n/a"
                if k["bd_accuracy"] is None
                else f"{k['bd_accuracy']:+.2f} [{k['bd_accuracy_ci'][0]:+.2f}, {k['bd_accuracy_ci'][1]:+.2f}]",
            ]
        )
    return out


def _kappa(result: dict, design: dict) -> dict[str, list[float]]:
    """Curve name in ``result`` → its members' mean KL in ``design``, for curves with the same tables."""
    key = lambda c: json.dumps([p.get("tables") for p in c["points"]], sort_keys=True)  # noqa: E731
    by_tables = {key(c): [p["kl"] for p in c["points"]] for c in design["curves"] if c.get("kind") != "selected"}
    return {
        c["name"]: by_tables[key(c)] for c in result["curves"] if c.get("kind") != "selected" and key(c) in by_tables
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--union", action="store_true", help="also the choice among all the run's curves together")
    ap.add_argument(
        "--design", default=None, help="folder of a design-split evaluation of the same families (choice by rate alone)"
    )
    a = ap.parse_args()
    head = [
        "run",
        "measured on",
        "at",
        "family, per image",
        "chosen by",
        "BD-rate top-1 % [CI]",
        "BD-rate KL % [CI]",
        "bpp to pristine − 1",
        "Δ top-1 at equal rate",
    ]
    rows, failed = [], 0
    for run in a.runs:
        d = Path(run)
        try:
            own = json.loads((d / "eval" / "results.json").read_text())
        except (OSError, ValueError) as e:
            print(f"{run}: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
            continue
        design = json.loads((Path(a.design) / "results.json").read_text()) if a.design else None
        kap = _kappa(own, design) if design else {}
        rows += _rows(d.name, with_selection(own, union=a.union), own["settings"]["model"])
        if kap:
            rows += _rows(d.name, with_selection(own, kappa=kap), "rate")
        for other in sorted(d.glob("eval-*/results.json")):
            r = json.loads(other.read_text())
            rows += _rows(d.name, with_selection(r, selector=own, union=a.union), own["settings"]["model"])
            rows += _rows(d.name, with_selection(r, union=a.union), r["settings"]["model"])
            if kap:
                rows += _rows(d.name, with_selection(r, kappa=kap), "rate")
    if a.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in rows:
            print("  ".join(r))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
