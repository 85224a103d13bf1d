"""Every command over the hostile tree (tests/hostile.py), each in its own process under a timeout.

Each must end with no traceback, name every bad entry on its own line, process every good
image, write nothing outside its destination, and leave SRC byte for byte as it was.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from dnnjpeg._fs import display
from dnnjpeg.codec import decode_file
from dnnjpeg.data import split_of
from tests.hostile import build_hostile_tree, run_cli, snapshot, unlock


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = build_hostile_tree(tmp_path_factory.mktemp("hostile"))
    yield t
    unlock(t)


def _out(r) -> str:
    return (r.stdout + r.stderr).decode("utf-8", "backslashreplace")


def _no_traceback(r) -> str:
    text = _out(r)
    assert "Traceback" not in text, text
    return text


def _line_naming(text: str, path) -> str:
    """The output line that names ``path`` (shown as dnnjpeg shows names)."""
    name = display(path)
    lines = [ln for ln in text.splitlines() if name in ln]
    assert lines, f"{name} is not named in:\n{text}"
    return lines[0]


def _guarded(tree, *outputs):
    """Snapshot of everything under the tree's root but the command's own outputs."""
    return snapshot(tree.root, skip=tuple(outputs))


def test_info_names_every_bad_header_and_reads_the_rest(tree):
    before = _guarded(tree)
    r = run_cli(["info", str(tree.src)], timeout=120)
    text = _no_traceback(r)
    assert r.returncode == 1
    for _kind, p in {**tree.header_bad, **tree.not_jpeg_images, **tree.folders}.items():
        _line_naming(text, p)
    for p in {**tree.good, **tree.decode_bad}.values():  # headers that parse are listed as usual
        assert re.search(r"\d+x\d+", _line_naming(r.stdout.decode("utf-8", "backslashreplace"), p))
    assert "65535x65535" in _line_naming(text, tree.decode_bad["bomb_header"])
    assert _guarded(tree) == before


def test_survey_keeps_every_name_and_names_every_unreadable_file(tree):
    import pandas as pd

    out = tree.root / "survey-out"
    before = _guarded(tree, out)
    r = run_cli(["survey", str(tree.src), "--out", str(out), "--no-umap"], timeout=180)
    text = _no_traceback(r)
    assert r.returncode == 0, text
    for p in {**tree.header_bad, **tree.not_jpeg_images, **tree.folders}.values():
        _line_naming(r.stderr.decode("utf-8", "backslashreplace"), p)
    df = pd.read_parquet(out / "survey.parquet")
    names = {bytes(b) for b in df["path_bytes"]}
    for p in {**tree.good, **tree.decode_bad}.values():  # the non-UTF-8 name exactly as stored
        assert str(p).encode("utf-8", "surrogateescape") in names
    summary = json.loads((out / "summary.json").read_text())
    odd = next(iter(summary["trees"].values()))["odd_counts"]
    assert odd["name not valid UTF-8"] == 1
    assert [k for k in odd if k.startswith("huge")] and odd[[k for k in odd if k.startswith("huge")][0]] == 1
    assert odd["12-bit or arithmetic-coded"] == 2  # twelve-bit.jpg and sof9.jpg
    assert _guarded(tree, out) == before


MODES = {
    "tables": lambda t: ["--tables", str(t.root / "t.json")],
    "select-model": lambda t: ["--choose", "network:efficientnet-lite0", "--family", "standard:30,70"],
    "by-rate": lambda t: ["--choose", "rate", "--family", "preset:efficientnet-lite0-420-original-sweep"],
    "target-bpp": lambda t: [
        "--choose",
        "rate",
        "--family",
        "preset:efficientnet-lite0-420-original-sweep",
        "--target-bpp",
        "6",
    ],
}


def _check_compress(tree, r, dst, before, workers_note=""):
    text = _no_traceback(r)
    assert r.returncode == 1, text  # 1: some files failed, the rest were written
    for kind, p in tree.decode_failures().items():
        line = _line_naming(text, p)
        assert "failed" in line, (kind, line)
    for kind, p in tree.decodable().items():
        out = dst / p.relative_to(tree.src)
        out = out if out.suffix.lower() in (".jpg", ".jpeg") else out.with_suffix(".jpg")
        assert decode_file(out).size > 0, kind
    written = [p for p in dst.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(written) == len(tree.decodable())
    assert f"{len(tree.decodable())} written" in text
    assert _guarded(tree, dst) == before


@pytest.mark.parametrize("mode", list(MODES))
def test_compress_every_mode(tree, mode):
    from dnnjpeg.codec import QuantTables

    if not (tree.root / "t.json").exists():
        QuantTables.standard(60).save(tree.root / "t.json")
    dst = tree.root / f"dst-{mode}"
    before = _guarded(tree, dst)
    r = run_cli(["compress", str(tree.src), str(dst), *MODES[mode](tree)])
    _check_compress(tree, r, dst, before)


def test_evaluate_then_compress_by_its_kappa(tree):
    out = tree.root / "eval-out"
    before = _guarded(tree, out)
    r = run_cli(
        [
            "evaluate",
            "--data",
            str(tree.src),
            "--codec",
            "standard:30,70",
            "--split",
            "all",
            "--out",
            str(out),
            "--bootstrap",
            "0",
        ],
        timeout=300,
    )
    text = _no_traceback(r)
    assert r.returncode == 0, text
    for p in tree.decode_failures().values():
        assert "skipped" in _line_naming(text, p)
    res = json.loads((out / "results.json").read_text())
    assert len(res["curves"][0]["points"][0]["per_image"]["bits"]) == len(tree.decodable())
    assert {display(p) for p in tree.decode_failures().values()} <= {display(f[0]) for f in res["failures"]}
    assert _guarded(tree, out) == before

    dst = tree.root / "dst-kappa"
    before = _guarded(tree, dst)
    r = run_cli(["compress", str(tree.src), str(dst), "--choose", f"rate:{out}", "--family", "standard:30,70"])
    _check_compress(tree, r, dst, before)


def test_design_reports_unreadable_design_images(tree):
    out = tree.root / "design.json"
    before = _guarded(tree, out)
    r = run_cli(["design", "--method", "deepn", "--data", str(tree.src), "--out", str(out)], timeout=180)
    text = _no_traceback(r)
    assert r.returncode == 0, text
    walk_reported = {**tree.folders, "fifo": tree.header_bad["fifo"]}
    for kind, p in tree.decode_failures().items():
        if kind in walk_reported or split_of(p.name) == "design":
            assert "skipped" in _line_naming(text, p), kind
    table = json.loads(out.read_text())
    assert np.array(table["tables"]["luma"] if "tables" in table else table["luma"]).shape == (8, 8)
    assert _guarded(tree, out) == before
