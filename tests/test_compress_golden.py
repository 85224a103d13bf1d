"""The bytes compress writes, pinned: SHA-256 of every output of five modes on four photographs.

A refactor must not change a single output byte for the same settings. The encoder's bytes are
pinned as they are (``--allow-larger --strip-metadata``): the defaults that keep a source not made
smaller and copy its metadata are tested in tests/compress/test_safe_defaults.py. Regenerate only after an
intended change of the encoding with ``DNNJPEG_UPDATE_GOLDEN=1 make test``, and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dnnjpeg.cli import app

GOLDEN = Path(__file__).resolve().parent / "golden" / "compress-sha256.json"
SWEEP = "preset:efficientnet-lite0-420-original-sweep"
MODES = {
    "fixed": ["--tables", "{tables}"],
    "by-rate": ["--choose", "rate", "--family", SWEEP, "--lam", "0.002"],
    "network": ["--choose", "network:efficientnet-lite0", "--family", SWEEP, "--lam", "0.002", "--device", "cpu"],
    "qnet": ["--choose", "qnet:preset:efficientnet-lite0-qnet", "--lam", "0.002"],
    "sdq-crop": ["--levels", "sdq:crop"],
}


@pytest.fixture(scope="module")
def photos(imagenet_dir, tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("golden-src")
    for p in sorted(imagenet_dir.iterdir())[:4]:
        shutil.copyfile(p, src / p.name)
    return src


@pytest.mark.parametrize("mode", list(MODES))
def test_compress_outputs_are_byte_identical(photos, tmp_path, mode):
    from dnnjpeg.presets import load_preset

    tables = tmp_path / "t.json"
    load_preset("efficientnet-lite0-420").save(tables)
    args = [a.replace("{tables}", str(tables)) for a in MODES[mode]]
    res = CliRunner().invoke(app, ["compress", str(photos), str(tmp_path / "dst"), *args, "--workers", "1",
                                        "--allow-larger", "--strip-metadata", "--check", "0"])  # fmt: skip
    assert res.exit_code == 0, res.output
    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / "dst").glob("*.JPEG"))}
    assert len(got) == 4
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("DNNJPEG_UPDATE_GOLDEN"):
        golden[mode] = got
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    assert got == golden.get(mode), f"{mode}: output bytes changed"
