"""The QNet chooser (dnnjpeg.qnet): features, targets, resumable samples, the fit, the rule, files, CLI."""

import json

import numpy as np
import pytest

from dnnjpeg.choosers import QNetChoice
from dnnjpeg.codec import QuantTables, decode, encode
from dnnjpeg.evaluate.selection import choose
from dnnjpeg.families import TableFamily, parse_family
from dnnjpeg.qnet import (
    QNet,
    augment,
    load_qnet,
    make_samples,
    probe_stats,
    quantization_error,
    save_qnet,
    train_qnet,
)
from dnnjpeg.select import select_encode

from .evaluate.tiny import tiny_model

FAM = TableFamily.from_table_set([QuantTables.standard(q) for q in (5, 20, 50, 90)], name="ladder4")


def _images(n, seed):
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.integers(0, 256, (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3), dtype=np.uint8)
        h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        out.append(np.asarray(Image.fromarray(base).resize((w, h), Image.BICUBIC)))
    return out


@pytest.fixture(scope="module")
def samples():
    return make_samples(_images(40, 0), FAM, tiny_model(), tiny_model(), augmentations=2, seed=0)


def test_quantization_error_is_the_decoded_error_in_the_crop():
    """Parseval: the DCT-domain error of a gray image equals libjpeg's pixel error (its integer DCT aside)."""
    rng = np.random.default_rng(3)
    from PIL import Image

    gray = np.asarray(Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).resize((64, 64), Image.BICUBIC))
    fam = TableFamily.from_table_set([QuantTables.standard(q) for q in (10, 40, 80)])
    dq = quantization_error(gray, fam)
    assert dq.shape == (3, 6)
    for k, t in enumerate(fam.members):
        dec = decode(encode(gray, t), "L").astype(np.float64)
        # the centre square 0.875 × 64 = 56: blocks whose centres lie in [4, 60) are rows/cols 0..55
        mse_per_block = 64 * np.mean((dec[:56, :56] - gray[:56, :56]) ** 2)
        ours = np.exp(dq[k, :5]).sum() - 5e-3
        assert ours == pytest.approx(mse_per_block, rel=0.1)
    # finer tables, no more error in any AC band (a band zeroed by both keeps its whole energy)
    assert np.all(np.diff(dq[:, 1:5], axis=0) <= 0) and np.all(np.diff(dq[:, 1]) < 0)
    assert np.allclose(dq[:, 5], np.log(1e-3))  # gray: no chroma


def test_probe_statistics_are_entropy_confidence_and_margin():
    imgs = _images(5, 1)
    st = probe_stats(imgs, tiny_model())
    assert st.shape == (5, 3)
    assert np.all(st[:, 0] >= 0) and np.all(st[:, 1] <= 0) and np.all(st[:, 2] >= 0)
    assert st[:, 0].max() <= np.log(10) + 1e-5  # 10 classes
    assert probe_stats([], tiny_model()).shape == (0, 3)


