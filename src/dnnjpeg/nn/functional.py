"""The steps of a baseline JPEG encoder and decoder as batched tensor functions.

Written by hand because no kept library does what is needed here: kornia's
differentiable JPEG uses plain average-pool down-sampling, nearest up-sampling
and one table per batch, so its "exact" output differs from a real file by
several levels at chroma edges; here every step follows libjpeg-turbo's integer
arithmetic in the forward pass (down-sampling biases, the triangular "fancy"
up-sampling with its +8/+7 rounding, sample range limiting), while gradients
pass straight through the sample-level roundings.

Conventions: images are float tensors (B, 3, H, W) in 0..255 (RGB or YCbCr);
DCT coefficients are (B, C, H/8, W/8, 64) in natural (row-major) order, scaled
as libjpeg scales them (the orthonormal 8×8 DCT of level-shifted samples);
tables are steps (B, 2, 8, 8) or (2, 8, 8): [luma, chroma].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dnnjpeg.conventions import CHROMA_FACTORS

__all__ = [
    "ROUNDINGS",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "ste_round",
    "ste_floor",
    "pad_to",
    "downsample",
    "upsample",
    "blockify",
    "unblockify",
    "dct_matrix",
    "block_dct",
    "block_idct",
    "quantize",
    "soft_quantize",
    "as_table_tensor",
    "CHROMA_FACTORS",
]

#: Rounding modes of the coefficient quantizer.
ROUNDINGS = ("exact", "ste", "cubic", "noise", "soft")
#: Chroma sampling: (horizontal, vertical) down-sampling factor.

_RGB2YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168735892, -0.331264108, 0.5], [0.5, -0.418687589, -0.081312411]])
_YCC2RGB = torch.tensor([[1.0, 0.0, 1.402], [1.0, -0.344136286, -0.714136286], [1.0, 1.772, 0.0]])


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round half away from zero (as libjpeg's quantizer does) forward; identity gradient."""
    r = torch.sign(x) * torch.floor(x.abs() + 0.5)
    return x + (r - x).detach()


