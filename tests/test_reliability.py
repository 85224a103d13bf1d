"""Reliability II: one test per finding of the hostile audit (each failed before its fix).

The numbers in the test names are the audit's findings; the fuzz-corpus sweeps are in
tests/test_fuzz_corpus.py.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dnnjpeg.cli import app
from dnnjpeg.codec import QuantTables

from .codec.makers import noise_image


def _photos(d: Path, n: int = 2, size=(48, 64)) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(noise_image(*size, seed=i)).save(d / f"n01440764_{i}.JPEG", quality=90)
    return d


def _tables(tmp_path: Path) -> Path:
    f = tmp_path / "t.json"
    QuantTables.standard(50).save(f)
    return f


def _tree_bytes(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# -- 2: compress removes only what it created ------------------------------------------------------


def test_02_compress_keeps_the_users_part_files(tmp_path):
    src = _photos(tmp_path / "src")
    dst = tmp_path / "dst"
    (dst / "sub").mkdir(parents=True)
    (dst / ".notes.part").write_text("mine")
    (dst / "sub" / ".draft.txt.part").write_text("mine too")
    (dst / ".n01440764_0.JPEG.abc123.part").write_text("looks like a temporary file, is the user's")
    res = CliRunner().invoke(app, ["compress", str(src), str(dst), "--tables", str(_tables(tmp_path))])
    assert res.exit_code == 0, res.output
    assert (dst / ".notes.part").read_text() == "mine"
    assert (dst / "sub" / ".draft.txt.part").read_text() == "mine too"
    assert (dst / ".n01440764_0.JPEG.abc123.part").exists()
    assert not list(dst.rglob("*.dnnjpeg-part"))


# -- 3: --resume does not keep a hard link to the source as an output --------------------------------


def test_03_resume_encodes_a_hard_link_to_the_source(tmp_path):
    src = _photos(tmp_path / "src")
    dst = tmp_path / "dst"
    dst.mkdir()
    before = _tree_bytes(src)
    os.link(src / "n01440764_0.JPEG", dst / "n01440764_0.JPEG")
    res = CliRunner().invoke(app, ["compress", str(src), str(dst), "--tables", str(_tables(tmp_path)), "--resume"])
    assert res.exit_code == 0, res.output
    assert "2 written, 0 skipped" in res.stdout
    assert not os.path.samefile(src / "n01440764_0.JPEG", dst / "n01440764_0.JPEG")
    assert _tree_bytes(src) == before  # the source kept its bytes


# -- 9: a QNet file with absurd or non-numeric weights is refused -----------------------------------


def _qnet_doc():
    from dnnjpeg.qnet import FEATURE_NAMES, FORMAT

    t = QuantTables.standard(50).to_dict()
    k, nf = 2, len(FEATURE_NAMES)
    return {
        "format": FORMAT, "model": "m", "probe": "p", "family_name": "f", "family": [t, t],
        "subsamplings": ["4:2:0", "4:2:0"], "features": list(FEATURE_NAMES),
        "weights": [[0.1] * (nf + 1)] * k, "mean": [[0.0] * nf] * k, "std": [[1.0] * nf] * k,
    }  # fmt: skip


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d["weights"][0].__setitem__(0, 1e308), "range"),
        (lambda d: d["weights"].__setitem__(0, ["0.1"] * len(d["weights"][0])), "not a number"),
        (lambda d: d["std"][1].__setitem__(0, True), "not a number"),
    ],
)
def test_09_qnet_weights_are_validated(tmp_path, edit, match):
    from dnnjpeg.qnet import load_qnet

    f = tmp_path / "q.json"
    f.write_text(json.dumps(_qnet_doc()))
    load_qnet(f)  # the untouched file loads
    doc = _qnet_doc()
    doc["weights"] = [list(r) for r in doc["weights"]]
    doc["std"] = [list(r) for r in doc["std"]]
    edit(doc)
    f.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=match) as e:
        load_qnet(f)
    assert "q.json" in str(e.value)


def test_09_a_non_finite_prediction_is_an_error_not_member_0():
    from dnnjpeg.families import CodecSpec, TableFamily
    from dnnjpeg.qnet import FEATURE_NAMES, QNet

    t = QuantTables.standard(50)
    fam = TableFamily("f", (CodecSpec(t, "4:2:0", True), CodecSpec(t.scaled(2), "4:2:0", True)), "tables")
    nf = len(FEATURE_NAMES)
    w = np.full((2, nf + 1), 800.0)  # within the file check, overflows exp() on large features
    q = QNet(w, np.zeros((2, nf)), np.ones((2, nf)) * 1e-3, fam, "m", "p")
    bits = np.array([[1e5, 5e4]])
    with pytest.raises(ValueError, match="not a finite number"):
        q.predict_kl(bits, np.array([1e4]), np.ones((1, 2, 6)), np.ones((1, 3)))


# -- 1: no command writes its --out over a source image (or any file it did not make) ----------------


@pytest.mark.parametrize(
    "argv",
    [
        ["design", "--method", "deepn", "--data", "{d}", "--out", "{d}/n01440764_0.JPEG"],
        ["qnet", "train", "--data", "{d}", "--out", "{d}/n01440764_0.JPEG"],
        ["qnet", "train-tables", "--data", "{d}", "--out", "{d}/n01440764_0.JPEG"],
        ["dct", "distill", "--data", "{d}", "--steps", "1", "--out", "{d}/n01440764_0.JPEG"],
        ["dct", "distill", "--data", "{d}", "--steps", "1", "--out", "{d}/new-stem.pt"],
        ["evaluate", "--data", "{d}", "--out", "{d}/eval-out"],
        ["survey", "{d}", "--out", "{d}/survey-out"],
        ["train", "{d}", "--out", "{d}/train-out"],
    ],
)
def test_01_no_output_inside_the_inputs(tmp_path, argv):
    d = _photos(tmp_path / "data")
    before = _tree_bytes(d)
    res = CliRunner().invoke(app, [a.replace("{d}", str(d)) for a in argv])
    assert res.exit_code == 2, res.output
    assert "never writes into its inputs" in res.stderr
    assert _tree_bytes(d) == before and sorted(p.name for p in d.iterdir()) == sorted(before)


def test_01_an_existing_out_file_is_kept_unless_overwrite(tmp_path):
    d = _photos(tmp_path / "data", 4)
    out = tmp_path / "mine.json"
    out.write_text("the user's notes")
    res = CliRunner().invoke(app, ["design", "--method", "deepn", "--data", str(d), "--out", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.stderr and out.read_text() == "the user's notes"
    res = CliRunner().invoke(app, ["design", "--method", "deepn", "--data", str(d), "--out", str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert QuantTables.load(out).luma.shape == (8, 8)
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    res = CliRunner().invoke(app, ["design", "--method", "deepn", "--data", str(d), "--out", str(link), "--overwrite"])
    assert res.exit_code == 2 and "symbolic link" in res.stderr and not (tmp_path / "elsewhere.json").exists()


def test_01_a_report_folder_the_user_made_keeps_its_files(tmp_path):
    d = _photos(tmp_path / "data")
    mine = tmp_path / "reports"
    mine.mkdir()
    (mine / "results.json").write_text("the user's")
    res = CliRunner().invoke(app, ["evaluate", "--data", str(d), "--out", str(mine)])
    assert res.exit_code == 2 and "--overwrite" in res.stderr and "results.json" in res.stderr
    assert (mine / "results.json").read_text() == "the user's"
    # a folder dnnjpeg made (marked) has its own reports replaced by the next run
    res = CliRunner().invoke(app, ["survey", str(d), "--out", str(tmp_path / "s"), "--no-umap"])
    assert res.exit_code == 0 and (tmp_path / "s" / ".dnnjpeg-output").is_file()
    first = (tmp_path / "s" / "summary.json").read_bytes()
    res = CliRunner().invoke(app, ["survey", str(d), "--out", str(tmp_path / "s"), "--no-umap"])
    assert res.exit_code == 0 and (tmp_path / "s" / "summary.json").read_bytes() == first


# -- 4: --labels FIFO does not hang -------------------------------------------------------------------


def test_04_labels_fifo_is_refused_at_once(tmp_path):
    d = _photos(tmp_path / "data")
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)
    res = CliRunner().invoke(app, ["evaluate", "--data", str(d), "--labels", str(fifo), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "labels.csv" in res.stderr and "FIFO" in res.stderr


# -- 5: a report written inside a data folder never becomes data -------------------------------------


def test_05_outputs_in_a_data_folder_are_not_images(tmp_path):
    from dnnjpeg.data import discover

    d = _photos(tmp_path / "data")
    ds = discover(d)
    assert ds.layout == "wnid" and len(ds) == 2
    report = d / "old-eval"  # made by an earlier version, before --out inside --data was refused
    report.mkdir()
    Image.fromarray(noise_image(20, 20)).save(report / "curves.png")
    (report / ".dnnjpeg-output").write_text("")
    again = discover(d)
    assert again.layout == "wnid" and [r.path for r in again.records] == [r.path for r in ds.records]


# -- 8: survey --resume never writes through a link in place of its parts folder ---------------------


@pytest.mark.parametrize("resume", [True, False])
def test_08_survey_parts_folder_as_a_link_is_refused(tmp_path, resume):
    d = _photos(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    (out / ".survey-parts").symlink_to(target)
    res = CliRunner().invoke(app, ["survey", str(d), "--out", str(out), "--no-umap"] + (["--resume"] if resume else []))
    assert res.exit_code == 2 and "link" in res.stderr and "free space" not in res.stderr
    assert list(target.iterdir()) == [] and (out / ".survey-parts").is_symlink()


# -- 11: a zero-height header gives valid JSON and is flagged --------------------------------------


def test_11_zero_height_is_odd_and_summary_is_strict_json(tmp_path):
    import io

    d = _photos(tmp_path / "data")
    buf = io.BytesIO()
    Image.fromarray(noise_image(16, 16)).save(buf, "JPEG")
    b = bytearray(buf.getvalue())
    i = b.index(b"\xff\xc0")
    b[i + 5 : i + 7] = b"\x00\x00"  # height 0 (left to a DNL marker)
    (d / "zero.jpg").write_bytes(bytes(b))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["survey", str(d), "--out", str(out), "--no-umap"])
    assert res.exit_code == 0, res.output
    text = (out / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in summary.json"))
    odd = summary["trees"]["data"]["odd_counts"]
    assert odd["zero width or height (a height left to a DNL marker, or damage)"] == 1


# -- 6 and 17: qnet samples are reused only when they are whole and made the same way ---------------


def _qnet_run(tmp_path, monkeypatch, *extra, family="standard:10,50,90", augment="1"):
    import dnnjpeg.models as models

    from .evaluate.tiny import tiny_model

    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda n: tiny_model() if n == "tiny" else real(n))
    src = tmp_path / "src"
    if not src.exists():
        _photos(src, 6)
    args = ["qnet", "train", "--data", str(src), "--family", family, "--model", "tiny", "--probe", "tiny"]
    return CliRunner().invoke(app, args + ["--augment", augment, "--out", str(tmp_path / "q.json"), *extra])


def test_06_samples_of_another_recipe_are_measured_again_without_recipe_json(tmp_path, monkeypatch):
    work = tmp_path / "w"
    res = _qnet_run(tmp_path, monkeypatch, "--work", str(work), family="standard:20,40,60,80")
    assert res.exit_code == 0, res.output
    (work / "recipe.json").unlink()  # lost: the samples themselves must say how they were made
    res = _qnet_run(tmp_path, monkeypatch, "--work", str(work), "--overwrite")
    assert res.exit_code == 0, res.output
    assert "another recipe; measured again" in res.stderr
    kept = (tmp_path / "q.json").read_bytes()
    fresh = _qnet_run(tmp_path, monkeypatch, "--work", str(tmp_path / "w2"), "--overwrite")
    assert fresh.exit_code == 0 and (tmp_path / "q.json").read_bytes() == kept


def test_17_damaged_samples_are_measured_again(tmp_path, monkeypatch):
    work = tmp_path / "w"
    res = _qnet_run(tmp_path, monkeypatch, "--work", str(work))
    assert res.exit_code == 0, res.output
    first = (tmp_path / "q.json").read_bytes()
    files = sorted(work.glob("*.npz"))
    files[0].write_bytes(files[0].read_bytes()[:50])  # truncated
    res = _qnet_run(tmp_path, monkeypatch, "--work", str(work), "--overwrite")
    assert res.exit_code == 0, res.output
    assert "not a samples file" in res.stderr and "Traceback" not in res.output
    assert (tmp_path / "q.json").read_bytes() == first


def test_17_too_few_samples_is_refused_before_measuring(tmp_path, monkeypatch):
    import dnnjpeg.qnet as qnet
    from dnnjpeg.data import split_of

    src = tmp_path / "src"
    src.mkdir()
    name = next(f"n01440764_{i}.JPEG" for i in range(100) if split_of(f"n01440764_{i}.JPEG") == "design")
    Image.fromarray(noise_image(48, 64)).save(src / name, quality=90)
    monkeypatch.setattr(qnet, "make_samples", lambda *a, **k: pytest.fail("measured before refusing"))
    res = _qnet_run(tmp_path, monkeypatch, augment="0")
    assert res.exit_code == 2 and "at least 2 samples" in res.stderr


# -- 18: a damaged checkpoint is one clear line, before the images are read --------------------------


@pytest.mark.parametrize("kind", ["random", "truncated", "pickle"])
@pytest.mark.parametrize("command", [["dct", "distill", "--steps", "1"], ["qnet", "train-tables", "--epochs", "1"]])
def test_18_damaged_checkpoints(tmp_path, monkeypatch, kind, command):
    import io
    import pickle

    import torch

    import dnnjpeg.codec as codec

    d = _photos(tmp_path / "data", 4)
    out = tmp_path / "o.pt"
    ck = tmp_path / "o.pt.ckpt"
    if kind == "random":
        ck.write_bytes(np.random.default_rng(0).bytes(3000))
    elif kind == "truncated":
        buf = io.BytesIO()
        torch.save({"state": {"w": torch.zeros(100)}, "opt": {}, "step": 1}, buf)
        ck.write_bytes(buf.getvalue()[:300])
    else:
        ck.write_bytes(pickle.dumps(os.system))  # code: weights_only refuses it
    monkeypatch.setattr(codec, "load_image", lambda *a, **k: pytest.fail("read images before checking"))
    res = CliRunner().invoke(app, [*command, "--data", str(d), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "o.pt.ckpt: not a checkpoint dnnjpeg can read" in res.stderr and "Traceback" not in res.output
    assert ck.exists() and not out.exists()


# -- 19: a wrong stem file is one clear line --------------------------------------------------------


@pytest.mark.parametrize("edit", ["state", "config", "model"])
def test_19_a_broken_stem_file_is_refused(tmp_path, edit):
    import io

    import torch

    from dnnjpeg.dct.stem import STEM_FORMAT, load_dct_model
    from dnnjpeg.models import ModelUnavailableError

    doc = {"format": STEM_FORMAT, "model": "efficientnet-lite0", "config": {}, "state": {"nope": torch.zeros(3)}}
    if edit == "config":
        doc["config"] = {"no_such_key": 3}
    if edit == "model":
        doc["model"] = ["not", "a", "name"]
    buf = io.BytesIO()
    torch.save(doc, buf)
    (tmp_path / "s.pt").write_bytes(buf.getvalue())
    with pytest.raises(ModelUnavailableError, match="s.pt: a broken DCT stem file"):
        load_dct_model(f"dct:{tmp_path / 's.pt'}")
    res = CliRunner().invoke(
        app, ["evaluate", "--data", str(_photos(tmp_path / "d")), "--model", f"dct:{tmp_path / 's.pt'}",
              "--out", str(tmp_path / "o")]
    )  # fmt: skip
    assert res.exit_code == 2 and "a broken DCT stem file" in res.stderr and "Traceback" not in res.output


# -- 16: content, not the extension, decides what is a JPEG -----------------------------------------


def test_16_jpegs_without_an_extension_are_compressed_and_evaluated(tmp_path):
    from dnnjpeg.data import discover

    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        Image.fromarray(noise_image(40, 56, seed=i)).save(src / f"photo{i}", "JPEG", quality=90)
    (src / "README").write_text("not an image: neither named nor made like one")
    res = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "dst"), "--tables", str(_tables(tmp_path))])
    assert res.exit_code == 0 and "5 written, 0 skipped (already valid), 0 failed" in res.stdout, res.output
    assert sorted(p.name for p in (tmp_path / "dst").glob("photo*")) == [
        f"photo{i}" for i in range(5)
    ]  # names mirrored
    assert len(discover(src)) == 5


# -- 7: evaluate --resume checks what it reuses ---------------------------------------------------


def _tamper(f: Path, edit) -> None:
    import io

    z = dict(np.load(f, allow_pickle=False))
    meta = json.loads(z["meta"].tobytes())
    edit(z, meta)
    z["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **z)
    f.write_bytes(buf.getvalue())


@pytest.mark.parametrize(
    "edit",
    [
        lambda z, m: z.__setitem__("logits", z["logits"][:1]),  # 1 row for 2 images
        lambda z, m: z.__setitem__("logits", np.full_like(z["logits"], np.nan)),
        lambda z, m: m["paths"].append("/etc/passwd"),
        lambda z, m: z.__setitem__("k0_0", -np.ones_like(z["k0_0"])),
        "same-size edit",
    ],
    ids=["short-logits", "nan-logits", "extra-path", "negative-kl", "same-size-edit"],
)
def test_07_resume_verifies_saved_chunks(tmp_path, edit):
    from dnnjpeg.data import discover
    from dnnjpeg.evaluate import evaluate
    from dnnjpeg.families import parse_family

    from .evaluate.tiny import tiny_model, write_images

    write_images(tmp_path / "d", 4)
    ds = discover(tmp_path / "d")
    curves = [parse_family("standard:50")]
    kw = dict(at="original", n_boot=0, progress=False, chunk=2)
    r1 = evaluate(ds, tiny_model(), curves, cache=tmp_path / "c", **kw)
    chunk = sorted((tmp_path / "c").glob("chunk-*.npz"))[0]
    if edit == "same-size edit":
        img = ds.records[0].path
        st = img.stat()
        other = ds.records[1].path.read_bytes()
        data = bytearray(img.read_bytes())
        Image.fromarray(noise_image(*np.asarray(Image.open(img)).shape[:2], seed=9)).save(img)
        new = img.read_bytes()
        if len(new) != len(data):  # keep the size: pad or cut the PNG's trailing bytes
            new = (new + other)[: len(data)] if len(new) < len(data) else new[: len(data)]
        img.write_bytes(new)
        os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert img.stat().st_size == st.st_size and img.stat().st_mtime_ns == st.st_mtime_ns
    else:
        _tamper(chunk, edit)
    r2 = evaluate(ds, tiny_model(), curves, cache=tmp_path / "c", **kw)
    assert any("not reused" in n and "measured again" in n for n in r2["notes"])
    if edit == "same-size edit":
        # the new bytes were measured: the first image's file size (bits at q50) is another
        assert r2["curves"][0]["points"][0]["per_image"]["bits"] != r1["curves"][0]["points"][0]["per_image"]["bits"]
    else:
        per_image = [[p["per_image"] for p in c["points"]] for c in r2["curves"]]
        assert per_image == [[p["per_image"] for p in c["points"]] for c in r1["curves"]]
        assert r2["pristine"] == r1["pristine"] and "/etc/passwd" not in json.dumps(r2.to_dict(), default=str)


# -- 10: an SDQ budget below what the tables can make is out of reach, not a silent miss -------------


def test_10_sdq_target_out_of_reach_is_said(tmp_path):
    src = _photos(tmp_path / "src", 1, size=(32, 48))
    res = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "dst"), "--levels", "sdq:mse", "--tables",
                                   str(_tables(tmp_path)), "--file-bpp", "1e-9", "--workers", "1"])  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "out of reach" in res.stderr and "n01440764_0.JPEG" in res.stderr and "0 written" in res.stdout
    assert not list((tmp_path / "dst").glob("*.jpg"))


# -- 20: a model reading coefficients takes 4:2:2 files (chroma resampled), not an error after measuring


def test_20_dct_model_reads_a_422_codec(tmp_path):
    from dnnjpeg.evaluate import evaluate
    from dnnjpeg.families import parse_family
    from dnnjpeg.models import load_model

    from .evaluate.tiny import write_images

    write_images(tmp_path / "d", 2, size=(64, 80))
    from dnnjpeg.data import discover

    m = load_model("dct:efficientnet-lite0")
    r = evaluate(discover(tmp_path / "d"), m, [parse_family("standard:50@4:2:2")], at="original", n_boot=0,
                 progress=False)  # fmt: skip
    assert not r["failures"] and len(r["curves"][0]["points"][0]["per_image"]["bits"]) == 2


# -- 21: train refuses settings without a training step before reading, and goes on past bad files --


def _cifar_like(root: Path, n: int = 4) -> Path:
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(noise_image(32, 32, seed=i)).save(d / f"{i}.jpg", quality=75)
    return root


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--epochs", "0"], "--epochs and --batch-size must be ≥ 1"),
        (["--batch-size", "64"], "fewer than --batch-size 64"),
        (["--frequencies", "0", "--input", "dct"], "--frequencies must be 1..64"),
        (["--frequencies", "999", "--input", "dct"], "--frequencies must be 1..64"),
        (["--frequencies", "8"], "it is for --input dct"),
    ],
)
def test_21_train_refuses_what_cannot_train(tmp_path, extra, match):
    data = _cifar_like(tmp_path / "data")
    res = CliRunner().invoke(app, ["train", str(data), "--out", str(tmp_path / "o"), *extra])
    assert res.exit_code == 2 and match in res.stderr and "Traceback" not in res.output, res.output


def test_21_train_names_every_bad_file_and_goes_on(tmp_path):
    data = _cifar_like(tmp_path / "data")
    for i in range(3):
        (data / "train" / "cat" / f"bad{i}.jpg").write_bytes(b"\xff\xd8 broken")
    os.mkfifo(data / "train" / "dog" / "fifo.jpg")  # a FIFO is reported, never opened
    res = CliRunner().invoke(app, ["train", str(data), "--out", str(tmp_path / "o"), "--epochs", "1",
                                   "--batch-size", "4", "--width", "4"])  # fmt: skip
    assert res.exit_code == 0, res.output
    for name in ("bad0.jpg", "bad1.jpg", "bad2.jpg", "fifo.jpg"):
        assert name in res.stderr
    summary = json.loads((tmp_path / "o" / "results.json").read_text())["summary"]
    assert summary["data"]["train_images"] == 8


# -- 22: configuration files are capped in nesting depth and size ---------------------------------


def _nested(tmp_path: Path) -> Path:
    f = tmp_path / "deep.json"
    f.write_text("[" * 100_000 + "]" * 100_000)
    return f


@pytest.mark.parametrize("how", ["tables", "qnet", "kappa", "codec-tables", "codec-sweep"])
def test_22_deeply_nested_json_is_one_line(tmp_path, how):
    f = _nested(tmp_path)
    src = _photos(tmp_path / "src")
    dst = str(tmp_path / "dst")
    argv = {
        "tables": ["compress", str(src), dst, "--tables", str(f)],
        "qnet": ["compress", str(src), dst, "--choose", f"qnet:{f}", "--lam", "0.01"],
        "kappa": ["compress", str(src), dst, "--choose", f"rate:{f}", "--family", "standard:20,50", "--lam", "0.01"],
        "codec-tables": ["evaluate", "--data", str(src), "--codec", f"tables:{f}", "--out", dst],
        "codec-sweep": ["evaluate", "--data", str(src), "--codec", f"sweep:{f}", "--out", dst],
    }[how]
    res = CliRunner().invoke(app, argv)
    assert res.exit_code == 2 and "deep.json" in res.stderr and "nested deeper" in res.stderr, res.output
    assert "Traceback" not in res.output and "RecursionError" not in res.output


def test_22_a_huge_config_file_is_refused_before_reading(tmp_path):
    import tracemalloc

    from dnnjpeg.codec import QuantTables

    f = tmp_path / "huge.json"
    with open(f, "wb") as h:
        h.truncate(512 << 20)  # sparse: 512 MB that take no disk
    tracemalloc.start()
    with pytest.raises(ValueError, match="huge.json: .* too large"):
        QuantTables.load(f)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20  # nothing near the file's size was read


# -- the rest of the audit: --workers, odd names --------------------------------------------------


@pytest.mark.parametrize("cmd", ["compress", "survey"])
def test_negative_workers_are_refused(tmp_path, cmd):
    src = _photos(tmp_path / "src")
    argv = (["compress", str(src), str(tmp_path / "d"), "--tables", str(_tables(tmp_path))] if cmd == "compress"
            else ["survey", str(src), "--out", str(tmp_path / "d")])  # fmt: skip
    res = CliRunner().invoke(app, [*argv, "--workers", "-1"])
    assert res.exit_code == 2 and "--workers must be ≥ 1" in res.stderr


def test_odd_names_are_written_and_printed_escaped(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("..jpg", "a\nb\x1b[2J.jpg"):
        Image.fromarray(noise_image(16, 16)).save(src / name, "JPEG")
    (src / "bad\x1b[31m.jpg").write_bytes(b"\xff\xd8 broken")
    res = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "d"), "--tables", str(_tables(tmp_path))])
    assert res.exit_code == 1 and "2 written" in res.stdout
    assert (tmp_path / "d" / "..jpg").is_file() and (tmp_path / "d" / "a\nb\x1b[2J.jpg").is_file()
    assert "\x1b" not in res.output and "bad\\x1b[31m.jpg" in res.stderr
    res = CliRunner().invoke(app, ["info", str(src)])
    assert "\x1b" not in res.output and "a\\nb\\x1b[2J.jpg" in res.stdout
    assert len(res.stdout.splitlines()) == 2  # no line forged by a name's newline


# -- everything resumed is verified: survey parts, model files --------------------------------------


def test_survey_resume_rescans_a_damaged_part(tmp_path):
    d = _photos(tmp_path / "data", 5)
    out = tmp_path / "s"
    res = CliRunner().invoke(app, ["survey", str(d), "--out", str(out), "--no-umap"])
    assert res.exit_code == 0
    first = json.loads((out / "summary.json").read_text())
    parts = out / ".survey-parts"
    parts.mkdir()
    (parts / "part-000000.parquet").write_bytes(b"PAR1 not really")  # left by a crash, or by someone
    res = CliRunner().invoke(app, ["survey", str(d), "--out", str(out), "--no-umap", "--resume"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "summary.json").read_text()) == first


@pytest.mark.parametrize("kind", ["tablenet", "stem"])
def test_model_files_with_non_finite_weights_are_refused(tmp_path, kind):
    import io

    import torch

    if kind == "tablenet":
        from dnnjpeg.tablenet import FORMAT, _module, load_tablenet

        state = {k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v)
                 for k, v in _module().state_dict().items()}  # fmt: skip
        doc = {"format": FORMAT, "model": "efficientnet-lite0", "state": state}
        buf = io.BytesIO()
        torch.save(doc, buf)
        (tmp_path / "f.pt").write_bytes(buf.getvalue())
        with pytest.raises(ValueError, match="f.pt: a broken table-generator file .*not finite"):
            load_tablenet(tmp_path / "f.pt")
    else:
        from dnnjpeg.dct.stem import STEM_FORMAT, load_dct_model, stem_for
        from dnnjpeg.models import ModelUnavailableError, load_model

        stem = stem_for(load_model("efficientnet-lite0"))
        state = {k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v)
                 for k, v in stem.state_dict().items()}  # fmt: skip
        buf = io.BytesIO()
        torch.save({"format": STEM_FORMAT, "model": "efficientnet-lite0", "config": {}, "state": state}, buf)
        (tmp_path / "f.pt").write_bytes(buf.getvalue())
        with pytest.raises(ModelUnavailableError, match="f.pt: a broken DCT stem file .*not finite"):
            load_dct_model(f"dct:{tmp_path / 'f.pt'}")


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--data", "{d}", "--device", "gpu", "--out", "{o}"],
        ["evaluate", "--data", "{d}", "--split", "nope", "--out", "{o}"],
        ["train", "{d}", "--out", "{o}"],  # no train/ folder
        ["design", "--method", "deepn", "--data", "{d}", "--out", "{t}/t.json", "--report", "{o}", "--nope", "1"],
    ],
)
def test_01_a_refused_run_leaves_no_output_folder(tmp_path, argv):
    d = _photos(tmp_path / "data")
    argv = [a.replace("{d}", str(d)).replace("{o}", str(tmp_path / "o")).replace("{t}", str(tmp_path)) for a in argv]
    res = CliRunner().invoke(app, argv)
    assert res.exit_code != 0 and not (tmp_path / "o").exists(), res.output
