"""The evaluation report says why a number is missing, draws the stored files as a point, and its chart
has the table's signs and whole names."""

from __future__ import annotations

import json
import math
from pathlib import Path

from dnnjpeg.evaluate.report import fmt_ci, fmt_value, markdown_report

GOLDEN = Path(__file__).parents[1] / "golden" / "evaluate-results.json"


def _result() -> dict:
    r = json.loads(GOLDEN.read_text())
    r["settings"]["split"] = "all"
    r["versions"] = {"dnnjpeg": "test"}  # (the golden file holds a placeholder)
    return r


def test_no_bare_nan_or_na_reaches_the_report(tmp_path):
    r = _result()
    k = r["comparisons"][0]
    k.update(bd_rate=math.nan, bd_rate_ci=[math.nan, math.nan], ref_bpp_at_target=math.nan,
             test_bpp_at_target=math.nan, bpp_ratio=math.nan, bpp_ratio_ci=[math.nan, math.nan])  # fmt: skip
    text = markdown_report(r, tmp_path / "r.md").read_text()
    low = text.lower()
    assert "nan" not in low.replace("nats", "") and "n/a" not in low
    assert "neither curve reaches the target" in text and "share too little accuracy range" in text
    assert fmt_value(float("nan"), "{:.1f}", "why not") == "— (why not)" and fmt_ci((1.0, 2.0)) == "[1.0, 2.0]"


def test_the_stored_files_are_a_point_and_a_line_in_the_report(tmp_path):
    r = _result()
    r["pristine"]["stored_bpp"] = 3.25
    text = markdown_report(r, tmp_path / "r.md").read_text()
    assert "files as stored**: 3.250 bpp" in text


def test_the_chart_shows_the_tables_sign_and_whole_names(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dnnjpeg.evaluate.report import _plot_savings

    r = _result()
    k = r["comparisons"][0]
    k["test"] = "a rather long curve name that must not be cut short"
    k["bd_rate_kl"], k["bd_rate_kl_ci"] = -30.0, [-40.0, -20.0]
    fig, ax = plt.subplots()
    _plot_savings(ax, r)
    bar = ax.patches[0]
    assert bar.get_width() == -30.0  # negative, as the table's BD-rate: fewer bits
    label = ax.get_yticklabels()[0].get_text()
    assert label.replace("\n", " ") == k["test"]
    plt.close(fig)
