"""Distilling a DCT stem from a pretrained pixel classifier (dnnjpeg.dct.distill): samples, the loss
falling on a tiny run, exact resume, and the CLI."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from dnnjpeg.cli import app
from dnnjpeg.codec import parse_header_bytes
from dnnjpeg.dct.distill import QUALITY_RANGE, DistillConfig, augment, distill
from dnnjpeg.models import load_model

TINY = {"width": 16, "chroma": 8, "blocks": 1, "expand": 2}


@pytest.fixture(scope="module")
def lite0():
    return load_model("efficientnet-lite0")


@pytest.fixture(scope="module")
def photos(kodak_dir):
    names = ["kodim03.png", "kodim05.png", "kodim15.png", "kodim23.png"]
    return [np.asarray(Image.open(kodak_dir / n).convert("RGB"))[:300, :360] for n in names]


def test_samples_are_420_files_and_their_own_decode(photos, lite0):
    seen = set()
    for k in range(6):
        data, px = augment(photos[0], np.random.default_rng(k), lite0.preprocess)
        h = parse_header_bytes(data)
        assert (h.width, h.height, h.subsampling) == (224, 224, "4:2:0")
        assert np.array_equal(px, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        q1 = int(h.quant_tables().luma[0, 1])
        seen.add(q1)
    assert len(seen) > 1  # qualities vary (drawn from QUALITY_RANGE)
    assert QUALITY_RANGE[0] < QUALITY_RANGE[1] <= 100


def _objective(stem, lite0, photos):
    """The distillation loss (feature MSE + KL) on 8 fixed held-out samples (another seed)."""
    from dnnjpeg.dct.distill import _batch, shrink
    from dnnjpeg.dct.stem import split_model

    head, tail = split_model(lite0.module, lite0.name)
    y, c, px = _batch([shrink(p) for p in photos], lite0.preprocess, 99, 0, 8)
    with torch.no_grad():
        t = head(lite0.preprocess.normalize(px))
        f = stem.eval()(y, c)
        lp0, lq = torch.log_softmax(tail(t), 1), torch.log_softmax(tail(f), 1)
        return float(((f - t) ** 2).mean() / (t**2).mean() + (lp0.exp() * (lp0 - lq)).sum(1).mean())


def test_the_distillation_loss_falls_on_a_tiny_run(photos, lite0):
    from dnnjpeg.dct.stem import stem_for

    cfg = DistillConfig(steps=30, batch_size=8, checkpoint_every=10, stem=TINY)
    torch.manual_seed(cfg.seed)
    before = _objective(stem_for(lite0, TINY), lite0, photos)
    res = distill(photos, lite0, cfg)
    after = _objective(res.stem, lite0, photos)
    assert len(res.history) == 3 and after < 0.85 * before, (before, after)
    assert not res.stem.training and all(p.requires_grad for p in lite0.module.parameters())


def test_a_killed_run_resumes_to_the_same_stem(tmp_path, photos, lite0):
    cfg = DistillConfig(steps=6, batch_size=2, checkpoint_every=3, stem=TINY)
    whole = distill(photos, lite0, cfg, names=["a", "b", "c", "d"])
    ck = tmp_path / "s.ckpt"

    class Killed(Exception):
        pass

    def kill(step, total, loss):
        if step == 4:
            raise Killed

    with pytest.raises(Killed):
        distill(photos, lite0, cfg, names=["a", "b", "c", "d"], checkpoint=ck, progress=kill)
    assert ck.is_file()
    resumed = distill(photos, lite0, cfg, names=["a", "b", "c", "d"], checkpoint=ck)
    a, b = whole.stem.state_dict(), resumed.stem.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    assert [h["step"] for h in resumed.history] == [3, 6]
    with pytest.raises(ValueError, match="a checkpoint of another run"):
        distill(photos, lite0, DistillConfig(steps=6, batch_size=2, checkpoint_every=3, stem=TINY, seed=1),
                names=["a", "b", "c", "d"], checkpoint=ck)  # fmt: skip


def test_cli_distill_writes_a_model_and_names_bad_files(tmp_path, photos):
    d = tmp_path / "imgs"
    d.mkdir()
    for i, p in enumerate(photos[:2]):
        Image.fromarray(p).save(d / f"p{i}.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = tmp_path / "stem.pt"
    r = CliRunner().invoke(app, ["dct", "distill", "--data", str(d), "--split", "all", "--steps", "2",
                                 "--batch-size", "2", "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "broken.jpg" in r.output and out.is_file() and not (tmp_path / "stem.pt.ckpt").exists()
    m = load_model(f"dct:{out}")
    assert m.reads_coefficients and m.info["images"] == 2
    r = CliRunner().invoke(app, ["dct", "distill", "--data", str(d), "--model", "efficientnet-lite1", "--out",
                                 str(tmp_path / "x.pt")])  # fmt: skip
    assert r.exit_code != 0 and "no DCT stem split" in r.output


def test_cli_evaluate_takes_a_stem_as_a_model(tmp_path, photos):
    import json

    from dnnjpeg.dct.stem import save_stem, stem_for

    d = tmp_path / "imgs"
    d.mkdir()
    for i, p in enumerate(photos[:3]):
        Image.fromarray(p).save(d / f"p{i}.png")
    f = save_stem(stem_for(load_model("efficientnet-lite0"), TINY), "efficientnet-lite0", tmp_path / "s.pt")
    out = tmp_path / "ev"
    r = CliRunner().invoke(app, ["evaluate", "--data", str(d), "--model", f"dct:{f}", "--codec", "standard:50,90",
                                 "--bootstrap", "0", "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert f"dct:{f}" in json.dumps(res)
    r = CliRunner().invoke(app, ["evaluate", "--data", str(d), "--model", f"dct:{tmp_path / 'none.pt'}",
                                 "--out", str(tmp_path / "ev2")])  # fmt: skip
    assert r.exit_code != 0 and "no such stem file" in r.output
