"""Re-read saved evaluations and compare their curves again, BD-rate on top-1 beside BD-rate on KL.

    .venv/bin/python benchmarks/recompare.py bench-design/*/eval* [--reference NAME] [--markdown]

Each argument is a folder holding a ``results.json`` written by ``dnnjpeg evaluate`` or
``benchmarks/bench_design.py``; nothing is re-encoded or re-classified (the per-image bits,
predictions and KL divergences are in the file), so this takes seconds. Folders that cannot
be read are reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dnnjpeg.evaluate import recompare


def _fmt(v, ci) -> str:
    return "n/a" if v is None or v != v else f"{v:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--reference", default=None, help="reference curve name (default: the one the run used)")
    ap.add_argument("--markdown", action="store_true", help="one Markdown table row per comparison")
    a = ap.parse_args()
    failed = 0
    if a.markdown:
        print("| run | model | at | test | BD-rate top-1 % [CI] | BD-rate KL % [CI] |\n|---|---|---|---|---|---|")
    for d in a.dirs:
        try:
            r = recompare(json.loads((Path(d) / "results.json").read_text()), reference=a.reference)
        except (OSError, ValueError, KeyError) as e:
            print(f"{d}: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
            continue
        s = r["settings"]
        for k in r["comparisons"]:
            top1, kl = _fmt(k["bd_rate"], k["bd_rate_ci"]), _fmt(k["bd_rate_kl"], k["bd_rate_kl_ci"])
            if a.markdown:
                print(f"| {d} | {s['model']} | {s['at']} | {k['test']} | {top1} | {kl} |")
            else:
                print(f"{d}  {s['model']} {s['at']}  {k['test']:>28} vs {k['reference']}: top-1 {top1:<22} KL {kl}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
