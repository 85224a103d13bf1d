"""JPEG-DL: a trainable JPEG layer to put in front of any network.

The layer encodes its input with a JPEG whose luma and chroma steps are
parameters (Cb and Cr share one table), quantizes with the soft quantizer of
:func:`dnnjpeg.nn.functional.soft_quantize` (hardness matched to the step,
α = h / q²), decodes, and hands the network the decoded image, so the network
learns on what the tables keep and the tables learn what the network needs.
Steps live in units of the [0, 1] input (a step of 1/255 is one 8-bit level),
which is the scale the published recipe's Adam learning rate of 0.003 assumes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dnnjpeg.codec import QuantTables
from dnnjpeg.nn.codec import DiffJPEG

__all__ = ["JPEGLayer"]


class JPEGLayer(nn.Module):
    """Trainable JPEG: (B, 3, H, W) RGB in [0, 1] → decoded RGB in [0, 1], same shape.

    Args:
        init: initial tables — a :class:`QuantTables` (default: IJG quality 50), or an array of
            steps (2, 8, 8) in 8-bit levels; see also :meth:`init_from_mean_abs` and
            :meth:`init_from_sensitivity`.
        subsampling: chroma subsampling of the layer's codec (4:4:4 by default: small
            inputs such as CIFAR's 32×32 have little chroma to spare).
        levels, hardness: soft quantizer (L nearest levels, α = hardness / q²).
        min_step: steps are clamped to at least this many 8-bit levels in the forward pass.
    """

    def __init__(
        self,
        init: QuantTables | np.ndarray | None = None,
        subsampling: str = "4:4:4",
        levels: int = 5,
        hardness: float = 2.0,
        min_step: float = 0.25,
    ) -> None:
        super().__init__()
        steps = init if init is not None else QuantTables.standard(50)
        steps = steps.as_array() if hasattr(steps, "as_array") else np.asarray(steps, float)
        if steps.shape != (2, 8, 8) or (steps <= 0).any():
            raise ValueError(f"initial steps must be positive with shape (2, 8, 8), got {steps.shape}")
        self.q = nn.Parameter(torch.as_tensor(steps / 255.0, dtype=torch.float32))
        self.min_step = min_step
        self.codec = DiffJPEG(subsampling, "soft", soft_levels=levels, hardness=hardness)

    def steps(self) -> torch.Tensor:
        """Current steps in 8-bit levels, (2, 8, 8), clamped as the forward pass uses them."""
        return (self.q * 255.0).clamp(min=self.min_step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.codec(x * 255.0, self.steps()) / 255.0

    def to_quant_tables(self) -> QuantTables:
        """The learned steps as legal baseline tables (rounded, clamped to 1..255)."""
        s = np.clip(np.rint(self.steps().detach().cpu().numpy()), 1, 255).astype(np.int64)
        return QuantTables(s[0], s[1])

    def param_groups(self, lr: float = 0.003) -> list[dict]:
        """Optimizer groups for the layer alone (the published recipe: Adam at 0.003)."""
        return [{"params": [self.q], "lr": lr}]

    @torch.no_grad()
    def _coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unquantized DCT coefficients of luma (N·blocks, 64) and chroma (N·blocks·2, 64), 8-bit units."""
        cy, cc = self.codec.transform(x * 255.0)
        return cy.reshape(-1, 64), cc.reshape(-1, 64)

    def _set_from_profile(self, luma: torch.Tensor, chroma: torch.Tensor, mean_step: float) -> None:
        prof = torch.stack([luma, chroma]).reshape(2, 8, 8).double().clamp(min=1e-12)
        prof = prof / prof.mean()
        # The scale c with mean(clamp(c·profile, 1, 255)) = mean_step (monotone in c: bisect in log c),
        # so clamping the extremes into the legal range does not move the mean away from what was asked.
        lo, hi = -30.0, 30.0
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if float((np.exp(mid) * prof).clamp(1, 255).mean()) < mean_step else (lo, mid)
        with torch.no_grad():
            self.q.copy_(((np.exp(lo) * prof).clamp(1, 255) / 255.0).to(self.q))

    def init_from_mean_abs(self, x: torch.Tensor, mean_step: float | None = None) -> None:
        """Steps proportional to each frequency's mean |coefficient| on images x (B, 3, H, W) in
        [0, 1] — every frequency kept to about the same number of levels — scaled so the mean
        step is ``mean_step`` (default: the current mean)."""
        ms = float(self.steps().mean()) if mean_step is None else mean_step
        y, c = self._coefficients(x)
        self._set_from_profile(y.abs().mean(0), c.abs().mean(0), ms)

    def init_from_sensitivity(
        self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, loss_fn=None, mean_step: float | None = None
    ) -> None:
        """Steps ∝ 1 / sqrt(mean squared gradient of the loss with respect to each DCT coefficient)
        of a pretrained ``model`` (which takes the [0, 1] images), so the frequencies the model is
        most sensitive to get the finest steps; scaled to ``mean_step`` (default: the current mean)."""
        ms = float(self.steps().mean()) if mean_step is None else mean_step
        loss_fn = loss_fn or nn.functional.cross_entropy
        h, w = x.shape[-2:]
        with torch.no_grad():
            cy, cc = self.codec.transform(x * 255.0)
        cy.requires_grad_(True)
        cc.requires_grad_(True)
        img = self.codec.reconstruct(cy, cc, h, w) / 255.0
        was_training = model.training
        model.eval()
        loss_fn(model(img), labels).backward()
        model.train(was_training)
        gy = (cy.grad**2).reshape(-1, 64).mean(0)
        gc = (cc.grad**2).reshape(-1, 64).mean(0)
        self._set_from_profile(gy.clamp(min=1e-20).rsqrt(), gc.clamp(min=1e-20).rsqrt(), ms)
