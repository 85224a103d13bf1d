"""Exact DCT-domain conversion (dnnjpeg.dct.convert): every converted layer equals its pixel version."""

import numpy as np
import pytest
import torch
from torch import nn

from dnnjpeg.dct.convert import BlockBatchNorm, BlockConv, BlockReLU, convert, reference_pixels
from dnnjpeg.nn.train import SmallResNet


def _dct(x: torch.Tensor) -> torch.Tensor:
    """Pixel maps (B, C, H, W) → coefficient planes (B, 64·C, H/8, W/8)."""
    from dnnjpeg.nn.functional import dct_matrix

    c = dct_matrix(x.dtype)
    b, ch, h, w = x.shape
    blocks = x.reshape(b, ch, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, ch, h // 8, w // 8, 64)
    coef = blocks @ torch.kron(c, c).T
    return coef.permute(0, 1, 4, 2, 3).reshape(b, ch * 64, h // 8, w // 8)


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (1, 2, 0), (1, 1, 0), (5, 1, 2), (7, 2, 3), (3, 1, 0)])
def test_a_convolution_is_a_convolution_on_the_block_grid(k, s, p):
    torch.manual_seed(k + s + p)
    conv = nn.Conv2d(3, 4, k, s, p, bias=True).double()
    x = torch.randn(2, 3, 32, 48, dtype=torch.float64)
    bc = BlockConv(conv, torch.float64)
    out = bc(_dct(x))
    ref = conv(x)
    h, w = ref.shape[-2:]
    assert out.shape == (2, 4 * 64, h // 8, w // 8) or p == 0 and k == 3  # a valid conv's size is not whole blocks
    if h % 8 == 0 and w % 8 == 0:
        assert torch.allclose(out, _dct(ref), atol=1e-9)


def test_batch_norm_relu_and_pooling():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16, 24, dtype=torch.float64)
    bn = nn.BatchNorm2d(5).double().eval()
    bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    assert torch.allclose(BlockBatchNorm(bn, torch.float64)(_dct(x)), _dct(bn(x)), atol=1e-12)
    assert torch.allclose(BlockReLU("exact", 15, torch.float64)(_dct(x)), _dct(torch.relu(x)), atol=1e-12)
    for mode in ("asm", "apx"):  # φ = 15: every frequency, so exact
        assert torch.allclose(BlockReLU(mode, 15, torch.float64)(_dct(x)), _dct(torch.relu(x)), atol=1e-12)
    errs = [
        float((BlockReLU("asm", phi, torch.float64)(_dct(x)) - _dct(torch.relu(x))).abs().mean()) for phi in (2, 6, 10)
    ]
    assert errs[0] > errs[1] > errs[2] > 0  # fewer frequencies, a worse mask
    with pytest.raises(ValueError):
        BlockReLU("asm", 0)


@pytest.mark.parametrize("layout", ["4:2:0", "4:4:4"])
def test_a_converted_resnet_equals_the_pixel_one_on_the_reference_decode(layout):
    torch.manual_seed(1)
    net = SmallResNet(10, width=4, blocks=1).double()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2)
    net.eval()
    y = torch.randn(3, 64, 4, 8, dtype=torch.float64) * torch.linspace(200, 5, 64).view(1, 64, 1, 1).double()
    cshape = (3, 128, 2, 4) if layout == "4:2:0" else (3, 128, 4, 8)
    cbcr = torch.randn(*cshape, dtype=torch.float64) * 30
    conv = convert(net, "exact", layout=layout, dtype=torch.float64)
    ref = net(reference_pixels(y, cbcr, layout) / 255.0)
    assert torch.allclose(conv(y, cbcr), ref, atol=1e-8)
    approx = convert(net, "asm", 4, layout, dtype=torch.float64)(y, cbcr)
    assert not torch.allclose(approx, ref, atol=1e-3)
    with pytest.raises(ValueError, match="multiples of 8 × the network's total stride"):
        conv(y[..., :6], cbcr[..., : 3 if layout == "4:2:0" else 6])
    with pytest.raises(ValueError, match="eval mode"):
        convert(SmallResNet(10, 4))
    with pytest.raises(ValueError, match="no exact DCT-domain form"):
        convert(nn.Sequential(nn.MaxPool2d(2)).eval(), mean=(0,) * 3, std=(1,) * 3)
    assert np.isfinite(ref.detach().numpy()).all()


def test_set_relu_switches_every_relu_in_place():
    from dnnjpeg.dct.convert import set_relu

    torch.manual_seed(2)
    net = SmallResNet(10, width=4).double().eval()
    y, cbcr = torch.randn(2, 64, 4, 4).double() * 50, torch.randn(2, 128, 2, 2).double() * 10
    m = convert(net, "exact", dtype=torch.float64)
    fresh = convert(net, "apx", 3, dtype=torch.float64)(y, cbcr)
    assert torch.equal(set_relu(m, "apx", 3)(y, cbcr), fresh)
    assert all(r.mode == "apx" and r.phi == 3 for r in m.modules() if isinstance(r, BlockReLU))
