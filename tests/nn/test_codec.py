"""The differentiable codec against the real one, and its gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dnnjpeg.codec import QuantTables, decode, encode
from dnnjpeg.nn import DiffJPEG
from dnnjpeg.nn import functional as J


def _crops(imagenet_dir, n, seed):
    rng = np.random.default_rng(seed)
    files = sorted(imagenet_dir.glob("*.JPEG"))
    for f in rng.choice(files, n, replace=False):
        im = np.asarray(Image.open(f).convert("RGB"))
        h, w = rng.integers(17, 140, 2)  # odd and even sizes, partial MCUs
        y, x = rng.integers(0, im.shape[0] - h), rng.integers(0, im.shape[1] - w)
        yield im[y : y + h, x : x + w].copy()


def _random_tables(rng):
    return QuantTables(rng.integers(1, 120, (8, 8)), rng.integers(1, 160, (8, 8)))


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
def test_exact_mode_matches_pillow(imagenet_dir, subsampling):
    rng = np.random.default_rng(1)
    errs = []
    for i, im in enumerate(_crops(imagenet_dir, 18, 3)):
        t = QuantTables.standard([5, 30, 50, 75, 90, 98][i % 6]) if i % 3 else _random_tables(rng)
        real = np.asarray(decode(encode(im, t, subsampling=subsampling))).astype(np.float64)
        x = torch.from_numpy(im).permute(2, 0, 1)[None].float()
        ours = DiffJPEG(subsampling, "exact")(x, t)[0].permute(1, 2, 0).numpy()
        errs.append(np.abs(ours - real).ravel())
    e = np.concatenate(errs)
    assert e.mean() <= 0.5, e.mean()
    assert e.max() <= 4, e.max()


def test_exact_levels_equal_the_file_coefficients(imagenet_dir, tmp_path):
    from dnnjpeg.codec import read_coefficients

    im = next(_crops(imagenet_dir, 1, 7))
    t = QuantTables.standard(80)
    p = tmp_path / "a.jpg"
    p.write_bytes(encode(im, t, subsampling="4:2:0"))
    coef = read_coefficients(p)
    _, enc = DiffJPEG("4:2:0", "exact")(torch.from_numpy(im).permute(2, 0, 1)[None].float(), t, return_levels=True)
    ours = [enc.levels_y[0, 0], enc.levels_c[0, 0], enc.levels_c[0, 1]]
    for o, ref in zip(ours, coef.blocks):
        o = o.numpy().reshape(*o.shape[:2], 8, 8)
        nh, nw = ref.shape[:2]  # the file leaves out the MCU's dummy blocks
        np.testing.assert_array_equal(o[:nh, :nw], ref)


@pytest.mark.parametrize("rounding", ["ste", "cubic", "noise", "soft"])
def test_gradients_reach_tables_and_input(rounding):
    torch.manual_seed(0)
    x = (torch.rand(2, 3, 24, 40) * 255).requires_grad_(True)
    q = torch.full((2, 8, 8), 12.0, requires_grad=True)
    codec = DiffJPEG("4:2:0", rounding).train()
    y, enc = codec(x, q, return_levels=True)
    from dnnjpeg.nn import RateModel

    loss = ((y - x.detach()) ** 2).mean() + 1e-3 * RateModel.default("4:2:0")(enc.continuous()).mean()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert q.grad is not None and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0


def test_per_sample_tables_give_per_sample_outputs():
    torch.manual_seed(0)
    img = torch.rand(1, 3, 32, 32) * 255
    t1, t2 = QuantTables.standard(90), QuantTables.standard(10)
    batch = torch.stack([torch.as_tensor(t1.as_array()), torch.as_tensor(t2.as_array())]).float()
    codec = DiffJPEG("4:2:0", "exact")
    out = codec(img.expand(2, -1, -1, -1), batch)
    assert torch.equal(out[0], codec(img, t1)[0])
    assert torch.equal(out[1], codec(img, t2)[0])
    assert not torch.equal(out[0], out[1])
    with pytest.raises(ValueError, match="per-sample tables"):
        codec(img.expand(3, -1, -1, -1), batch)


def test_soft_quantizer_tends_to_hard_rounding():
    torch.manual_seed(0)
    z = torch.randn(10_000) * 40
    q = torch.full_like(z, 7.0)
    hard = torch.sign(z / q) * torch.floor((z / q).abs() + 0.5) * q
    errs = [(J.soft_quantize(z, q, hardness=h) - hard).abs().mean().item() for h in (2, 8, 32, 200)]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.02 * 7


def test_upsampling_matches_libjpeg_on_a_flat_step():
    # A 2-sample chroma row 0 | 160 up-sampled h2v1: 0, 40, 120, 160 by (3a + b + 1) >> 2 and (3a + b + 2) >> 2.
    c = torch.tensor([[[[0.0, 160.0]]]])
    assert J.upsample(c, 2, 1, 1, 4).flatten().tolist() == [0.0, 40.0, 120.0, 160.0]


def test_dct_is_orthonormal_and_inverts():
    d = J.dct_matrix(torch.float64)
    assert torch.allclose(d @ d.T, torch.eye(8, dtype=torch.float64), atol=1e-12)
    b = torch.randn(5, 64, dtype=torch.float64)
    assert torch.allclose(J.block_idct(J.block_dct(b)), b, atol=1e-10)
