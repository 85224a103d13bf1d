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


def test_the_feature_loss_falls_on_a_tiny_run(photos, lite0):
    cfg = DistillConfig(steps=40, batch_size=4, lr=5e-3, checkpoint_every=10, stem=TINY)
    res = distill(photos, lite0, cfg)
    losses = [h["feature_loss"] for h in res.history]
    assert len(losses) == 4 and losses[-1] < 0.95 * losses[0]
    assert not res.stem.training
    assert all(not p.requires_grad for p in []) or all(p.requires_grad for p in lite0.module.parameters())


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
    with pytest.raises(ValueError, match="another distillation"):
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
