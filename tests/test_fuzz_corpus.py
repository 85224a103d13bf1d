"""Every reader and every command over a third-party fuzz corpus and a set of unusual files.

``../shared/data/fuzz-jpeg`` (1836 fuzzer inputs, most broken on purpose, most without an extension)
and ``../shared/data/edge-cases`` (CMYK, odd sampling, MJPEG, progressive, arithmetic, 12-bit, huge
photos, other formats). Readers run in a subprocess per chunk (a crash is a failure, not a lost
run), under a time limit (a hang is a failure). What must hold:

* no bare exception: every refusal is a ``JpegError`` or ``OSError`` whose message names the file;
* the coefficient readers accept nothing libjpeg-turbo warns about (same warnings, same refusals);
* the valid unusual files are read: 4:1:0, mixed sampling factors, an MJPEG frame without Huffman tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dnnjpeg.cli import app

from .conftest import SHARED

CHUNKS = 8


def _corpus() -> list[str]:
    files = []
    for sub in ("fuzz-jpeg", "edge-cases"):
        root = SHARED / sub
        for dirpath, _, names in os.walk(root):
            files += [os.path.join(dirpath, n) for n in names if not n.startswith("LICENSE")]
    return sorted(files)


def _need_corpus() -> list[str]:
    if not (SHARED / "fuzz-jpeg").is_dir() or not (SHARED / "edge-cases").is_dir():
        pytest.skip(f"{SHARED}/fuzz-jpeg or edge-cases is absent: this test needs the shared data sets")
    return _corpus()


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_reader_survives_the_corpus(chunk):
    files = _need_corpus()[chunk::CHUNKS]
    repo = Path(__file__).resolve().parents[1]
    res = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_worker", *files], cwd=repo, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, f"the readers crashed (exit {res.returncode}): {res.stderr[-2000:]}"
    rows = [json.loads(ln) for ln in res.stdout.splitlines()]
    assert len(rows) == 5 * len(files)  # every reader finished every file
    bare = [r for r in rows if r["kind"] == "bare"]
    assert not bare, f"{len(bare)} bare exceptions, e.g. {bare[:3]}"
    unnamed = [r for r in rows if r["kind"] == "error" and os.path.basename(r["path"]) not in r["message"]]
    assert not unnamed, f"errors that do not name the file: {unnamed[:3]}"
    lax = [r for r in rows if r["reader"] in ("coefficients", "coefficients_fast", "planes")
           and r["kind"] == "ok" and r["libjpeg"] is not None]  # fmt: skip
    assert not lax, f"coefficient readers accepted files libjpeg flags: {lax[:3]}"
    lax = [r for r in rows if r["reader"] == "pixels" and r["kind"] == "ok" and r["libjpeg"] is not None
           and r["jpeg"]]  # fmt: skip
    assert not lax, f"the pixel loader accepted files libjpeg flags: {lax[:3]}"


@pytest.mark.parametrize(
    "name, readers",
    [
        ("zune-jpeg/fox410.jpg", ("pixels", "coefficients", "coefficients_fast", "planes")),  # 4:1:0
        ("zune-jpeg/weird_sampling_2.jpeg", ("pixels", "coefficients")),  # RGB-coded, mixed factors
        ("zune-jpeg/mjpeg_huffman.jpg", ("pixels", "coefficients", "coefficients_fast", "planes")),
        ("zune-jpeg/medium_vertical_samp_2500x1786.jpg", ("pixels", "planes")),  # 4:4:0
        ("zune-jpeg/medium_horiz_samp_2500x1786.jpg", ("pixels", "planes")),  # 4:2:2
    ],
)
def test_valid_unusual_files_are_read(name, readers):
    _need_corpus()
    repo = Path(__file__).resolve().parents[1]
    path = str(SHARED / "edge-cases" / name)
    res = subprocess.run([sys.executable, "-m", "tests.fuzz_worker", path], cwd=repo, capture_output=True, text=True)
    got = {r["reader"]: r for r in map(json.loads, res.stdout.splitlines())}
    assert all(got[r]["kind"] == "ok" for r in readers), {r: got[r]["message"] for r in readers}


def _entries() -> int:
    from dnnjpeg._fs import walk

    return sum(1 for sub in ("fuzz-jpeg", "edge-cases") for _ in walk(SHARED / sub))


def test_info_and_survey_name_every_file():
    _need_corpus()
    n = _entries()
    res = CliRunner().invoke(app, ["info", "--json", str(SHARED / "fuzz-jpeg"), str(SHARED / "edge-cases")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    rows = [json.loads(ln) for ln in res.stdout.splitlines()]
    assert len(rows) == n  # every entry, LICENSE files and a folder link included, on its own line
    assert all(("error" in r) != ("width" in r) for r in rows)


def test_survey_reads_the_corpus(tmp_path):
    _need_corpus()
    res = CliRunner().invoke(app, ["survey", str(SHARED / "fuzz-jpeg"), str(SHARED / "edge-cases"),
                                   "--out", str(tmp_path / "s"), "--no-umap", "--workers", "2"])  # fmt: skip
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output[-2000:]
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["n_files"] == _entries()


@pytest.mark.parametrize("corpus", ["fuzz-jpeg", "edge-cases"])
def test_compress_and_evaluate_look_at_every_file(tmp_path, corpus):
    """Content decides what is an image: the corpus's files without an extension are tried, every
    failure is named on its own line, and what decodes is written and evaluated."""
    from dnnjpeg._fs import image_kind
    from dnnjpeg.codec import JpegError, QuantTables, load_image
    from dnnjpeg.data import find_images

    _need_corpus()
    root = SHARED / corpus
    images, problems = find_images(root, hidden=True)
    readable = []
    for f in images:
        try:
            load_image(f)
            readable.append(f)
        except (JpegError, OSError):
            pass
    assert readable and all(image_kind(f) or f.lower().endswith((".jpg", ".png", ".bmp", ".tif", ".webp"))
                            for f in images)  # fmt: skip
    if corpus == "fuzz-jpeg":  # 1834 of its 1836 files start like a JPEG: all are tried
        assert len(images) == 1834 and not problems
    q = tmp_path / "t.json"
    QuantTables.standard(50).save(q)
    res = CliRunner().invoke(app, ["compress", str(root), str(tmp_path / "dst"), "--tables", str(q), "--workers", "2"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    out = res.stdout.replace(",", "")
    bad = len(images) - len(readable) + len(problems)
    assert f"{len(readable)} written 0 skipped (already valid) {bad} failed" in out, out
    written = [p for p in (tmp_path / "dst").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(written) == len(readable)
    # evaluate finds the same images by content, skips what does not decode, and measures the rest
    res = CliRunner().invoke(app, ["evaluate", "--data", str(root), "--codec", "standard:50", "--at", "original",
                                   "--out", str(tmp_path / "e"), "--bootstrap", "0"])  # fmt: skip
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output[-2000:]
    result = json.loads((tmp_path / "e" / "results.json").read_text())
    assert len(result["curves"][0]["points"][0]["per_image"]["bits"]) == len(readable)
    assert len(result["failures"]) == len(images) - len(readable)
