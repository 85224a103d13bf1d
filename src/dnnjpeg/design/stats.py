"""DCT statistics of images as a JPEG encoder sees them.

Why by hand: neither Pillow nor jpeglib exposes the encoder's unquantized DCT
coefficients, and reading quantized ones from already-compressed files would
measure the earlier encoder's losses.  The steps mirror libjpeg-turbo's
compressor: JFIF RGB→YCbCr, chroma down-sampling with libjpeg's rounding (h2v1/h2v2),
edge replication to whole blocks, level shift by 128, and the 8×8 DCT with
JPEG's scaling, which equals the orthonormal DCT-II (checked against real
encodes to ±1 in tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dnnjpeg.conventions import CHROMA_FACTORS

__all__ = ["rgb_to_ycbcr", "downsample", "blocks_dct", "DctStats", "dct_statistics"]


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB → float64 (H, W, 3) JFIF YCbCr in 0..255 (chroma centred at 128)."""
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168735892 * r - 0.331264108 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418687589 * g - 0.081312411 * b + 128
    return np.stack([y, cb, cr], axis=-1)


def _pad_to(plane: np.ndarray, mh: int, mw: int) -> np.ndarray:
    h, w = plane.shape
    return np.pad(plane, ((0, (-h) % mh), (0, (-w) % mw)), mode="edge")


def downsample(plane: np.ndarray, subsampling: str) -> np.ndarray:
    """Down-sample a chroma plane (H, W) as libjpeg-turbo does for 4:2:2 (h2v1) / 4:2:0 (h2v2).

    Edges are replicated to whole factors, then each box is summed and divided with libjpeg's
    alternating rounding bias (0, 1 for h2v1; 1, 2 for h2v2 along a row), rounded down: the
    values equal :func:`dnnjpeg.nn.functional.downsample` (tested). A float plane is rounded
    to integers first, as the encoder's color conversion does.
    """
    fh, fv = CHROMA_FACTORS[subsampling]
    if (fh, fv) == (1, 1):
        return plane
    p = np.floor(_pad_to(plane, fv, fh) + 0.5)
    h, w = p.shape
    s = p.reshape(h // fv, fv, w // fh, fh).sum(axis=(1, 3))
    bias = np.resize(np.array([1.0, 2.0] if fh * fv == 4 else [0.0, 1.0]), s.shape[1])
    return np.floor((s + bias) / (fh * fv))


def blocks_dct(plane: np.ndarray) -> np.ndarray:
    """Level-shifted 8×8 DCT of a plane (H, W) in 0..255 → float64 (n_blocks, 8, 8), natural order."""
    from scipy.fft import dctn  # here: importing scipy would slow every CLI start

    p = _pad_to(plane, 8, 8) - 128.0
    h, w = p.shape
    blocks = p.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    return dctn(blocks, axes=(1, 2), norm="ortho")


@dataclass(frozen=True)
class DctStats:
    """Per-frequency statistics, each float64 (8, 8) natural order: luma and pooled chroma (Cb, Cr).

    ``std`` is the standard deviation over all blocks of all images; ``mean_abs``
    the mean absolute coefficient; ``n_blocks`` counts luma and chroma blocks.
    """

    luma_std: np.ndarray
    chroma_std: np.ndarray
    luma_mean_abs: np.ndarray
    chroma_mean_abs: np.ndarray
    n_blocks: tuple[int, int]


def dct_statistics(images: Iterable[np.ndarray], subsampling: str = "4:2:0") -> DctStats:
    """Accumulate DCT statistics over uint8 (H, W, 3) RGB images (streaming: constant memory)."""
    if subsampling not in CHROMA_FACTORS:
        raise ValueError(f"subsampling must be one of {tuple(CHROMA_FACTORS)}, got {subsampling!r}")
    acc = {k: [0, np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 8))] for k in ("y", "c")}  # n, sum, sum², sum|x|
    for img in images:
        ycc = rgb_to_ycbcr(np.asarray(img))
        planes = {"y": [ycc[..., 0]], "c": [downsample(ycc[..., 1], subsampling), downsample(ycc[..., 2], subsampling)]}
        for k, ps in planes.items():
            for p in ps:
                d = blocks_dct(p)
                a = acc[k]
                a[0] += len(d)
                a[1] += d.sum(0)
                a[2] += (d * d).sum(0)
                a[3] += np.abs(d).sum(0)
    if acc["y"][0] == 0:
        raise ValueError("no images to compute DCT statistics from")

    def std(a):
        n, s, s2, _ = a
        return np.sqrt(np.maximum(s2 / n - (s / n) ** 2, 0))

    return DctStats(
        std(acc["y"]), std(acc["c"]), acc["y"][3] / acc["y"][0], acc["c"][3] / acc["c"][0], (acc["y"][0], acc["c"][0])
    )
