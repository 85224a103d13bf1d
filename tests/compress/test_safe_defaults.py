"""compress's safe defaults: never larger than a JPEG source, metadata kept, other files counted or
copied, a single file as SRC, options checked before any work, the settings record only once written,
a mode that drops pixels says so, and the Python API from a script without a main guard."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dnnjpeg.cli import app
from dnnjpeg.codec import parse_header
from dnnjpeg.compress import SETTINGS_FILE, compress_tree
from dnnjpeg.presets import load_preset

TABLE = load_preset("efficientnet-lite0-420")
ICC = b"not a real profile, but bytes a reader must get back" * 3


def _photo(imagenet_dir, i=0) -> np.ndarray:
    return np.asarray(Image.open(sorted(imagenet_dir.glob("*.JPEG"))[i]).convert("RGB"))


def _jpeg(px, quality, **meta) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "JPEG", quality=quality, **meta)
    return buf.getvalue()


def test_a_source_that_would_grow_is_kept_as_it_was(tmp_path, imagenet_dir):
    src = tmp_path / "src"
    src.mkdir()
    small = _jpeg(_photo(imagenet_dir), 30)
    (src / "q30.jpg").write_bytes(small)
    (src / "q95.jpg").write_bytes(_jpeg(_photo(imagenet_dir, 1), 95))
    rep = compress_tree(src, tmp_path / "dst", TABLE, workers=1)
    assert rep.ok and rep.written == 2 and rep.kept == 1
    assert (tmp_path / "dst" / "q30.jpg").read_bytes() == small
    assert (tmp_path / "dst" / "q95.jpg").stat().st_size < (src / "q95.jpg").stat().st_size
    rep = compress_tree(src, tmp_path / "larger", TABLE, workers=1, allow_larger=True)
    assert rep.kept == 0 and (tmp_path / "larger" / "q30.jpg").stat().st_size > len(small)


def test_exif_orientation_icc_and_comment_survive(tmp_path, imagenet_dir):
    src = tmp_path / "src"
    src.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    (src / "rotated.jpg").write_bytes(
        _jpeg(_photo(imagenet_dir), 95, exif=exif.tobytes(), icc_profile=ICC, comment=b"shot on a phone")
    )
    r = CliRunner().invoke(
        app, ["compress", str(src), str(tmp_path / "dst"), "--tables", "preset:efficientnet-lite0-420"]
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "dst" / "rotated.jpg"
    assert parse_header(out).orientation == 6
    with Image.open(out) as im:
        assert im.info["icc_profile"] == ICC and im.info["comment"] == b"shot on a phone"
        assert parse_header(out).quant_tables() == TABLE  # the new tables, the old metadata
        shown = np.asarray(__import__("PIL.ImageOps", fromlist=["x"]).exif_transpose(im))
    assert shown.shape[:2] == _photo(imagenet_dir).shape[1::-1]  # displayed rotated, as the source was
    compress_tree(src, tmp_path / "bare", TABLE, workers=1, strip_metadata=True)
    with Image.open(tmp_path / "bare" / "rotated.jpg") as im:
        assert parse_header(tmp_path / "bare" / "rotated.jpg").orientation is None and "icc_profile" not in im.info


def test_other_files_are_counted_by_kind_and_copied_on_request(tmp_path, imagenet_dir):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    shutil.copy(sorted(imagenet_dir.glob("*.JPEG"))[0], src / "sub" / "noext")  # a JPEG by content
    (src / "labels.csv").write_text("path,label\n")
    (src / "sub" / "README.txt").write_text("hello")
    rep = compress_tree(src, tmp_path / "a", TABLE, workers=1)
    assert rep.written == 1 and rep.other == {".csv": 1, ".txt": 1} and rep.copied == 0
    assert not (tmp_path / "a" / "labels.csv").exists() and (tmp_path / "a" / "sub" / "noext").exists()
    rep = compress_tree(src, tmp_path / "b", TABLE, workers=1, copy_other=True)
    assert rep.copied == 2 and (tmp_path / "b" / "sub" / "README.txt").read_text() == "hello"
    rep = compress_tree(src, tmp_path / "b", TABLE, workers=1, copy_other=True, resume=True)
    assert rep.ok and rep.copied == 0 and rep.skipped == 1  # resuming keeps what is there


def test_a_single_file_as_src(tmp_path, imagenet_dir):
    f = sorted(imagenet_dir.glob("*.JPEG"))[1]
    rep = compress_tree(f, tmp_path / "one.jpg", TABLE, workers=1)
    assert rep.written == 1 and parse_header(tmp_path / "one.jpg").quant_tables() == TABLE
    r = CliRunner().invoke(
        app, ["compress", str(f), str(tmp_path / "folder"), "--tables", "preset:efficientnet-lite0-420"]
    )
    assert r.exit_code == 0 and (tmp_path / "folder" / f.name).is_file(), r.output
    assert not (tmp_path / "folder" / SETTINGS_FILE).exists()
    # the check pairs trees: not run on one file (its folder holds other, unrelated images)
    net = ["--choose", "network", "--family", "standard:30,70", "--device", "cpu"]
    r = CliRunner().invoke(app, ["compress", str(f), str(tmp_path / "net.jpg"), *net])
    assert r.exit_code == 0 and "one file is not checked" in r.output and "prediction kept" not in r.output, r.output
    with pytest.raises(ValueError, match="overlaps"):
        compress_tree(f, f, TABLE)


def test_options_are_checked_first_and_a_run_that_wrote_nothing_refuses_nothing(tmp_path, imagenet_dir):
    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    fixed = ["--tables", "preset:efficientnet-lite0-420"]
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "dst"), *fixed, "--subsampling", "4:1:1"])
    assert r.exit_code == 2 and "one of 4:4:4, 4:2:2, 4:2:0" in r.output and not (tmp_path / "dst").exists()
    rep = compress_tree(src, tmp_path / "dst", TABLE, workers=1, scale=2.0)
    # the record is written before the first output (a killed run's outputs are always described)
    assert rep.written == 0 and len(rep.failures) == 1 and (tmp_path / "dst" / SETTINGS_FILE).exists()
    shutil.copy(sorted(imagenet_dir.glob("*.JPEG"))[0], src / "good.jpg")
    # other settings than the run that wrote nothing: not refused
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "dst"), *fixed, "--subsampling", "420"])
    assert "1 written" in r.output and (tmp_path / "dst" / SETTINGS_FILE).exists(), r.output


def test_sdq_crop_says_what_it_drops_and_records_it(tmp_path, imagenet_dir):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(sorted(imagenet_dir.glob("*.JPEG"))[0], src / "a.jpg")
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "dst"), "--levels", "sdq:crop", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "outside the classifier's centre crop" in r.output and "random crops" in r.output
    rec = json.loads((tmp_path / "dst" / SETTINGS_FILE).read_text())
    assert "centre crop" in rec["settings"]["drops"]
    r = CliRunner().invoke(
        app, ["compress", str(src), str(tmp_path / "d2"), "--tables", "preset:efficientnet-lite0-420"]
    )
    assert "random crops" not in r.output


def test_the_network_choice_ends_with_a_check(tmp_path, imagenet_dir):
    src = tmp_path / "src"
    src.mkdir()
    for f in sorted(imagenet_dir.glob("*.JPEG"))[:3]:
        shutil.copy(f, src / f.name)
    args = ["compress", str(src), str(tmp_path / "dst"), "--choose", "network", "--family", "standard:30,70",
            "--device", "cpu"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "check on 3 files (efficientnet-lite0): top-1 prediction kept on" in r.output, r.output
    r = CliRunner().invoke(app, [*args[:2], str(tmp_path / "d2"), *args[3:], "--check", "0"])
    assert r.exit_code == 0 and "check on" not in r.output


SCRIPT = """
import sys
from dnnjpeg.choosers import make_chooser
from dnnjpeg.compress import compress_tree
from dnnjpeg.presets import load_preset

