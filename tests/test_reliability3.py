"""Reliability III: one test per defect of the third hostile audit (each failed before its fix).

The names carry the audit's numbers (R1..R28, c1..c6; ../shared/notes/reliability-audit-3.md).
Models are tiny modules made here: the defects are about what dnnjpeg does with a model's answer,
not about any one network.
"""

from __future__ import annotations

import io
import json
import os
import stat
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from dnnjpeg.choosers.build import chooser_from_decisions
from dnnjpeg.cli import app
from dnnjpeg.codec import QuantTables
from dnnjpeg.compress import compress_tree
from dnnjpeg.models import Model, Preprocess

from .codec.makers import noise_image


def _photos(d: Path, n: int = 2, size=(48, 64), quality: int = 90, **save) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(noise_image(*size, seed=i)).save(d / f"n01440764_{i}.JPEG", quality=quality, **save)
    return d


def _tables(tmp_path: Path, q: int = 50) -> Path:
    f = tmp_path / f"q{q}.json"
    QuantTables.standard(q).save(f)
    return f


def _run(*argv) -> object:
    return CliRunner().invoke(app, [str(a) for a in argv])


class _Tiny(nn.Module):
    """(N, 3, S, S) → (N, 10) logits from the channel means: enough to tell images apart."""

    def __init__(self, poison: str | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.f = nn.Linear(3, 10)
        self.poison = poison

    def forward(self, x):
        y = self.f(x.mean((2, 3)))
        if self.poison == "nan":
            return y * float("nan")
        if self.poison == "one-row":
            return y[:1]
        if self.poison == "tuple":
            return y, y
        if self.poison == "fixed-batch" and x.shape[0] != 1:
            raise RuntimeError("Got invalid dimensions for input: index: 0 Got: 3 Expected: 1")
        return y


def _model(module: nn.Module) -> Model:
    return Model("tiny", module.eval(), Preprocess(size=32, resize=32), num_classes=10, labels="custom")


def _traced(path: Path, poison: str | None = None, classes: int = 1000) -> Path:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.f = nn.Linear(3, classes)

        def forward(self, x):
            y = self.f(x.mean((2, 3)))
            return y * float("nan") if poison == "nan" else y

    torch.jit.trace(M().eval(), torch.zeros(2, 3, 224, 224)).save(str(path))
    return path


# -- data loss -------------------------------------------------------------------------------------


def test_R1_a_single_file_never_replaces_another_photo_in_a_folder_dst(tmp_path):
    folder = tmp_path / "s"
    _photos(folder, 1)
    photo = folder / "pic.jpg"
    (folder / "n01440764_0.JPEG").rename(photo)
    Image.fromarray(noise_image(32, 32, seed=7)).save(folder / "pic.png")
    before = photo.read_bytes()
    for extra in ([], ["--overwrite"]):
        res = _run("compress", folder / "pic.png", folder, "--tables", _tables(tmp_path), *extra)
        assert res.exit_code != 0
        assert "does not derive a name that replaces it" in res.output
        assert photo.read_bytes() == before
    res = _run("compress", folder / "pic.png", photo, "--tables", _tables(tmp_path), "--overwrite")
    assert res.exit_code == 0, res.output  # the name given is what was asked for
    assert Image.open(photo).size == (32, 32)


# -- hang and resource -----------------------------------------------------------------------------


def test_R12_workers_are_capped_by_files_and_cores():
    from dnnjpeg.compress.run import _workers

    assert _workers(300, 4) == 4
    assert _workers(10**6, 10**7) <= 4 * (os.cpu_count() or 1)
    assert _workers(None, 1) == 1


def test_R13_copy_other_streams_a_large_file(tmp_path):
    import tracemalloc

    src = _photos(tmp_path / "src", 1)
    big = src / "archive.bin"
    with open(big, "wb") as f:  # sparse: 64 MiB on paper
        f.truncate(64 << 20)
    tracemalloc.start()
    try:
        rep = compress_tree(src, tmp_path / "dst", QuantTables.standard(50), workers=1, copy_other=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rep.copied == 1 and (tmp_path / "dst" / "archive.bin").stat().st_size == 64 << 20
    assert peak < 16 << 20, f"peak {peak / 2**20:.0f} MiB for a 64 MiB copy"


# -- silently wrong --------------------------------------------------------------------------------


def test_R2_folders_that_are_no_imagenet_classes_give_no_labels(tmp_path):
    from dnnjpeg.check import pairs
    from dnnjpeg.data import discover

    for d in ("cats", "dogs"):
        _photos(tmp_path / "cls" / d, 1)
    imagenet = types.SimpleNamespace(info={}, labels="imagenet")
    ds = discover(tmp_path / "cls").for_model(imagenet)
    assert all(r.label is None for r in ds.records) and len(ds.records) == 2
    compress_tree(tmp_path / "cls", tmp_path / "out", QuantTables.standard(50), workers=1)
    found, missing, labeled = pairs(tmp_path / "cls", tmp_path / "out", imagenet)
    assert len(found) == 2 and not missing and not labeled
    wnids = tmp_path / "wn" / "n01440764"
    _photos(wnids, 1)
    assert discover(tmp_path / "wn").for_model(imagenet).records[0].label == 0  # real classes still count


def _private(d: Path) -> Path:
    """One photo stored at q5 (no q95 re-encode can beat it) with GPS in its EXIF and a comment."""
    d.mkdir(parents=True)
    ex = Image.Exif()
    ex[0x0131] = "GPS-SECRET"
    ex[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}
    Image.fromarray(noise_image(48, 64, seed=3)).save(
        d / "low.jpg", quality=5, exif=ex.tobytes(), comment=b"SECRET-COMMENT"
    )
    return d


def test_R3_strip_metadata_applies_to_a_kept_source(tmp_path):
    src = _private(tmp_path / "priv")
    rep = compress_tree(src, tmp_path / "out", QuantTables.standard(95), workers=1, strip_metadata=True)
    out = (tmp_path / "out" / "low.jpg").read_bytes()
    assert rep.kept == 1
    assert b"GPS-SECRET" not in out and b"SECRET-COMMENT" not in out
    a = np.asarray(Image.open(src / "low.jpg"))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out))), a)  # stripped losslessly
    rep = compress_tree(src, tmp_path / "kept", QuantTables.standard(95), workers=1)
    assert b"GPS-SECRET" in (tmp_path / "kept" / "low.jpg").read_bytes()  # without the flag: byte for byte


