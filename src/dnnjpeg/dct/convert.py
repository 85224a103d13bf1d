"""Exact conversion of a pixel network to the DCT domain (the construction of Ehrlich & Davis, ICCV 2019).

JPEG decoding up to the pixels is linear, and so are convolution, batch norm (at inference), average
pooling and linear layers. Each becomes an operation on coefficient planes (B, 64·C, h, w), channel
c·64 + u·8 + v for frequency (u, v) of feature channel c on an 8×8 block grid:

- a k×k, stride-s pixel convolution is an ordinary convolution on the block grid from 64·C_in to
  64·C_out channels (kernel and padding in blocks, stride s), its weight computed here from the
  pixel weight and the 1-D DCT matrix (separable, so O(1) in the image size, unlike the paper's
  dense tensor);
- batch norm scales every frequency of a channel and adds its shift to DC only (× 8: the DC of a
  constant 8×8 block);
- global average pooling is the mean of DC / 8;
- ReLU is the one non-linear step: ``exact`` (inverse DCT, ReLU, DCT per block), ``asm``
  (approximated spatial masking: the sign mask from the φ lowest frequencies u + v < φ applied to
  the exact block; φ = 15 is exact) or ``apx`` (ReLU of the φ-frequency approximation itself).

The input is a JPEG's planes (:mod:`dnnjpeg.dct.planes`); YCbCr → RGB and the model's normalization
are one 1×1 block convolution with a DC bias, and 4:2:0 chroma is up-sampled in the DCT domain by
replication (each chroma sample to 2×2 pixels). So the converted network computes exactly what the
pixel network computes on :func:`reference_pixels` (that decode: no rounding, no clamping, replicated
chroma); a real decoder's rounding, clamping and libjpeg's smoother chroma up-sampling differ from it
slightly (measured in BENCHMARKS.md).

Why by hand: no library converts a network to the JPEG transform domain.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dnnjpeg.nn.functional import dct_matrix

__all__ = [
    "convert", "set_relu", "block_conv_weight", "BlockConv", "BlockBatchNorm", "BlockReLU", "reference_pixels", "RELUS",
]  # fmt: skip

RELUS = ("exact", "asm", "apx")
_YCC2RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136286, -0.714136286), (1.0, 1.772, 0.0))


def _c1(dtype=torch.float64) -> torch.Tensor:
    """The 1-D orthonormal DCT-II matrix C (8, 8): a block's coefficients are C X Cᵀ."""
    return dct_matrix(dtype)