ch = make_chooser(tables=load_preset("efficientnet-lite0-420"), sdq="fisher", lam=0.05)
rep = compress_tree(sys.argv[1], sys.argv[2], ch, workers=2)
print("written", rep.written, "failed", len(rep.failures))
"""


def test_the_python_api_works_from_a_script_without_a_main_guard(tmp_path, imagenet_dir):
    src = tmp_path / "src"
    src.mkdir()
    for f in sorted(imagenet_dir.glob("*.JPEG"))[:2]:
        shutil.copy(f, src / f.name)
    (tmp_path / "plain.py").write_text(SCRIPT)
    r = subprocess.run([sys.executable, str(tmp_path / "plain.py"), str(src), str(tmp_path / "dst")],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0 and "written 2 failed 0" in r.stdout, r.stderr[-2000:]
    assert 'if __name__ == "__main__":' in r.stderr  # the warning says what to add for every core


def test_a_cmyk_sources_ink_profile_is_not_given_to_the_rgb_output(tmp_path):
    """A CMYK JPEG's ICC profile describes ink; the re-encode is RGB: its comment travels, its profile not."""
    src = tmp_path / "src"
    src.mkdir()
    cmyk = Image.new("CMYK", (64, 48), (10, 200, 30, 5))
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=98, icc_profile=ICC, comment=b"print proof")
    (src / "ink.jpg").write_bytes(buf.getvalue())
    rep = compress_tree(src, tmp_path / "dst", TABLE, workers=1, allow_larger=True)
    assert rep.written == 1 and rep.kept == 0
    with Image.open(tmp_path / "dst" / "ink.jpg") as im:
        assert im.mode == "RGB" and "icc_profile" not in im.info and im.info["comment"] == b"print proof"


def test_a_full_destination_stops_copying_other_files(tmp_path, monkeypatch):
    import errno

    import dnnjpeg._io as io_mod

    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_text("x")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_mod, "atomic_write_bytes", full)
    with pytest.raises(OSError, match="No space"):
        compress_tree(src, tmp_path / "dst", TABLE, workers=1, copy_other=True)