def test_R4_resize_resizes_every_output_and_counts_the_larger(tmp_path):
    src = _private(tmp_path / "priv")
    rep = compress_tree(src, tmp_path / "out", QuantTables.standard(95), workers=1, resize=32)
    assert Image.open(tmp_path / "out" / "low.jpg").size == (32, 32)
    assert rep.kept == 0 and rep.larger == 1


def test_R5_keep_prediction_with_resize_is_refused_before_a_model_loads(tmp_path, monkeypatch):
    import dnnjpeg.models

    def no(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(dnnjpeg.models, "load_model", no)
    src = _photos(tmp_path / "src", 1)
    res = _run("compress", src, tmp_path / "dst", "--choose", "network", "--keep-prediction", "--resize", "224")
    assert res.exit_code != 0 and "--keep-prediction keeps each stored image's own answer" in res.output
    assert not (tmp_path / "dst").exists()


def test_R6_keep_prediction_keeps_every_committee_members_answer():
    from dnnjpeg.models.committee import top1_kept

    committee = types.SimpleNamespace(labels="committee", info={"member_classes": [3, 3]})
    ref = np.array([5.0, 0, 0, 0, 0, 1])  # member A says 0, member B says 2
    cands = np.array(
        [
            [5.0, 0, 0, 0, 0, 1],  # both kept
            [9.0, 0, 0, 0, 1, 0],  # A kept, B changed: the stacked arg-max (0) is still A's answer
            [0.0, 1, 0, 0, 0, 9],  # A changed
        ]
    )
    assert top1_kept(committee, ref, cands).tolist() == [True, False, False]
    single = types.SimpleNamespace(labels="imagenet", info={})
    assert top1_kept(single, ref, cands).tolist() == [True, True, False]


def test_R7_the_record_exists_before_the_first_output(tmp_path, monkeypatch):
    import dnnjpeg._io as io_mod
    from dnnjpeg._fs import COMPRESS_RECORD

    src = _photos(tmp_path / "src", 3)
    dst = tmp_path / "dst"
    seen = []
    real = io_mod.atomic_write_bytes

    def spy(path, *a, **k):
        if Path(path).suffix == ".JPEG":
            seen.append((dst / COMPRESS_RECORD).is_file())
        return real(path, *a, **k)

    monkeypatch.setattr(io_mod, "atomic_write_bytes", spy)
    for mod in ("dnnjpeg.compress.files", "dnnjpeg.compress.run"):
        m = __import__(mod, fromlist=["x"])
        if hasattr(m, "atomic_write_bytes"):
            monkeypatch.setattr(m, "atomic_write_bytes", spy)
    compress_tree(src, dst, QuantTables.standard(50), workers=1)
    assert seen and all(seen)
    # a run killed after its first output: its record says which settings the outputs have
    (dst / "n01440764_1.JPEG").unlink()
    with pytest.raises(ValueError, match="other settings|--overwrite"):
        compress_tree(src, dst, QuantTables.standard(20), workers=1, resume=True)


def test_R8_the_mpf_index_of_an_mpo_source_is_not_copied(tmp_path):
    src = tmp_path / "mpo"
    src.mkdir()
    a = Image.fromarray(noise_image(48, 64, seed=1))
    a.save(src / "two.jpg", "MPO", save_all=True, append_images=[a.transpose(0)], quality=95)
    assert b"MPF\0" in (src / "two.jpg").read_bytes()
    compress_tree(src, tmp_path / "out", QuantTables.standard(50), workers=1)
    out = tmp_path / "out" / "two.jpg"
    assert b"MPF\0" not in out.read_bytes()
    im = Image.open(out)
    im.load()
    assert getattr(im, "n_frames", 1) == 1


@pytest.mark.parametrize(
    "poison,match",
    [
        ("nan", "not finite"),  # R9
        ("one-row", "returns 1 rows for a batch of 3"),  # R10
        ("fixed-batch", "fixed batch"),  # R11
        ("tuple", "got a tuple of 2"),  # c6
    ],
)
def test_R9_R10_R11_c6_a_model_is_tried_on_real_batches_before_any_work(poison, match):
    from dnnjpeg.models.files import validate_module

    assert validate_module(_Tiny().eval(), 32, "tiny.pt") == 10
    with pytest.raises(ValueError, match=match) as e:
        validate_module(_Tiny(poison).eval(), 32, "tiny.pt")
    assert "tiny.pt" in str(e.value) and "\n" not in str(e.value)


def test_R9_non_finite_logits_at_run_time_are_per_file_failures(tmp_path):
    from dnnjpeg.check import check_tree

    src = _photos(tmp_path / "src", 2)
    compress_tree(src, tmp_path / "out", QuantTables.standard(50), workers=1)
    res = check_tree(src, tmp_path / "out", _model(_Tiny("nan")), n_boot=10)
    assert res.files == 0 and len(res.failures) == 2 and not res.complete
    assert all("finite" in why for _, why in res.failures)


def test_R10_a_model_returning_fewer_rows_is_never_broadcast():
    m = _model(_Tiny("one-row"))
    with pytest.raises(ValueError, match="one row of logits per image"):
        m.logits(np.zeros((2, 32, 32, 3), np.uint8))


def test_R9_R11_a_bad_model_file_is_one_line_in_check(tmp_path):
    src = _photos(tmp_path / "src", 1)
    compress_tree(src, tmp_path / "out", QuantTables.standard(50), workers=1)
    res = _run("check", src, tmp_path / "out", "--model", _traced(tmp_path / "nan.pt", "nan"))
    assert res.exit_code != 0 and "not finite" in res.output and "Traceback" not in res.output


def test_R26_a_resumed_budget_keeps_the_lambda_found_for_the_whole_tree(tmp_path):
    src = _photos(tmp_path / "src", 4, size=(64, 64))
    whole = compress_tree(src, tmp_path / "dst", chooser_from_decisions("rate", "round", target_bpp=1.5), workers=1)
    files = sorted((tmp_path / "dst").glob("*.JPEG"))
    first = {f.name: f.read_bytes() for f in files}
    for f in files[:2]:
        f.unlink()  # as if killed after two outputs
    again = compress_tree(
        src, tmp_path / "dst", chooser_from_decisions("rate", "round", target_bpp=1.5), workers=1, resume=True
    )
    assert again.resumed_lam and again.lam == pytest.approx(whole.lam)
    assert {f.name: f.read_bytes() for f in sorted((tmp_path / "dst").glob("*.JPEG"))} == first


# -- traceback and accepted silently ---------------------------------------------------------------


def test_R14_check_json_is_strict_when_nothing_is_measured(tmp_path):
    from dnnjpeg.check import check_tree

    src = _photos(tmp_path / "src", 1)
    (tmp_path / "empty").mkdir()
    res = check_tree(src, tmp_path / "empty", _model(_Tiny()), n_boot=10)

    def refuse(c):
        raise AssertionError(f"{c} in strict JSON")

    d = json.loads(json.dumps(res.to_dict()), parse_constant=refuse)
    assert d["mean_kl"] is None and d["files"] == 0


def test_R15_check_counts_sources_without_a_measurable_output(tmp_path):
    from dnnjpeg.check import check_tree

    src = _photos(tmp_path / "src", 3)
    out = tmp_path / "out"
    compress_tree(src, out, QuantTables.standard(50), workers=1)
    (out / "n01440764_0.JPEG").unlink()
    b = (out / "n01440764_1.JPEG").read_bytes()
    (out / "n01440764_1.JPEG").write_bytes(b[: len(b) // 3])
    res = check_tree(src, out, _model(_Tiny()), n_boot=10)
    assert res.files == 1 and len(res.missing) == 1 and len(res.failures) == 1 and not res.complete
    assert "1 of 3 files" in res.verdict() and "1 without output, 1 unreadable" in res.verdict()


def test_R16_check_refuses_src_as_dst_and_skips_a_dst_inside_src(tmp_path):
    from dnnjpeg.check import check_tree

    src = _photos(tmp_path / "src", 2)
    with pytest.raises(ValueError, match="is SRC itself"):
        check_tree(src, src, _model(_Tiny()))
    res = _run("check", src, src)
    assert res.exit_code != 0 and "is SRC itself" in res.output
    # compress refuses DST inside SRC; a tree copied there by hand is still no source of its own
    other = tmp_path / "other"
    compress_tree(src, other, QuantTables.standard(50), workers=1)
    other.rename(src / "out")
    res = check_tree(src, src / "out", _model(_Tiny()), n_boot=10)
    assert res.files == 2 and not res.missing


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--target-drop", "inf"], "--target-drop"),
        (["--target-drop", "nan"], "--target-drop"),
        (["--target-drop", "-5"], "--target-drop"),
        (["--reference", "nosuch"], "--reference"),
        (["--select", "--select-lambdas", "nan"], "--select-lambdas"),
    ],
)
def test_R17_evaluate_refuses_bad_values_before_a_model_loads(tmp_path, monkeypatch, extra, match):
    import dnnjpeg.models

    def no(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(dnnjpeg.models, "load_model", no)
    src = _photos(tmp_path / "src", 2)
    res = _run("evaluate", "--data", src, "--codec", "standard:50,90", "--bootstrap", "0",
               "--out", tmp_path / "ev", *extra)  # fmt: skip
    assert res.exit_code != 0 and match in res.output and "AssertionError" not in res.output


def test_R18_check_refuses_a_bad_seed_first(tmp_path, monkeypatch):
    import dnnjpeg.models

    monkeypatch.setattr(dnnjpeg.models, "load_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    src = _photos(tmp_path / "src", 1)
    res = _run("check", src, src, "--seed", "-1")
    assert res.exit_code != 0 and "--seed" in res.output


def test_R19_copy_other_names_what_it_never_opens(tmp_path):
    src = _photos(tmp_path / "src", 1)
    (src / "notes.txt").write_text("hi")
    os.mkfifo(src / "pipe.txt")
    os.symlink("/dev/zero", src / "zero.bin")
    res = _run("compress", src, tmp_path / "dst", "--tables", _tables(tmp_path), "--copy-other")
    assert res.exit_code == 0, res.output
    assert "pipe.txt" in res.output and "zero.bin" in res.output and "never opened" in res.output
    assert (tmp_path / "dst" / "notes.txt").read_text() == "hi"
    assert not (tmp_path / "dst" / "pipe.txt").exists() and not os.path.lexists(tmp_path / "dst" / "zero.bin")
    again = _run("compress", src, tmp_path / "dst", "--tables", _tables(tmp_path), "--copy-other", "--resume")
    assert again.exit_code == 0 and "1 already there" in again.output  # c5
    assert "not copied (--copy-other" not in again.output


def test_R20_a_blob_starting_like_a_jpeg_is_copied_as_other(tmp_path):
    src = _photos(tmp_path / "src", 1)
    blob = b"\xff\xd8\xff\xe0" + np.random.default_rng(0).bytes(500)
    (src / "blob.dat").write_bytes(blob)
    rep = compress_tree(src, tmp_path / "dst", QuantTables.standard(50), workers=1, copy_other=True)
    assert (tmp_path / "dst" / "blob.dat").read_bytes() == blob and not rep.failures
    rep = compress_tree(src, tmp_path / "no", QuantTables.standard(50), workers=1)
    assert len(rep.failures) == 1  # without --copy-other it is a file that does not decode, named


def test_R21_R22_R28_model_names_are_never_misread(tmp_path):
    from dnnjpeg.models import load_model
    from dnnjpeg.models.files import model_spec

    odd = tmp_path / "a,b"
    odd.mkdir()
    (odd / "classes.txt").write_text("x\ny\n")
    with pytest.raises(ValueError, match="cannot be named here"):  # R21
        model_spec("efficientnet-lite0", classes=odd / "classes.txt")
    a, b = _traced(tmp_path / "a.pt"), _traced(tmp_path / "b.pt")
    committee = load_model(f"{a}+{b}")  # R22
    assert committee.labels == "committee" and committee.info["member_classes"] == [1000, 1000]
    with pytest.raises(ValueError, match="weights= gives"):  # R28
        load_model(model_spec(str(a), "weights=x.pth"))
    with pytest.raises(ValueError, match="given twice"):
        load_model("efficientnet-lite0;size=224,size=256")


def test_R23_c4_foreign_messages_are_one_line(tmp_path, capfd):
    from dnnjpeg.models import ModelUnavailableError, load_model

    class M(nn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    pt2 = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(M(), (torch.zeros(2, 3, 32, 32),)), str(pt2))
    bad = tmp_path / "t.pt2"
    bad.write_bytes(pt2.read_bytes()[:2000])
    capfd.readouterr()
    with pytest.raises((ModelUnavailableError, ValueError)) as e:
        load_model(str(bad))
    assert "\n" not in str(e.value) and "t.pt2" in str(e.value)
    assert "Traceback" not in "".join(capfd.readouterr())
    # c4: a pickle that the weights-only loader blocks: our words, never torch's advice to load it unsafely
    evil = tmp_path / "evil.pt"
    torch.save({"x": types.SimpleNamespace()}, evil)
    src = _photos(tmp_path / "src", 1)
    res = _run("compress", src, tmp_path / "dst", "--choose", f"tablenet:{evil}", "--lam", "0.1")
    assert res.exit_code != 0 and "evil.pt" in res.output and "could run code" in res.output
    assert "weights_only=False" not in res.output and len(res.output.strip().splitlines()) <= 3


def test_R24_an_unwritable_dst_is_one_line_before_any_image_is_read(tmp_path, monkeypatch):
    import dnnjpeg.compress.owner as owner
    import dnnjpeg.compress.run as run

    src = _photos(tmp_path / "src", 2)
    real = owner.os.open

    def denied(path, flags, *a):
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied")
        return real(path, flags, *a)

    monkeypatch.setattr(owner.os, "open", denied)
    monkeypatch.setattr(run, "_Run", None)  # any image read would need it
    with pytest.raises(ValueError, match="cannot write there") as e:
        compress_tree(src, tmp_path / "dst", QuantTables.standard(50), workers=1)
    assert "dst" in str(e.value)


def test_R25_a_second_run_into_the_same_dst_is_refused_while_the_first_lives(tmp_path):
    import subprocess
    import sys

    from dnnjpeg._fs import COMPRESS_LOCK

    src = _photos(tmp_path / "src", 1)
    dst = tmp_path / "dst"
    dst.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (dst / COMPRESS_LOCK).write_text(f"{other.pid}\n")
        with pytest.raises(ValueError, match=f"another dnnjpeg run \\(pid {other.pid}\\)"):
            compress_tree(src, dst, QuantTables.standard(50), workers=1)
    finally:
        other.kill()
        other.wait()
    rep = compress_tree(src, dst, QuantTables.standard(50), workers=1)  # its process is gone: taken over
    assert rep.written == 1 and not (dst / COMPRESS_LOCK).exists()


def test_R27_a_killed_record_write_leaves_nothing_the_next_run_keeps(tmp_path):
    from dnnjpeg._fs import COMPRESS_RECORD
    from dnnjpeg._io import part_name

    src = _photos(tmp_path / "src", 1)
    dst = tmp_path / "dst"
    dst.mkdir()
    part = part_name(dst / COMPRESS_RECORD)
    part.write_text("{half a record")
    compress_tree(src, dst, QuantTables.standard(50), workers=1)
    assert not part.exists() and (dst / COMPRESS_RECORD).is_file()
    assert [p.name for p in dst.iterdir() if p.name.endswith(".part")] == []


# -- cosmetic --------------------------------------------------------------------------------------


def test_c1_a_file_given_for_a_folder_is_named_so(tmp_path):
    src = _photos(tmp_path / "src", 1)
    f = src / "n01440764_0.JPEG"
    res = _run("check", f, src)
    assert res.exit_code != 0 and "is a file, not a folder" in res.output
    res = _run("evaluate", "--data", f, "--codec", "standard:50", "--out", tmp_path / "ev")
    assert res.exit_code != 0 and "is a file, not a folder" in res.output


def test_c2_c3_bad_budget_and_rate_file_say_what_they_are(tmp_path):
    src = _photos(tmp_path / "src", 1)
    res = _run("compress", src, tmp_path / "a", "--levels", "sdq:mse", "--file-bpp", "0")
    assert res.exit_code != 0 and "--file-bpp must be a finite number of bits per pixel > 0" in res.output
    res = _run("compress", src, tmp_path / "b", "--choose", f"rate:{tmp_path / 'nope.json'}")
    assert res.exit_code != 0 and "the evaluation whose KL the choice uses cannot be read" in res.output
    assert "Errno" not in res.output


def test_c4_a_table_json_given_as_a_tablenet_is_one_line(tmp_path):
    src = _photos(tmp_path / "src", 1)
    res = _run("compress", src, tmp_path / "a", "--choose", f"tablenet:{_tables(tmp_path)}", "--lam", "0.1")
    assert res.exit_code != 0
    err = [line for line in res.output.splitlines() if line.strip()]
    assert len(err) <= 3 and "weights_only" not in res.output and "Traceback" not in res.output


def test_dst_lock_and_record_are_skipped_by_discovery(tmp_path):
    from dnnjpeg._fs import COMPRESS_LOCK
    from dnnjpeg.data import discover

    src = _photos(tmp_path / "src", 1)
    (src / COMPRESS_LOCK).write_text("123\n")
    assert [r.path.name for r in discover(src).records] == ["n01440764_0.JPEG"]
    assert stat.S_ISREG(os.lstat(src / COMPRESS_LOCK).st_mode)
