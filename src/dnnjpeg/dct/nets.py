"""Networks that read JPEG coefficient planes directly (Gueguen et al. 2018, Xu et al. 2020), and the
data they train on.

The input is the file's dequantized coefficients as 192 channels on the luma block grid (Y's 64,
then Cb's and Cr's, chroma up-sampled to the luma grid by repeating each block: for 4:2:0 one chroma
block covers 2×2 luma blocks), optionally a fixed subset of the frequencies (DCTNet's static
selection). A learned per-channel normalization (batch norm) comes first: coefficient scales differ
by orders of magnitude between frequencies. Then a small ResNet on the block grid: a 32×32 CIFAR image
is 4×4 blocks, so the network starts where a pixel ResNet reaches stride 8.

Augmentation stays in the DCT domain: a flip reverses block columns and negates the odd horizontal
frequencies (:func:`dnnjpeg.dct.planes.hflip`), a crop moves by whole blocks over a one-block zero
(mid-gray) border.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dnnjpeg.dct.planes import ODD_H
from dnnjpeg.nn.train import Network, TrainConfig, read_folder, register_input_kind, resnet_stages

__all__ = ["FrequencyResNet", "load_dct_folder", "dct_augment", "stack_planes", "lowest_frequencies"]


def lowest_frequencies(n_luma: int = 16, n_chroma: int = 4) -> list[int]:
    """Channel indices (of the 192) of the first ``n_luma`` Y and ``n_chroma`` Cb and Cr frequencies
    in zig-zag order (DCTNet keeps 24 of 192 this way)."""
    from dnnjpeg.codec.tables import ZIGZAG

    z = [int(k) for k in ZIGZAG]
    return z[:n_luma] + [64 + k for k in z[:n_chroma]] + [128 + k for k in z[:n_chroma]]


def stack_planes(y: np.ndarray, cbcr: np.ndarray) -> np.ndarray:
    """Y (64, h, w) and Cb, Cr (128, h', w') → (192, h, w), chroma repeated onto the luma grid."""
    if cbcr.shape[1:] != y.shape[1:]:
        cbcr = cbcr.repeat(2, axis=1).repeat(2, axis=2)[:, : y.shape[1], : y.shape[2]]
    return np.concatenate([y, cbcr])


def load_dct_folder(
    root: str | os.PathLike[str], layout: str = "4:2:0", limit_per_class: int | None = None, on_error=None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """An ImageFolder tree of equal-size JPEG files as coefficient planes, no pixel decoding.

    Returns:
        float32 (N, 192, h, w) planes (:func:`stack_planes`), int64 labels (N,), class names.
    Bad files (not a JPEG, damaged, another size) go to ``on_error(path, message)`` and the rest
    are read; without ``on_error`` one ``ValueError`` names them all (:func:`dnnjpeg.nn.train.read_folder`).
    """
    from dnnjpeg.dct.planes import load_planes

    def read(p):
        pl = load_planes(p, layout)
        return stack_planes(pl.y, pl.cbcr)

    return read_folder(root, read, "coefficients", limit_per_class, on_error)


_SIGN = torch.from_numpy(np.where(np.concatenate([ODD_H] * 3), -1.0, 1.0).astype(np.float32)).view(1, 192, 1, 1)


def dct_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random block-grid crops (shifts of up to one block over a zero border) and flips, (B, 192, h, w)."""
    b, _, h, w = x.shape
    p = F.pad(x, (1, 1, 1, 1))
    oy = torch.randint(0, 3, (b,), generator=gen)
    ox = torch.randint(0, 3, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    out = torch.stack([p[i, :, oy[i] : oy[i] + h, ox[i] : ox[i] + w] for i in range(b)])
    out[flip] = out[flip].flip(-1) * _SIGN.to(x.dtype)
    return out


class FrequencyResNet(nn.Module):
    """A ResNet on coefficient planes (B, 192, h, w) → (B, classes) logits.

    Args:
        width: channels of the first stage (stages: width, 2·width, 4·width, the last two at stride 2).
        blocks: basic blocks per stage.
        channels: indices of the input channels kept (e.g. :func:`lowest_frequencies`); None: all 192.
    """

    def __init__(self, classes: int = 10, width: int = 64, blocks: int = 1, channels: Sequence[int] | None = None):
        super().__init__()
        keep = list(range(192)) if channels is None else [int(c) for c in channels]
        if not keep or min(keep) < 0 or max(keep) >= 192:
            raise ValueError(f"channels must be indices in 0..191, got {channels}")
        self.register_buffer("keep", torch.tensor(keep))
        self.inorm = nn.BatchNorm2d(len(keep))
        self.stem = nn.Sequential(nn.Conv2d(len(keep), width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.layers = resnet_stages(width, blocks)  # the pixel ResNet-8's stages, on the block grid
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inorm(x.index_select(1, self.keep))
        x = self.layers(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def frequency_network(classes: int, cfg: TrainConfig) -> Network:
    """``TrainConfig(input="dct")``: a :class:`FrequencyResNet` on planes (N, 192, h, w), the lowest
    ``cfg.frequencies`` kept, block-grid crops and flips (:func:`dct_augment`)."""
    f = cfg.frequencies
    keep = None if f is None else lowest_frequencies(f, max(1, f // 4))
    return Network(FrequencyResNet(classes, cfg.dct_width, cfg.blocks, keep), torch.from_numpy, dct_augment)


register_input_kind("dct", frequency_network)
