"""JPEG-DL layer: legal exported tables, gradients, initializations."""

from __future__ import annotations

import numpy as np
import torch

from dnnjpeg.codec import encode, parse_header_bytes
from dnnjpeg.nn import JPEGLayer


def test_exported_tables_are_valid_and_reread_exactly():
    torch.manual_seed(0)
    layer = JPEGLayer(subsampling="4:2:0")
    with torch.no_grad():
        layer.q.mul_(torch.exp(torch.randn_like(layer.q)))  # arbitrary learned values, some out of range
        layer.q[0, 0, 0] = -1.0
        layer.q[1, 7, 7] = 10.0
    t = layer.to_quant_tables()
    assert t.luma.min() >= 1 and t.chroma.max() <= 255 and not t.extended
    assert t.luma[0, 0] == 1 and t.chroma[7, 7] == 255
    img = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)
    assert parse_header_bytes(encode(img, t, "4:2:0")).quant_tables() == t


def test_layer_trains_its_steps():
    torch.manual_seed(0)
    layer = JPEGLayer()
    x = torch.rand(4, 3, 32, 32)
    y = layer(x)
    assert y.shape == x.shape and 0 <= float(y.detach().min()) and float(y.detach().max()) <= 1
    ((y - x) ** 2).mean().backward()
    assert layer.q.grad is not None and layer.q.grad.abs().sum() > 0
    before = layer.q.detach().clone()
    opt = torch.optim.Adam(layer.param_groups())
    opt.step()
    assert not torch.equal(before, layer.q.detach())
    # minimizing reconstruction error only ever asks for finer steps
    for _ in range(20):
        opt.zero_grad()
        ((layer(x) - x) ** 2).mean().backward()
        opt.step()
    assert float(layer.steps().detach().mean()) < float((before * 255).mean())


def _smooth_images(n=8, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(small, size=size, mode="bilinear", align_corners=False)


def test_mean_abs_init_follows_coefficient_magnitudes():
    layer = JPEGLayer()
    layer.init_from_mean_abs(_smooth_images(), mean_step=20.0)
    s = layer.steps().detach()
    assert abs(float(s.mean()) - 20.0) < 1.0
    assert s[0, 0, 0] > s[0, 7, 7] and s[0, 0, 1] > s[0, 6, 6]  # smooth images: energy at low frequencies


def test_sensitivity_init_gives_fine_steps_where_the_model_looks():
    class MeanNet(torch.nn.Module):  # sees only each image's mean color: only DC matters
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x.mean((2, 3)))

    torch.manual_seed(0)
    x = _smooth_images(16)
    layer = JPEGLayer()
    layer.init_from_sensitivity(MeanNet(), x, torch.randint(0, 2, (16,)), mean_step=30.0)
    s = layer.steps().detach()
    assert s[0, 0, 0] == s[0].min() and s[1, 0, 0] == s[1].min()
    assert float(s[0, 0, 0]) < float(s[0, 3, 3])
