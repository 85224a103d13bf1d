"""A differentiable baseline JPEG codec as one PyTorch module."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dnnjpeg.nn import functional as J

__all__ = ["DiffJPEG", "Encoded"]


@dataclass
class Encoded:
    """What the encoder half produces, for the rate model and for inspection.

    levels_y: (B, 1, nh, nw, 64) quantized luma levels (coef / step after rounding);
    levels_c: (B, 2, nh', nw', 64) chroma levels; pixels: (B,) image pixels (H·W) for bpp;
    scaled_y / scaled_c: coef / step before rounding (same shapes; equal to the levels in
    ``exact`` mode), smooth in the steps, for a rate estimate to differentiate.
    """

    levels_y: torch.Tensor
    levels_c: torch.Tensor
    pixels: torch.Tensor
    scaled_y: torch.Tensor | None = None
    scaled_c: torch.Tensor | None = None

    def continuous(self) -> Encoded:
        """The same encoding with the pre-rounding values as levels (what a designer's rate term should see)."""
        return Encoded(
            self.scaled_y if self.scaled_y is not None else self.levels_y,
            self.scaled_c if self.scaled_c is not None else self.levels_c,
            self.pixels,
        )


class DiffJPEG(nn.Module):
    """Encode → quantize → decode, batched, with tables as an input.

    Args:
        subsampling: "4:4:4", "4:2:2" or "4:2:0" (libjpeg-turbo's down- and fancy up-sampling).
        rounding: quantizer rounding, one of :data:`dnnjpeg.nn.functional.ROUNDINGS`;
            ``exact`` reproduces a real encode → decode (Pillow): the same quantized levels,
            pixels within ±3 levels (float IDCT and color conversion).
        soft_levels / hardness: parameters of the ``soft`` quantizer.

    forward(x, tables): x (B, 3, H, W) RGB in 0..255 (any H, W ≥ 1); tables (2, 8, 8) shared or
    (B, 2, 8, 8) per sample, steps ≥ 1 (float allowed: gradients reach them). Returns the
    decoded RGB (B, 3, H, W) in 0..255, or (decoded, :class:`Encoded`) with ``return_levels``.
    """

    def __init__(
        self, subsampling: str = "4:2:0", rounding: str = "exact", soft_levels: int = 5, hardness: float = 2.0
    ) -> None:
        super().__init__()
        if subsampling not in J.CHROMA_FACTORS:
            raise ValueError(f"subsampling must be one of {tuple(J.CHROMA_FACTORS)}, got {subsampling!r}")
        if rounding not in J.ROUNDINGS:
            raise ValueError(f"rounding must be one of {J.ROUNDINGS}, got {rounding!r}")
        self.subsampling = subsampling
        self.rounding = rounding
        self.soft_levels = soft_levels
        self.hardness = hardness

    def _quant(self, coef: torch.Tensor, step: torch.Tensor):
        deq, lv = J.quantize(coef, step, self.rounding, self.training, self.soft_levels, self.hardness)
        return deq, lv, coef / step

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The float encoder half: RGB (B, 3, H, W) 0..255 → unquantized DCT coefficients of luma
        (B, 1, nh, nw, 64) and chroma (B, 2, nh', nw', 64), padded and down-sampled as libjpeg does."""
        fh, fv = J.CHROMA_FACTORS[self.subsampling]
        # Full-resolution columns are replicated to the MCU width, rows only to a whole row group;
        # down-sampled chroma is then replicated to its block height (not the same as replicating
        # full-resolution rows when H is even).
        ycc = J.rgb_to_ycbcr(J.pad_to(x, fv, 8 * fh))
        y, c = J.pad_to(ycc[:, :1], 8 * fv, 8 * fh), J.pad_to(J.downsample(ycc[:, 1:], fh, fv), 8, 8)
        return J.block_dct(J.blockify(y - 128)), J.block_dct(J.blockify(c - 128))

    def reconstruct(self, dy: torch.Tensor, dc: torch.Tensor, h: int, w: int, smooth: bool = False) -> torch.Tensor:
        """The decoder half: (dequantized) coefficients as from :meth:`transform` → RGB (B, 3, h, w) 0..255.

        ``smooth``: no rounding anywhere (only the range limits), so derivatives with respect to
        the coefficients are those of a piecewise-linear map that finite differences can check."""
        fh, fv = J.CHROMA_FACTORS[self.subsampling]
        rnd = (lambda v: v) if smooth else J.ste_round
        # The decoder's IDCT output is rounded and range-limited to samples.
        y_hat = rnd(J.unblockify(J.block_idct(dy)) + 128).clamp(0, 255)
        c_hat = rnd(J.unblockify(J.block_idct(dc)) + 128).clamp(0, 255)
        up = J.upsample(c_hat, fh, fv, h, w, smooth=smooth)
        return J.ycbcr_to_rgb(torch.cat([y_hat[..., :h, :w], up], dim=1), smooth=smooth)

    @staticmethod
    def _encode_exact(x, q_y, q_c, fh, fv):
        """libjpeg-turbo's integer encoder (no gradients): levels and their dequantized values."""
        with torch.no_grad():
            ycc = J.rgb_to_ycbcr_int(J.pad_to(x.round().clamp(0, 255), fv, 8 * fh).long()).to(x.dtype)
            y, c = J.pad_to(ycc[:, :1], 8 * fv, 8 * fh).long(), J.pad_to(J.downsample(ycc[:, 1:], fh, fv), 8, 8).long()
            qy, qc = q_y.round().clamp(min=1).long(), q_c.round().clamp(min=1).long()
            ly = J.islow_fdct_levels(J.blockify(y - 128), qy)
            lc = J.islow_fdct_levels(J.blockify(c - 128), qc)
            ly, lc = ly.to(x.dtype), lc.to(x.dtype)
            return ly * qy, ly, ly, lc * qc, lc, lc

    def forward(self, x: torch.Tensor, tables, return_levels: bool = False):
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected RGB images (B, 3, H, W), got shape {tuple(x.shape)}")
        b, _, h, w = x.shape
        t = J.as_table_tensor(tables, b, x.dtype, x.device)
        q_y = t[:, 0].reshape(-1, 1, 1, 1, 64)
        q_c = t[:, 1].reshape(-1, 1, 1, 1, 64)
        if self.rounding == "exact":
            fh, fv = J.CHROMA_FACTORS[self.subsampling]
            dy, ly, sy, dc, lc, sc = self._encode_exact(x, q_y, q_c, fh, fv)
        else:
            cy, cc = self.transform(x)
            dy, ly, sy = self._quant(cy, q_y)
            dc, lc, sc = self._quant(cc, q_c)
        out = self.reconstruct(dy, dc, h, w)
        if return_levels:
            pix = torch.full((b,), float(h * w), dtype=x.dtype, device=x.device)
            return out, Encoded(ly, lc, pix, sy, sc)
        return out