def ste_floor(x: torch.Tensor) -> torch.Tensor:
    """Floor forward (libjpeg's ``>>`` on non-negative sums); identity gradient."""
    return x + (torch.floor(x) - x).detach()


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """JFIF full-range RGB → YCbCr, (B, 3, H, W) 0..255 → same, rounded to integers as the encoder does."""
    m = _RGB2YCC.to(rgb)
    ycc = torch.einsum("ij,bjhw->bihw", m, rgb)
    ycc = ycc + torch.tensor([0.0, 128.0, 128.0], device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
    return ste_round(ycc).clamp(0, 255)


def ycbcr_to_rgb(ycc: torch.Tensor, smooth: bool = False) -> torch.Tensor:
    """JFIF YCbCr → RGB, (B, 3, H, W) 0..255, rounded and range-limited as the decoder does
    (``smooth``: not rounded, for derivatives that finite differences can check)."""
    m = _YCC2RGB.to(ycc)
    off = torch.tensor([0.0, 128.0, 128.0], device=ycc.device, dtype=ycc.dtype).view(1, 3, 1, 1)
    rgb = torch.einsum("ij,bjhw->bihw", m, ycc - off)
    return (rgb if smooth else ste_round(rgb)).clamp(0, 255)


def pad_to(x: torch.Tensor, mh: int, mw: int) -> torch.Tensor:
    """Replicate the last row/column up to multiples of (mh, mw), as libjpeg pads an MCU. (B, C, H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % mh, (-w) % mw
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def downsample(c: torch.Tensor, fh: int, fv: int) -> torch.Tensor:
    """libjpeg-turbo's h2v1 / h2v2 down-sampling of chroma (B, C, H, W) with H, W multiples of
    the factors: the box mean with its alternating rounding bias (1, 2 for h2v2; 0, 1 for h2v1)."""
    if fh == 1 and fv == 1:
        return c
    b, ch, h, w = c.shape
    s = c.reshape(b, ch, h // fv, fv, w // fh, fh).sum(dim=(3, 5))
    n = fh * fv
    bias = torch.tensor([1.0, 2.0] if n == 4 else [0.0, 1.0], device=c.device, dtype=c.dtype)
    bias = bias.repeat(s.shape[-1] // 2 + 1)[: s.shape[-1]]
    return ste_floor((s + bias) / n)


def upsample(c: torch.Tensor, fh: int, fv: int, h: int, w: int, smooth: bool = False) -> torch.Tensor:
    """libjpeg-turbo's "fancy" (triangular) chroma up-sampling to (h, w).

    c: (B, C, ceil(h/fv)·k, ceil(w/fh)·k) decoded chroma samples (extra padded rows/columns are
    cropped first, since the decoder's edge context replicates the last *real* sample).
    h2v2: column sums 3·near + far, then (3·this + neighbour + 8) >> 4 and (… + 7) >> 4;
    h2v1: (3·this + neighbour + 1) >> 2 and (… + 2) >> 2. ``smooth``: the same filter without the
    shifts' flooring.
    """
    if fh == 1 and fv == 1:
        return c[..., :h, :w]
    hh, ww = -(-h // fv), -(-w // fh)
    c = c[..., :hh, :ww]
    if fv == 2:
        p = F.pad(c, (0, 0, 1, 1), mode="replicate")
        up = 3 * c + p[..., :-2, :]
        dn = 3 * c + p[..., 2:, :]
        rows = torch.stack([up, dn], dim=-2).reshape(*c.shape[:-2], 2 * hh, ww)
        bias_l, bias_r, div = 8.0, 7.0, 16.0
    else:
        rows = c
        bias_l, bias_r, div = 1.0, 2.0, 4.0
    p = F.pad(rows, (1, 1, 0, 0), mode="replicate")
    fl = (lambda v: v) if smooth else ste_floor
    left = fl((3 * rows + p[..., :-2] + bias_l) / div)
    right = fl((3 * rows + p[..., 2:] + bias_r) / div)
    out = torch.stack([left, right], dim=-1).reshape(*rows.shape[:-1], 2 * ww)
    return out[..., :h, :w]


def blockify(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) with H, W multiples of 8 → (B, C, H/8, W/8, 64), blocks in row-major order."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // 8, w // 8, 64)


def unblockify(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`blockify`: (B, C, nh, nw, 64) → (B, C, 8·nh, 8·nw)."""
    b, c, nh, nw, _ = x.shape
    return x.reshape(b, c, nh, nw, 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, c, nh * 8, nw * 8)


def dct_matrix(dtype=torch.float32, device=None) -> torch.Tensor:
    """The 8×8 orthonormal DCT-II matrix D (JPEG's DCT of a block X is D X Dᵀ)."""
    k = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.to(dtype=dtype, device=device)


_KRON: dict = {}


def _kron(dtype, device) -> torch.Tensor:
    # One 64×64 matrix product per block is faster on CPU than two 8×8 products.
    key = (dtype, str(device))
    if key not in _KRON:
        # made outside inference mode whatever the caller's: a cached inference tensor would break
        # every later autograd use (a model's logits run under inference_mode, a designer's backward)
        with torch.inference_mode(False):
            d = dct_matrix(torch.float64)
            _KRON[key] = torch.kron(d, d).to(dtype=dtype, device=device)
    return _KRON[key]


def block_dct(blocks: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT of (…, 64) level-shifted blocks → (…, 64) coefficients (natural order)."""
    return blocks @ _kron(blocks.dtype, blocks.device).T


def block_idct(coef: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`block_dct`: (…, 64) coefficients → (…, 64) samples."""
    return coef @ _kron(coef.dtype, coef.device)


def as_table_tensor(tables, batch: int | None = None, dtype=torch.float32, device=None) -> torch.Tensor:
    """QuantTables, array or tensor of steps → tensor (B, 2, 8, 8) (B = 1 when shared)."""
    if hasattr(tables, "as_array"):
        tables = tables.as_array()
    t = torch.as_tensor(tables, dtype=dtype, device=device)
    if t.shape[-3:] != (2, 8, 8) or t.dim() not in (3, 4):
        raise ValueError(f"tables must have shape (2, 8, 8) or (B, 2, 8, 8), got {tuple(t.shape)}")
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if batch is not None and t.shape[0] not in (1, batch):
        raise ValueError(f"per-sample tables for {t.shape[0]} images given a batch of {batch}")
    return t


def quantize(
    coef: torch.Tensor,
    step: torch.Tensor,
    rounding: str = "exact",
    training: bool = True,
    soft_levels: int = 5,
    hardness: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize and dequantize coefficients.

    Args:
        coef: (B, C, nh, nw, 64); step: broadcastable (B|1, C, 1, 1, 64), > 0.
        rounding: one of :data:`ROUNDINGS`; ``soft`` is :func:`soft_quantize` with
            ``soft_levels`` and ``hardness``.
    Returns:
        (dequantized coefficients, levels) — levels = coef / step after the rounding mode
        (integers in ``exact``; the rate model reads them).
    """
    u = coef / step
    if rounding == "exact":
        y = (torch.sign(u) * torch.floor(u.abs() + 0.5)).detach()
    elif rounding == "ste":
        y = ste_round(u)
    elif rounding == "cubic":
        r = torch.round(u).detach()
        y = r + (u - r) ** 3
    elif rounding == "noise":
        y = u + (torch.rand_like(u) - 0.5) if training else torch.round(u).detach()
    elif rounding == "soft":
        deq = soft_quantize(coef, step, soft_levels, hardness)
        return deq, deq / step
    else:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    return y * step, y


def soft_quantize(coef: torch.Tensor, step: torch.Tensor, levels: int = 5, hardness: float = 2.0) -> torch.Tensor:
    """JPEG-DL's soft quantizer: the expectation over the ``levels`` reconstruction values
    r_k = i_k·q nearest round(z/q) (indices detached), weights softmax(−α (z − r_k)²) with
    α = hardness / q² (so the softness is the same in units of the step). Tends to hard
    rounding as ``hardness`` → ∞. Shapes as :func:`quantize`; returns dequantized values."""
    centre = torch.round(coef / step).detach()
    off = torch.arange(levels, device=coef.device, dtype=coef.dtype) - (levels // 2)
    idx = centre.unsqueeze(-1) + off  # (..., 64, L)
    r = idx * step.unsqueeze(-1)
    alpha = hardness / (step.unsqueeze(-1) ** 2)
    w = torch.softmax(-alpha * (coef.unsqueeze(-1) - r) ** 2, dim=-1)
    return (w * r).sum(-1)


# -- libjpeg-turbo's integer encoder arithmetic, for the ``exact`` mode ------------------
# A float DCT is within ±0.5 of libjpeg's integer one, which is enough to flip a level
# sitting at a rounding boundary, and one flipped high-frequency level moves a whole
# block by tens of levels.  So ``exact`` reproduces jccolor.c's fixed-point color
# conversion, jfdctint.c's "islow" DCT and the quantizer's round-half-up division.


def _fix16(x: float) -> int:
    return int(x * 65536 + 0.5)


def rgb_to_ycbcr_int(rgb: torch.Tensor) -> torch.Tensor:
    """jccolor.c RGB → YCbCr on integer samples: (B, 3, H, W) int64 → int64."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    half, off = 1 << 15, 128 << 16
    y = (_fix16(0.299) * r + _fix16(0.587) * g + _fix16(0.114) * b + half) >> 16
    cb = (-_fix16(0.16874) * r - _fix16(0.33126) * g + _fix16(0.5) * b + off + half - 1) >> 16
    cr = (_fix16(0.5) * r - _fix16(0.41869) * g - _fix16(0.08131) * b + off + half - 1) >> 16
    return torch.stack([y, cb, cr], dim=1)


def _descale(x: torch.Tensor, n: int) -> torch.Tensor:
    return (x + (1 << (n - 1))) >> n


def _islow_1d(d: list, first_pass: bool) -> list:
    cb, pb = 13, 2
    t0, t7 = d[0] + d[7], d[0] - d[7]
    t1, t6 = d[1] + d[6], d[1] - d[6]
    t2, t5 = d[2] + d[5], d[2] - d[5]
    t3, t4 = d[3] + d[4], d[3] - d[4]
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    out = [None] * 8
    if first_pass:
        out[0], out[4] = (t10 + t11) << pb, (t10 - t11) << pb
        n = cb - pb
    else:
        out[0], out[4] = _descale(t10 + t11, pb), _descale(t10 - t11, pb)
        n = cb + pb
    z1 = (t12 + t13) * 4433
    out[2] = _descale(z1 + t13 * 6270, n)
    out[6] = _descale(z1 - t12 * 15137, n)
    z1, z2, z3, z4 = t4 + t7, t5 + t6, t4 + t6, t5 + t7
    z5 = (z3 + z4) * 9633
    t4, t5, t6, t7 = t4 * 2446, t5 * 16819, t6 * 25172, t7 * 12299
    z1, z2, z3, z4 = z1 * -7373, z2 * -20995, z3 * -16069 + z5, z4 * -3196 + z5
    out[7] = _descale(t4 + z1 + z3, n)
    out[5] = _descale(t5 + z2 + z4, n)
    out[3] = _descale(t6 + z2 + z3, n)
    out[1] = _descale(t7 + z1 + z4, n)
    return out


def islow_fdct_levels(blocks: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """jfdctint.c + jcdctmgr.c: integer level-shifted blocks (…, 64) int64 and integer steps
    (broadcastable, …, 64) → quantized levels (…, 64) int64, exactly as libjpeg-turbo."""
    x = blocks.reshape(*blocks.shape[:-1], 8, 8)
    rows = _islow_1d([x[..., i] for i in range(8)], True)  # over columns within each row
    x = torch.stack(rows, dim=-1)
    cols = _islow_1d([x[..., i, :] for i in range(8)], False)
    w = torch.stack(cols, dim=-2).reshape(blocks.shape)  # scaled by 8, as libjpeg leaves it
    div = 8 * step
    lv = torch.div(w.abs() + div // 2, div, rounding_mode="floor")
    return torch.sign(w) * lv
