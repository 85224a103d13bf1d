"""check: a compressed tree against its source (agreement, KL, top-1, bytes, intervals)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from dnnjpeg.check import check_tree, wilson
from dnnjpeg.cli import app

N = 6


@pytest.fixture(scope="module")
def tree(imagenet_dir, tmp_path_factory):
    """N labelled photographs (wnid names), and two compressions of them: a copy and q=5."""
    from dnnjpeg.codec import QuantTables, encode, load_image

    root = tmp_path_factory.mktemp("check")
    src, same, q5 = root / "src", root / "same", root / "q5"
    for d in (src, same, q5):
        d.mkdir()
    for f in sorted(imagenet_dir.glob("*.JPEG"))[:N]:
        shutil.copy(f, src / f.name)
        shutil.copy(f, same / f.name)
        (q5 / f.name).write_bytes(encode(load_image(f, "RGB"), QuantTables.standard(5), "4:2:0"))
    return src, same, q5


def test_wilson_interval_matches_the_formula():
    lo, hi = wilson(8, 10)
    assert abs(lo - 49.02) < 0.05 and abs(hi - 94.33) < 0.05
    assert wilson(10, 10)[1] == pytest.approx(100) and wilson(0, 10)[0] == pytest.approx(0)
    assert all(np.isnan(wilson(0, 0)))


def test_identical_files_agree_everywhere(tree, lite0):
    src, same, _ = tree
    res = check_tree(src, same, lite0, n_boot=200)
    assert res.files == N and res.agreement == 100.0 and abs(res.mean_kl) < 1e-9
    assert res.kept == N and res.ratio == 1.0 and res.bytes_source == res.bytes_output
    assert res.top1_source == res.top1_output and res.top1_change_ci == (0.0, 0.0)


def test_heavy_compression_shows_in_kl_and_bytes(tree, lite0):
    src, _, q5 = tree
    res = check_tree(src, q5, lite0, n_boot=200)
    assert res.files == N and res.mean_kl > 0.05 and res.ratio > 5
    assert res.agreement_ci[0] <= res.agreement <= res.agreement_ci[1]
    assert res.mean_kl_ci[0] <= res.mean_kl <= res.mean_kl_ci[1]
    assert res.worst[0]["kl"] == max(w["kl"] for w in res.worst) and res.kept == 0


def test_missing_outputs_and_a_limit(tree, lite0, tmp_path):
    src, same, _ = tree
    part = tmp_path / "part"
    shutil.copytree(same, part)
    gone = sorted(part.iterdir())[0]
    gone.unlink()
    res = check_tree(src, part, lite0, limit=3, n_boot=0)
    assert res.files == 3 and res.sampled_from == N - 1
    assert [p.endswith(gone.name) for p in res.missing] == [True]


def test_cli_json_has_the_promised_keys(tree):
    src, _, q5 = tree
    r = CliRunner().invoke(app, ["check", str(src), str(q5), "--json", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    keys = {"files", "bytes_source", "bytes_output", "agreement", "agreement_ci", "mean_kl", "top1_source",
            "top1_output"}  # fmt: skip
    assert keys <= set(doc) and doc["files"] == N and len(doc["agreement_ci"]) == 2


def test_cli_names_a_missing_folder(tree, tmp_path):
    r = CliRunner().invoke(app, ["check", str(tree[0]), str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such folder" in r.output
