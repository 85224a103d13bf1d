"""The QNet chooser (dnnjpeg.qnet), trained tiny: targets, determinism, held-out gain, the rule, files."""

import numpy as np
import pytest

from dnnjpeg.choosers import QNetChoice
from dnnjpeg.codec import QuantTables, encode
from dnnjpeg.evaluate.selection import choose
from dnnjpeg.families import TableFamily
from dnnjpeg.qnet import QNetData, augment, load_qnet, make_samples, save_qnet, thumbnail, train_qnet
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
    return make_samples(_images(24, 0), FAM, tiny_model(), augmentations=2, seed=0)


def test_samples_are_the_classifiers_own_kl(samples):
    assert samples.thumbs.shape == (48, 64, 64, 3) and samples.kl.shape == samples.bits.shape == (48, 4)
    assert np.all(np.diff(samples.bits, axis=1) > 0)  # finer members, bigger files
    rng = np.random.default_rng(0)
    img = _images(1, 0)[0]
    a = augment(img, rng)
    sel = select_encode(a, FAM.members, tiny_model(), 0.0)
    again = make_samples([img], FAM, tiny_model(), augmentations=1, seed=0)
    assert np.allclose(again.kl[0], sel.kl) and np.array_equal(again.bits[0], sel.bits)
    assert np.array_equal(again.thumbs[0], thumbnail(a))


def test_training_is_deterministic_and_beats_an_untrained_net(samples):
    train, held = samples.split(36)
    q1 = train_qnet(train, FAM, "tiny", epochs=25, seed=1)
    q2 = train_qnet(train, FAM, "tiny", epochs=25, seed=1)
    p1 = q1.predict_kl(held.thumbs, held.bits, held.pixels)
    assert np.allclose(p1, q2.predict_kl(held.thumbs, held.bits, held.pixels))
    untrained = train_qnet(train, FAM, "tiny", epochs=0, seed=1)
    truth = np.log(np.maximum(held.kl, 1e-5))

    def err(q):
        return float(np.mean((np.log(q.predict_kl(held.thumbs, held.bits, held.pixels)) - truth) ** 2))

    assert err(q1) < 0.5 * err(untrained)


def test_the_choice_is_the_rule_on_predicted_kl_and_files_are_checked(samples, tmp_path):
    q = train_qnet(samples, FAM, "tiny", epochs=3, seed=0)
    save_qnet(q, tmp_path / "q.pt")
    q = load_qnet(tmp_path / "q.pt", FAM, "tiny")
    img = _images(1, 5)[0]
    for lam in (0.0, 0.01, 10.0):
        data, k = QNetChoice(FAM, lam, qnet=q).encode(img)
        bits = np.array([8 * len(encode(img, t)) for t in FAM.members])
        pred = q.predict_kl(thumbnail(img)[None], bits[None], np.array([img.shape[0] * img.shape[1]]))[0]
        assert k == int(choose(bits[:, None], pred[:, None], lam)[0]) and data == encode(img, FAM.members[k])
    other = TableFamily.from_table_set([QuantTables.standard(q) for q in (10, 30, 60, 95)], name="other")
    with pytest.raises(ValueError, match="trained for the family 'ladder4 4:2:0', not for 'other"):
        load_qnet(tmp_path / "q.pt", other)
    with pytest.raises(ValueError, match="trained to predict tiny, not efficientnet-lite0"):
        load_qnet(tmp_path / "q.pt", FAM, "efficientnet-lite0")
    with pytest.raises(ValueError, match="trained for the family"):
        QNetChoice(other, 0.01, qnet=q)
    (tmp_path / "bad.pt").write_bytes(b"not a qnet")
    with pytest.raises(ValueError, match="bad.pt: not a QNet file"):
        load_qnet(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="hold 4 members, the family 3"):
        train_qnet(QNetData(samples.thumbs, samples.bits, samples.pixels, samples.kl), TableFamily.from_table_set(
            FAM.members[:3]), "tiny")  # fmt: skip


def test_cli_trains_a_qnet_and_compresses_with_it(tmp_path):
    from typer.testing import CliRunner

    from dnnjpeg.cli import app
    from dnnjpeg.codec import decode_file, parse_header

    src = tmp_path / "src"
    src.mkdir()
    for i, img in enumerate(_images(8, 3)):
        (src / f"n01440764_{i}.jpg").write_bytes(encode(img, QuantTables.standard(95)))
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    run = CliRunner().invoke
    args = ["--family", "standard:10,50,90", "--augment", "1", "--epochs", "2", "--out", str(tmp_path / "q.pt")]
    r = run(app, ["qnet", "train", "--data", str(src), *args])
    assert r.exit_code == 0, r.output
    r = run(app, ["compress", str(src), str(tmp_path / "dst"), "--qnet", str(tmp_path / "q.pt"), "--lam", "0.01"])
    assert r.exit_code == 0, r.output
    assert "with a QNet for efficientnet-lite0" in r.output and "8 written" in r.output
    ladder = [QuantTables.standard(q) for q in (10, 50, 90)]
    for p in (tmp_path / "dst").glob("*.jpg"):
        assert parse_header(p).quant_tables() in ladder and decode_file(p).size
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    r = run(
        app, ["compress", str(src), str(tmp_path / "d2"), "--qnet", str(tmp_path / "q.pt"), "--family", "standard:20"]
    )
    assert r.exit_code == 2 and "trained for the family" in r.output