def _axis_map(k: int, s: int, p: int) -> tuple[torch.Tensor, int, int]:
    """Per axis, a k-tap stride-s convolution with padding p from input blocks to output blocks,
    in frequencies: P (8 out-freq, k taps, Kb input blocks, 8 in-freq), with Kb and the block padding."""
    lo, hi = math.floor(-p / 8), math.floor((7 * s + k - 1 - p) / 8)
    kb, pb = hi - lo + 1, -lo
    a = torch.zeros(8, k, kb, 8, dtype=torch.float64)  # output pixel q, tap t → (input block d, pixel r)
    for q in range(8):
        for t in range(k):
            pos = s * q + t - p
            a[q, t, pos // 8 + pb, pos % 8] = 1.0
    c = _c1()
    return torch.einsum("uq,qtdr,vr->utdv", c, a, c), kb, pb


def block_conv_weight(weight: torch.Tensor, stride: int, padding: int) -> tuple[torch.Tensor, int]:
    """The block-grid weight of a square pixel convolution.

    Args:
        weight: (C_out, C_in, k, k) pixel weight; ``stride``, ``padding``: the pixel conv's.
    Returns:
        (weight (64·C_out, 64·C_in, Kb, Kb) float64 for ``F.conv2d`` on coefficient planes with
        the same stride, block padding Pb).
    """
    co, ci, k, k2 = weight.shape
    if k != k2:
        raise ValueError(f"square kernels only, got {k}×{k2}")
    p, kb, pb = _axis_map(k, stride, padding)
    w = weight.detach().to(torch.float64)
    # W[o, uo, vo, i, ui, vi, dy, dx] = Σ_ty,tx w[o, i, ty, tx] P[uo, ty, dy, ui] P[vo, tx, dx, vi]
    t = torch.einsum("oiyx,aydb->oiaxdb", w, p)  # (o, i, uo, tx, dy, ui)
    full = torch.einsum("oiaxdb,cxev->oacibvde", t, p)  # (o, uo, vo, i, ui, vi, dy, dx)
    return full.reshape(64 * co, 64 * ci, kb, kb), pb


class BlockConv(nn.Module):
    """A pixel ``nn.Conv2d`` (square, groups 1, zero padding) as a convolution on coefficient planes."""

    def __init__(self, conv: nn.Conv2d, dtype=torch.float32) -> None:
        super().__init__()
        if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
            raise ValueError("only convolutions with groups 1, dilation 1 and zero padding convert exactly")
        if conv.stride[0] != conv.stride[1] or conv.padding[0] != conv.padding[1] or isinstance(conv.padding, str):
            raise ValueError("only square strides and paddings convert")
        w, pb = block_conv_weight(conv.weight, conv.stride[0], conv.padding[0])
        self.register_buffer("weight", w.to(dtype))
        self.stride, self.pad = conv.stride[0], pb
        bias = torch.zeros(w.shape[0], dtype=dtype)
        if conv.bias is not None:  # a constant per channel: on DC, × 8
            bias.view(-1, 64)[:, 0] = 8.0 * conv.bias.detach().to(dtype)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] % self.stride or x.shape[3] % self.stride:
            raise ValueError(
                f"a {x.shape[2]}×{x.shape[3]}-block map is not whole blocks after stride {self.stride}: the image's "
                "sides must be multiples of 8 × the network's total stride"
            )
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype), self.stride, self.pad)


