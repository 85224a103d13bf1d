"""Per-image choice of tables by the network, measured from saved evaluations.

    .venv/bin/python benchmarks/bench_select.py bench-design/lite0-original-420-fisher [...] [--markdown]

Each argument is a ``benchmarks/bench_design.py`` output folder: ``eval/results.json`` (the
design model on the eval split) and optionally ``eval-MODEL/results.json`` (the same tables
measured on other models).  Every curve of the run (the IJG ladder, each designed table swept
by scale, a designer's own sweep) becomes a family; ``dnnjpeg.evaluate.with_selection`` then
gives each eval image the member with least KL + λ·KiB, one point per λ of
``dnnjpeg.select.DEFAULT_LAMBDAS`` (fixed before any of these measurements), and compares the
result with the ladder.  Exact, not a model of the encoder: encoding is deterministic, so the
chosen file's bits and prediction are the member's recorded ones (tests/test_select.py checks
this against ``compress --select-model``).  On the other models two rows: chosen by the
design model (the choice transfers) and by the measuring model itself.
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
        out.append([run, s["model"], s["at"], k["test"].replace(" by " + chooser, ""), chooser, _fmt(k["bd_rate"], k["bd_rate_ci"]),
                    _fmt(k["bd_rate_kl"], k["bd_rate_kl_ci"]),
                    "n/a" if k["test_bpp_at_target"] is None else f"{k['ref_bpp_at_target']:.2f} → {k['test_bpp_at_target']:.2f}",
                    "n/a" if k["bd_accuracy"] is None else f"{k['bd_accuracy']:+.2f} [{k['bd_accuracy_ci'][0]:+.2f}, {k['bd_accuracy_ci'][1]:+.2f}]"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    head = ["run", "measured on", "at", "family, per image", "chosen by", "BD-rate top-1 % [CI]", "BD-rate KL % [CI]",
            "bpp to pristine − 1", "Δ top-1 at equal rate"]
    rows, failed = [], 0
    for run in a.runs:
        d = Path(run)
        try:
            own = json.loads((d / "eval" / "results.json").read_text())
        except (OSError, ValueError) as e:
            print(f"{run}: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
            continue
        rows += _rows(d.name, with_selection(own), own["settings"]["model"])
        for other in sorted(d.glob("eval-*/results.json")):
            r = json.loads(other.read_text())
            rows += _rows(d.name, with_selection(r, selector=own), own["settings"]["model"])
            rows += _rows(d.name, with_selection(r), r["settings"]["model"])
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
