"""The CLI's results.json against a golden copy: every key, every count, every value.

Regenerate after an intended change with ``DNNJPEG_UPDATE_GOLDEN=1 make test`` and review the diff.
Floats are compared to 6 significant digits, since inference on another CPU may differ in the
last bits; bits, labels and predictions must be exact.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from typer.testing import CliRunner

from dnnjpeg.cli import app
from dnnjpeg.demo import materialize_samples

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "evaluate-results.json"
#: values that name this run rather than the measurement
VOLATILE = {("settings", "date"), ("settings", "data"), ("versions",), ("pristine", "per_image", "path")}


def _normalize(x, path=()):
    if path in VOLATILE or path[-1:] == ("seconds",):
        return "<volatile>"
    if isinstance(x, dict):
        return {k: _normalize(v, (*path, k)) for k, v in sorted(x.items())}
    if isinstance(x, list):
        return [_normalize(v, path) for v in x]
    if isinstance(x, float) and math.isfinite(x):
        return float(f"{x:.6g}")
    return x


def _diff(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in golden" for k in a.keys() - b.keys()]
        out += [f"{path}/{k}: new key" for k in b.keys() - a.keys()]
        for k in a.keys() & b.keys():
            out += _diff(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9) else [f"{path}: {a} → {b}"]
    return [] if a == b else [f"{path}: {a!r} → {b!r}"]


def test_cli_results_json_matches_the_golden_copy(tmp_path):
    src = materialize_samples(tmp_path / "images")
    res = CliRunner().invoke(
        app,
        ["evaluate", "--data", str(src), "--codec", "standard:20,50,90", "--codec", "jpegli:30,60,90", "--limit", "6",
         "--bootstrap", "20", "--select-lambdas", "0.01,1", "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    got = _normalize(json.loads((tmp_path / "out" / "results.json").read_text()))
    if os.environ.get("DNNJPEG_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    diffs = _diff(want, got)
    assert not diffs, "results.json changed:\n" + "\n".join(diffs[:40])