class BlockBatchNorm(nn.Module):
    """An inference-mode ``nn.BatchNorm2d``: every frequency scaled, the shift on DC (× 8)."""

    def __init__(self, bn: nn.BatchNorm2d, dtype=torch.float32) -> None:
        super().__init__()
        scale = (bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)).to(dtype)
        shift = (bn.bias.detach().double() - bn.running_mean.double() * scale.double()).to(dtype)
        self.register_buffer("scale", scale.repeat_interleave(64))
        dc = torch.zeros(len(scale), 64, dtype=dtype)
        dc[:, 0] = 8.0 * shift
        self.register_buffer("shift", dc.reshape(-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.view(1, -1, 1, 1).to(x.dtype) + self.shift.view(1, -1, 1, 1).to(x.dtype)


class BlockReLU(nn.Module):
    """ReLU on coefficient planes: ``exact``, ``asm`` or ``apx`` with frequencies u + v < ``phi`` (1..15)."""

    def __init__(self, mode: str = "exact", phi: int = 15, dtype=torch.float32) -> None:
        super().__init__()
        if mode not in RELUS or not 1 <= phi <= 15:
            raise ValueError(f"ReLU mode must be one of {RELUS} and φ in 1..15, got {mode!r}, {phi}")
        self.mode, self.phi = mode, phi
        c = _c1()
        self.register_buffer("d2", torch.kron(c, c).to(dtype))  # coefficients = d2 @ pixels
        uv = torch.arange(8)[:, None] + torch.arange(8)[None, :]
        self.register_buffer("low", (uv < phi).reshape(64).to(dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, ch, h, w = x.shape
        coef = x.reshape(b, ch // 64, 64, h, w)
        d2 = self.d2.to(x.dtype)
        to_px = lambda c: torch.einsum("kp,bckhw->bcphw", d2, c)  # noqa: E731
        if self.mode == "exact":
            out = torch.relu(to_px(coef))
        else:
            approx = to_px(coef * self.low.to(x.dtype).view(1, 1, 64, 1, 1))
            out = to_px(coef) * (approx > 0) if self.mode == "asm" else torch.relu(approx)
        return torch.einsum("kp,bcphw->bckhw", d2, out).reshape(b, ch, h, w)


class _GlobalPool(nn.Module):
    """Global average pooling: the mean over blocks of DC / 8 → (B, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, ch, h, w = x.shape
        return x.reshape(b, ch // 64, 64, h, w)[:, :, 0].mean((2, 3)) / 8.0


class _Input(nn.Module):
    """JPEG planes (Y (B, 64, h, w) and Cb, Cr (B, 128, h', w'), level-shifted as stored) → the
    pixel model's normalized RGB input as coefficient planes (B, 192, h, w)."""

    def __init__(self, mean, std, layout: str, dtype=torch.float32) -> None:
        super().__init__()
        m = torch.tensor(_YCC2RGB, dtype=torch.float64) / 255.0
        std_t, mean_t = torch.tensor(std, dtype=torch.float64), torch.tensor(mean, dtype=torch.float64)
        mix = m / std_t[:, None]  # (rgb, ycc)
        weight = torch.zeros(192, 192, 1, 1, dtype=torch.float64)
        for c in range(3):
            for j in range(3):
                weight[c * 64 : (c + 1) * 64, j * 64 : (j + 1) * 64, 0, 0] = mix[c, j] * torch.eye(64)
        bias = torch.zeros(3, 64, dtype=torch.float64)
        bias[:, 0] = 8.0 * (m[:, 0] * 128.0 - mean_t) / std_t  # Y's +128 level shift and the mean
        self.register_buffer("weight", weight.to(dtype))
        self.register_buffer("bias", bias.reshape(-1).to(dtype))
        self.layout = layout
        if layout == "4:2:0":  # replication up-sampling: chroma block → 2×2 luma blocks
            c = _c1()
            up = torch.zeros(2, 8, 8, dtype=torch.float64)  # (half, out freq, in freq)
            for half in range(2):
                rep = torch.zeros(8, 8, dtype=torch.float64)  # out pixel x ← in pixel 4·half + x // 2
                for x in range(8):
                    rep[x, 4 * half + x // 2] = 1.0
                up[half] = c @ rep @ c.T
            u2 = torch.einsum("yab,xcd->acbdyx", up, up).reshape(64, 64, 2, 2)  # (out k, in k, dy, dx)
            self.register_buffer("up", u2.transpose(0, 1).contiguous().to(dtype))  # conv_transpose2d: (in, out, ...)

    def forward(self, y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
        if self.layout == "4:2:0":
            b, _, h, w = cbcr.shape
            c = F.conv_transpose2d(cbcr.reshape(b * 2, 64, h, w), self.up.to(cbcr.dtype), stride=2)
            cbcr = c.reshape(b, 128, 2 * h, 2 * w)[..., : y.shape[2], : y.shape[3]]
        x = torch.cat([y, cbcr], 1)
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


def reference_pixels(y: torch.Tensor, cbcr: torch.Tensor, layout: str = "4:2:0") -> torch.Tensor:
    """The decode the converted network reproduces exactly: planes → RGB (B, 3, 8h, 8w) in 0..255
    units, float, without rounding or clamping, chroma replicated 2×2 for 4:2:0."""
    c = _c1(y.dtype)
    d2 = torch.kron(c, c)

    def px(planes):  # (B, n·64, h, w) → (B, n, 8h, 8w)
        b, ch, h, w = planes.shape
        p = torch.einsum("kp,bckhw->bchwp", d2, planes.reshape(b, ch // 64, 64, h, w))
        return p.reshape(b, ch // 64, h, w, 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, ch // 64, 8 * h, 8 * w)

    yy, cc = px(y) + 128.0, px(cbcr)
    if layout == "4:2:0":
        cc = cc.repeat_interleave(2, 2).repeat_interleave(2, 3)[..., : yy.shape[2], : yy.shape[3]]
    m = torch.tensor(_YCC2RGB, dtype=y.dtype)
    return torch.einsum("ij,bjhw->bihw", m, torch.cat([yy, cc], 1))


class _Residual(nn.Module):
    """A converted :class:`dnnjpeg.nn.train._Block`: relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut x)."""

    def __init__(self, block, relu, dtype) -> None:
        super().__init__()
        self.body = nn.Sequential(
            BlockConv(block.c1, dtype), BlockBatchNorm(block.b1, dtype), relu(),
            BlockConv(block.c2, dtype), BlockBatchNorm(block.b2, dtype),
        )  # fmt: skip
        self.short = _convert_module(block.short, relu, dtype)
        self.relu = relu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.short(x))


def _convert_module(m: nn.Module, relu, dtype) -> nn.Module:
    from dnnjpeg.nn.train import _Block

    if isinstance(m, nn.Conv2d):
        return BlockConv(m, dtype)
    if isinstance(m, nn.BatchNorm2d):
        return BlockBatchNorm(m, dtype)
    if isinstance(m, nn.ReLU):
        return relu()
    if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)):
        return nn.Sequential(_GlobalPool())
    if isinstance(m, nn.Flatten):
        return nn.Identity()  # the pool already gives (B, C)
    if isinstance(m, (nn.Linear, nn.Identity, nn.Dropout)):
        return m
    if isinstance(m, _Block):
        return _Residual(m, relu, dtype)
    if isinstance(m, nn.Sequential):
        return nn.Sequential(*(_convert_module(c, relu, dtype) for c in m))
    raise ValueError(
        f"no exact DCT-domain form for {type(m).__name__}: convert handles Conv2d, BatchNorm2d, ReLU, "
        "global average pooling, Flatten, Linear, Sequential and the ResNet blocks of dnnjpeg.train"
    )


class ConvertedModel(nn.Module):
    """A pixel network converted to read JPEG planes: forward(y, cbcr) → logits."""

    def __init__(self, inp: _Input, body: nn.Module) -> None:
        super().__init__()
        self.input, self.body = inp, body

    def forward(self, y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
        return self.body(self.input(y, cbcr))


def convert(
    model: nn.Module,
    relu: str = "exact",
    phi: int = 15,
    layout: str = "4:2:0",
    mean=None,
    std=None,
    dtype=torch.float32,
):
    """A pixel classifier converted to the DCT domain.

    Args:
        model: a :class:`dnnjpeg.nn.train.SmallResNet` (its normalization is taken from it), or an
            ``nn.Sequential`` of Conv2d / BatchNorm2d / ReLU / AdaptiveAvgPool2d(1) / Flatten /
            Linear taking RGB in [0, 1] normalized by ``mean``/``std``, in eval mode.
        relu: "exact", "asm" or "apx"; ``phi``: frequencies u + v < φ for asm/apx (1..15).
        layout: the planes' chroma layout, "4:2:0" or "4:4:4".
        dtype: of the converted weights (float64 for exactness checks).
    Returns:
        :class:`ConvertedModel`: forward(y (B, 64, h, w), cbcr (B, 128, h', w')) → logits, equal
        to ``model`` on :func:`reference_pixels` / 255 with ``relu="exact"``.
    """
    from dnnjpeg.nn.train import SmallResNet

    if model.training:
        raise ValueError("convert a model in eval mode (batch norm uses its running statistics)")
    if isinstance(model, SmallResNet):
        mean, std = model.mean.flatten().tolist(), model.std.flatten().tolist()
        r = _relu(relu, phi, dtype)
        fc = nn.Linear(model.fc.in_features, model.fc.out_features).to(dtype)
        fc.load_state_dict(model.fc.state_dict())
        body = nn.Sequential(_convert_module(model.stem, r, dtype), _convert_module(model.layers, r, dtype),
                             _GlobalPool(), fc)  # fmt: skip
    else:
        if mean is None or std is None:
            raise ValueError("give the model's input normalization: convert(model, mean=..., std=...)")
        body = _convert_module(model, _relu(relu, phi, dtype), dtype)
    return ConvertedModel(_Input(tuple(mean), tuple(std), layout, dtype), body).eval()


def set_relu(model: nn.Module, mode: str, phi: int = 15) -> nn.Module:
    """Switch every ReLU of a converted model to ``mode`` with ``phi`` frequencies, in place (the
    block convolutions, the costly part of a conversion, stay). Returns ``model``."""
    ref = BlockReLU(mode, phi)
    for m in model.modules():
        if isinstance(m, BlockReLU):
            m.mode, m.phi = mode, phi
            m.low = ref.low.to(m.low.dtype)
    return model


def _relu(mode: str, phi: int, dtype):
    BlockReLU(mode, phi)  # check the arguments once
    return lambda: BlockReLU(mode, phi, dtype)
