"""Per-image tables from a network (dnnjpeg.tablenet), trained tiny through the differentiable codec."""

import numpy as np
import pytest
import torch

from dnnjpeg.codec import QuantTables, decode, encode, parse_header
from dnnjpeg.tablenet import load_tablenet, save_tablenet, train_tablenet

from .evaluate.tiny import tiny_model


def _crops(n, seed, size=32):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return np.stack([
        np.asarray(Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC))
        for _ in range(n)
    ])  # fmt: skip


def _state(t):
    return {k: v.clone() for k, v in t.net.state_dict().items()}


def test_training_is_deterministic_resumes_and_lowers_the_loss(tmp_path):
    crops = _crops(24, 0)
    model = tiny_model()
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    a = train_tablenet(crops, model, epochs=3, batch_size=8, seed=1)
    b = train_tablenet(crops, model, epochs=3, batch_size=8, seed=1)
    for k, v in _state(a).items():
        assert torch.equal(v, _state(b)[k])
    assert all(torch.equal(v, model.module.state_dict()[k]) for k, v in before.items())  # classifier untouched
    assert all(p.requires_grad for p in model.module.parameters())
    assert a.history[-1]["loss"] < a.history[0]["loss"]
    # killed after 2 epochs, started again with the same checkpoint: the same network as 3 in one go
    ck = tmp_path / "ck.pt"
    train_tablenet(crops, model, epochs=2, batch_size=8, seed=1, checkpoint=ck)
    c = train_tablenet(crops, model, epochs=3, batch_size=8, seed=1, checkpoint=ck)
    for k, v in _state(a).items():
        assert torch.allclose(v, _state(c)[k], atol=1e-6), k
    assert [h["epoch"] for h in c.history] == [1, 2, 3]


def test_tables_are_baseline_per_image_coarser_at_higher_lambda_and_reread_exactly(tmp_path):
    crops = _crops(16, 2)
    t = train_tablenet(crops, tiny_model(), epochs=2, batch_size=8, seed=0)
    fine, coarse = t.tables(crops, 0.002), t.tables(crops, 0.2)
    assert all(isinstance(q, QuantTables) for q in fine) and len(fine) == 16
    assert np.mean([q.luma.mean() for q in coarse]) >= np.mean([q.luma.mean() for q in fine])
    for i, (crop, q) in enumerate(zip(crops[:4], fine[:4])):
        data = encode(crop, q, "4:2:0", optimize=True)
        (tmp_path / f"{i}.jpg").write_bytes(data)
        assert parse_header(tmp_path / f"{i}.jpg").quant_tables() == q and decode(data).shape == crop.shape
    # the global control: the same tables for every image at one λ
    glob = t.tables(crops, 0.02, per_image=False)
    assert all(q == glob[0] for q in glob)
    save_tablenet(t, tmp_path / "t.pt")
    again = load_tablenet(tmp_path / "t.pt", "tiny")
    assert again.tables(crops, 0.02) == t.tables(crops, 0.02)
    with pytest.raises(ValueError, match="trained for tiny, not efficientnet-lite0"):
        load_tablenet(tmp_path / "t.pt", "efficientnet-lite0")
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(ValueError, match="bad.pt: not a table-generator file"):
        load_tablenet(tmp_path / "bad.pt")


def test_compress_gives_each_image_its_own_tables_and_the_cli_checks(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import dnnjpeg.models as models
    from dnnjpeg.choosers import TableNetChoice, make_chooser
    from dnnjpeg.cli import app
    from dnnjpeg.compress import compress_tree

    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda n: tiny_model() if n == "tiny" else real(n))
    src = tmp_path / "src"
    src.mkdir()
    imgs = _crops(5, 4, size=48)
    for i, img in enumerate(imgs):
        (src / f"n01440764_{i}.jpg").write_bytes(encode(img, QuantTables.standard(95)))
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    t = train_tablenet(_crops(16, 2), tiny_model(), epochs=1, batch_size=8, seed=0)
    save_tablenet(t, tmp_path / "t.pt")
    ch = make_chooser(tablenet=str(tmp_path / "t.pt"), lam=0.02)
    assert isinstance(ch, TableNetChoice) and "own tables" in ch.describe()
    rep = compress_tree(src, tmp_path / "dst", ch)
    assert rep.written == 5 and {p.name: p.read_bytes() for p in src.iterdir()} == before
    pre = tiny_model().preprocess
    for p in sorted((tmp_path / "dst").glob("*.jpg")):
        img = decode((src / p.name).read_bytes())
        assert parse_header(p).quant_tables() == t.tables(pre.geometry(img)[None], 0.02)[0]
    for bad in ({"lam": None}, {"lam": 0.02, "target_bpp": 0.5}, {"lam": 0.02, "family": ["standard"]}):
        with pytest.raises(ValueError, match="--choose tablenet"):
            make_chooser(tablenet=t, **bad)
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "d2"), "--choose",
                                 f"tablenet:{tmp_path / 't.pt'}", "--lam", "0.02", "--scale", "2"])  # fmt: skip
    assert r.exit_code == 2 and "--scale does not apply" in r.output
    r = CliRunner().invoke(app, ["qnet", "train-tables", "--data", str(src), "--model", "tiny", "--epochs", "2",
                                 "--out", str(tmp_path / "c.pt")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert load_tablenet(tmp_path / "c.pt", "tiny").history[-1]["epoch"] == 2 and (tmp_path / "c.pt.ckpt").is_file()
