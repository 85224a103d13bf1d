"""compress --keep-prediction: a guarantee instead of a price (every image keeps the network's top-1)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from dnnjpeg.cli import app
from dnnjpeg.evaluate.selection import keep_choice


def test_keep_choice_takes_the_smallest_member_that_keeps_the_answer():
    bits = np.array([[100, 100, 100], [200, 200, 200], [400, 400, 400]])
    kl = np.array([[0.5, 0.01, 0.3], [0.2, 0.005, 0.3], [0.01, 0.001, 0.3]])
    same = np.array([[False, True, False], [True, True, False], [True, True, False]])
    assert keep_choice(bits, kl, same).tolist() == [1, 0, -1]
    assert keep_choice(bits, kl, same, cap=0.1).tolist() == [2, 0, -1]  # a cap moves image 0 up
    with pytest.raises(ValueError, match="> 0"):
        keep_choice(bits, kl, same, cap=0)


@pytest.fixture(scope="module")
def photos(imagenet_dir, tmp_path_factory):
    src = tmp_path_factory.mktemp("keep") / "src"
    src.mkdir()
    for f in sorted(imagenet_dir.glob("*.JPEG"))[:5]:
        shutil.copy(f, src / f.name)
    return src


def _run(args):
    return CliRunner().invoke(app, ["compress", *args, "--device", "cpu", "--workers", "1"])


def test_every_file_keeps_the_choosing_networks_answer(photos, tmp_path):
    fam = ["--family", "standard:5,15,40,80"]
    r = _run([str(photos), str(tmp_path / "keep"), "--choose", "network", *fam, "--keep-prediction", "--check", "5"])
    assert r.exit_code == 0, r.output
    assert "check on 5 files (efficientnet-lite0): top-1 prediction kept on 100.0%" in r.output
    rec = json.loads((tmp_path / "keep" / ".dnnjpeg-compress.json").read_text())
    assert rec["settings"]["chooser"]["keep_prediction"] == "top-1"
    r2 = _run([str(photos), str(tmp_path / "cap"), "--choose", "network", *fam, "--keep-prediction",
               "--max-kl", "0.01", "--check", "0"])  # fmt: skip
    assert r2.exit_code == 0, r2.output
    size = {d: sum(p.stat().st_size for p in (tmp_path / d).glob("*.JPEG")) for d in ("keep", "cap")}
    assert size["cap"] > size["keep"]  # a KL cap costs bits


def test_the_guarantee_refuses_what_it_cannot_keep(photos, tmp_path):
    for extra, why in (
        (["--choose", "rate", "--keep-prediction"], "--choose network"),
        (["--choose", "network", "--keep-prediction", "--lam", "0.01"], "no --lam"),
        (["--choose", "network", "--max-kl", "0.1"], "give both"),
    ):
        r = _run([str(photos), str(tmp_path / "x"), *extra])
        assert r.exit_code == 2 and why in r.output, r.output