def test_samples_are_the_classifiers_own_kl_and_resume_from_the_cache(samples, tmp_path, monkeypatch):
    assert samples.kl.shape == samples.bits.shape == (120, 4) and samples.dq.shape == (120, 4, 6)
    assert np.all(np.diff(samples.bits, axis=1) > 0)  # finer members, bigger files
    imgs = _images(3, 0)
    a = augment(imgs[1], np.random.default_rng([0, 1]))
    sel = select_encode(a, FAM.members, tiny_model(), 0.0)
    got = make_samples(imgs, FAM, tiny_model(), tiny_model(), augmentations=1, seed=0, cache=tmp_path)
    assert np.allclose(got.kl[3], sel.kl) and np.array_equal(got.bits[3], sel.bits)
    assert np.allclose(got.dq[3], quantization_error(a, FAM)) and got.pixels[3] == a.shape[0] * a.shape[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000.npz", "000001.npz", "000002.npz"]
    (tmp_path / "000002.npz").unlink()  # as if killed before the last image

    measured = []
    import dnnjpeg.qnet.samples as qn

    real = qn._image_samples
    monkeypatch.setattr(qn, "_image_samples", lambda img, *a: measured.append(img) or real(img, *a))
    again = make_samples(imgs, FAM, tiny_model(), tiny_model(), augmentations=1, seed=0, cache=tmp_path)
    assert len(measured) == 1 and np.array_equal(measured[0], imgs[2])  # only the missing image
    for x, y in zip(got._arrays(), again._arrays()):
        assert np.array_equal(x, y)


def test_a_bad_image_is_reported_and_skipped(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    good = tmp_path / "good.png"
    from PIL import Image

    Image.fromarray(_images(1, 2)[0]).save(good)
    errors = []
    d = make_samples([bad, good], FAM, tiny_model(), tiny_model(), 0, on_error=lambda f, e: errors.append(f))
    assert len(d) == 1 and errors == [bad]
    with pytest.raises(ValueError, match="no readable images"):
        make_samples([bad], FAM, tiny_model(), tiny_model(), 0, on_error=lambda f, e: None)


def test_training_is_deterministic_and_beats_the_mean_on_held_out_images(samples):
    train, held = samples.split(90)
    q1 = train_qnet(train, FAM, "tiny", "tiny")
    q2 = train_qnet(train, FAM, "tiny", "tiny")
    args = (held.bits, held.pixels, held.dq, held.stats)
    p1 = q1.predict_kl(*args)
    assert np.array_equal(p1, q2.predict_kl(*args))
    truth = np.log(np.maximum(held.kl, 1e-5))
    untrained = np.log(np.maximum(train.kl, 1e-5)).mean(0)  # the best constant per member
    assert np.mean((np.log(p1) - truth) ** 2) < 0.7 * np.mean((untrained - truth) ** 2)


def test_the_choice_is_the_rule_on_predicted_kl_and_files_are_checked(samples, tmp_path):
    q = train_qnet(samples, FAM, "tiny", "tiny")
    save_qnet(q, tmp_path / "q.json")
    assert (tmp_path / "q.json").stat().st_size < 20_000
    q = load_qnet(tmp_path / "q.json", FAM, "tiny")
    q.probe = tiny_model()
    img = _images(1, 5)[0]
    for lam in (0.0, 0.01, 10.0):
        data, k = QNetChoice(FAM, lam, qnet=q).encode(img)
        bits = np.array([8 * len(encode(img, t)) for t in FAM.members])
        dq, st = quantization_error(img, FAM)[None], probe_stats([img], tiny_model())
        pred = q.predict_kl(bits[None], np.array([img.shape[0] * img.shape[1]]), dq, st)[0]
        assert k == int(choose(bits[:, None], pred[:, None], lam)[0]) and data == encode(img, FAM.members[k])
    other = TableFamily.from_table_set([QuantTables.standard(q) for q in (10, 30, 60, 95)], name="other")
    with pytest.raises(ValueError, match="trained for the family 'ladder4 4:2:0', not for 'other"):
        load_qnet(tmp_path / "q.json", other)
    with pytest.raises(ValueError, match="trained to predict tiny, not efficientnet-lite0"):
        load_qnet(tmp_path / "q.json", FAM, "efficientnet-lite0")
    with pytest.raises(ValueError, match="trained for the family"):
        QNetChoice(other, 0.01, qnet=q)
    (tmp_path / "bad.json").write_bytes(b"not a qnet")
    with pytest.raises(ValueError, match="bad.json: not a QNet file"):
        load_qnet(tmp_path / "bad.json")
    (tmp_path / "old.pt").write_bytes(b"PK\x03\x04 torch zip")
    with pytest.raises(ValueError, match="old.pt: a QNet of the first form"):
        load_qnet(tmp_path / "old.pt")
    doc = json.loads((tmp_path / "q.json").read_text())
    doc["weights"] = doc["weights"][:2]
    (tmp_path / "short.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="short.json: a broken QNet file"):
        load_qnet(tmp_path / "short.json")
    with pytest.raises(ValueError, match="hold 4 members, the family 3"):
        train_qnet(samples, TableFamily.from_table_set(FAM.members[:3]), "tiny")
    with pytest.raises(ValueError, match="unknown QNet preset"):
        load_qnet("preset:nope")


def test_the_shipped_preset_is_for_lite0_and_the_original_sweep_and_compresses(imagenet_dir, tmp_path):
    from typer.testing import CliRunner

    from dnnjpeg.cli import app
    from dnnjpeg.codec import parse_header

    q = load_qnet("preset:efficientnet-lite0-qnet")
    fam = parse_family("preset:efficientnet-lite0-420-original-sweep")
    assert isinstance(q, QNet) and q.model_name == "efficientnet-lite0" and q.probe_name == "efficientnet-lite0@128"
    assert q.family.members == fam.members and q.info["n_samples"] >= 1000
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted(imagenet_dir.iterdir())[:3]:
        (src / p.name).write_bytes(p.read_bytes())
    args = [
        "compress",
        str(src),
        str(tmp_path / "dst"),
        "--choose",
        "qnet:preset:efficientnet-lite0-qnet",
        "--lam",
        "0.002",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "3 written" in r.output, r.output
    for p in (tmp_path / "dst").iterdir():
        if not p.name.startswith("."):
            assert parse_header(p).quant_tables() in fam.members


def test_cli_trains_a_qnet_resumes_and_compresses_with_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import dnnjpeg.models as models
    from dnnjpeg.cli import app
    from dnnjpeg.codec import decode_file, parse_header

    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda n: tiny_model() if n == "tiny" else real(n))
    src = tmp_path / "src"
    src.mkdir()
    for i, img in enumerate(_images(8, 3)):
        (src / f"n01440764_{i}.jpg").write_bytes(encode(img, QuantTables.standard(95)))
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    run = CliRunner().invoke
    q = tmp_path / "q.json"
    args = ["--family", "standard:10,50,90", "--model", "tiny", "--probe", "tiny", "--augment", "1", "--out", str(q)]
    r = run(app, ["qnet", "train", "--data", str(src), *args])
    assert r.exit_code == 0, r.output
    work = tmp_path / "q.json.samples"
    n = len(list(work.glob("*.npz")))
    assert n >= 1 and (work / "recipe.json").is_file()
    first = q.read_bytes()
    r = run(app, ["qnet", "train", "--data", str(src), *args])  # the QNet exists: not replaced without a word
    assert r.exit_code == 2 and "--overwrite" in r.output and q.read_bytes() == first
    r = run(app, ["qnet", "train", "--data", str(src), *args, "--overwrite"])  # measured already: same QNet
    assert r.exit_code == 0 and q.read_bytes() == first and len(list(work.glob("*.npz"))) == n
    r = run(app, ["qnet", "train", "--data", str(src), *args, "--seed", "1", "--overwrite"])
    assert r.exit_code == 2 and "holds samples made another way" in r.output
    r = run(
        app, ["compress", str(src), str(tmp_path / "dst"), "--choose", f"qnet:{q}", "--lam", "0.01", "--workers", "1"]
    )
    assert r.exit_code == 0, r.output
    assert "with a QNet for tiny" in r.output and "8 written" in r.output
    ladder = [QuantTables.standard(q) for q in (10, 50, 90)]
    for p in (tmp_path / "dst").glob("*.jpg"):
        assert parse_header(p).quant_tables() in ladder and decode_file(p).size
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    r = run(app, ["compress", str(src), str(tmp_path / "d2"), "--choose", f"qnet:{q}", "--family", "standard:20"])
    assert r.exit_code == 2 and "trained for the family" in r.output


def test_evaluate_measures_the_qnets_own_choice(samples, tmp_path, monkeypatch):
    import dnnjpeg.models as models
    from dnnjpeg.data import discover
    from dnnjpeg.evaluate import evaluate

    from .evaluate.tiny import write_images

    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda n: tiny_model() if n == "tiny" else real(n))
    save_qnet(train_qnet(samples, FAM, "tiny", "tiny"), tmp_path / "q.json")
    fam = parse_family(f"qnet:{tmp_path / 'q.json'}")
    assert fam.qnet is not None and fam.members == FAM.members and fam.name.endswith("q.json members")
    write_images(tmp_path / "d", 8, size=(70, 52))
    ds = discover(tmp_path / "d")
    lams = [0.001, 0.05, 1e9]
    res = evaluate(ds, tiny_model(), [TableFamily.standard([20, 80]), fam], at="original", n_boot=20,
                   select=lams, progress=False)  # fmt: skip
    by_name = {c["name"]: c for c in res["curves"]}
    members, own = by_name[fam.name], by_name[f"qnet:{tmp_path / 'q.json'}"]
    assert own["kind"] == "selected" and own["selector"].startswith("qnet tiny") and len(own["points"]) == 3
    assert f"{fam.name} per-image" in by_name  # --select still gives the in-the-loop choice beside it
    bits = np.array([p["per_image"]["bits"] for p in members["points"]])
    paths = res["pristine"]["per_image"]["path"]
    from dnnjpeg.codec import load_image

    imgs = [load_image(p, "RGB") for p in paths]
    q = fam.qnet
    pred = q.predict_kl(
        bits.T,
        np.array([a.shape[0] * a.shape[1] for a in imgs]),
        np.stack([quantization_error(a, FAM) for a in imgs]),
        probe_stats(imgs, tiny_model()),
    ).T
    for lam, p in zip(lams, own["points"]):
        assert p["per_image"]["choice"] == choose(bits, pred, lam).tolist()
    assert any(k["test"] == own["name"] for k in res["comparisons"])
    with pytest.raises(ValueError, match="--at original"):
        evaluate(ds, tiny_model(), [fam], at="input", n_boot=0, progress=False)


def test_compress_with_a_qnet_in_a_pool_resumes_after_a_kill(samples, tmp_path):
    from dnnjpeg.compress import compress_tree

    q = train_qnet(samples, FAM, "tiny", "tiny")
    q.probe = tiny_model()  # travels with the QNet to the spawned workers
    q.probe.logits(np.zeros((2, 32, 32, 3), np.uint8))  # torch's threads have run here: workers must not fork
    ch = QNetChoice(FAM, 0.01, qnet=q)
    assert not ch.in_process  # spread over compress's process pool, the probe loaded once per worker
    src = tmp_path / "src"
    src.mkdir()
    for i, img in enumerate(_images(6, 7)):
        (src / f"{i}.jpg").write_bytes(encode(img, QuantTables.standard(95)))
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    rep = compress_tree(src, tmp_path / "dst", ch, workers=2)
    assert rep.written == 6 and {p.name: p.read_bytes() for p in src.iterdir()} == before
    first = {p.name: p.read_bytes() for p in (tmp_path / "dst").glob("*.jpg")}
    # what a kill leaves: files not written yet, and a half-written one under a temporary name
    (tmp_path / "dst" / "1.jpg").unlink()
    (tmp_path / "dst" / "4.jpg").unlink()
    (tmp_path / "dst" / ".4.jpg.dnnjpeg-part").write_bytes(first["4.jpg"][:100])
    again = compress_tree(src, tmp_path / "dst", ch, workers=2, resume=True)
    assert again.written == 2 and again.skipped == 4
    assert not (tmp_path / "dst" / ".4.jpg.dnnjpeg-part").exists()  # the killed run's leftover, by its name
    assert {p.name: p.read_bytes() for p in (tmp_path / "dst").glob("*.jpg")} == first
