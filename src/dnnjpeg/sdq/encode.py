"""Encode an image with soft-decision quantization: fixed tables, each block's levels searched.

The image's unquantized coefficients come from the differentiable codec's encoder half (libjpeg's
colour conversion, down-sampling and padding, float DCT); the levels from
:func:`dnnjpeg.sdq.trellis.sdq_levels` under the code lengths of the Huffman tables that libjpeg
fits to the previous pass's levels (the first pass: plain rounding), ``iterations`` times; the
file is written by libjpeg from the levels with optimized Huffman tables, an ordinary baseline JPEG.
"""

from __future__ import annotations

import math

import numpy as np

from dnnjpeg.codec.coefficients import Coefficients, write_coefficients
from dnnjpeg.codec.tables import QuantTables
from dnnjpeg.sdq.rate import parse_huffman
from dnnjpeg.sdq.trellis import sdq_levels

__all__ = ["image_coefficients", "sdq_encode", "fisher_weights", "FISHER_PRESET"]

#: the shipped design whose Fisher diagonal weights ``--sdq fisher`` (lite0, JPEG of the stored image)
FISHER_PRESET = "efficientnet-lite0-420-original-sweep"


def fisher_weights(preset: str = FISHER_PRESET) -> np.ndarray:
    """(3, 8, 8) error weights for Y, Cb, Cr: half the network's mean Fisher diagonal per frequency,
    as the ``fisher`` designer measured it (recorded in the preset), so that Σ w (c − ĉ)² ≈ KL in
    nats and λ is in nats per bit."""
    from dnnjpeg.presets import preset_info

    f = preset_info(preset).get("design", {}).get("fisher")
    if not f:
        raise ValueError(f"preset {preset!r} records no Fisher weights")
    return 0.5 * np.concatenate([np.asarray(f["w_luma"], np.float64)[None], np.asarray(f["w_chroma"], np.float64)])


_SAMPLING = {"4:2:0": ((2, 2), (1, 1), (1, 1)), "4:4:4": ((1, 1), (1, 1), (1, 1))}


def image_coefficients(rgb: np.ndarray, subsampling: str = "4:2:0") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unquantized DCT coefficients of a stored RGB image as libjpeg's encoder sees them.

    Args:
        rgb: uint8 (H, W, 3).
    Returns:
        (Y, Cb, Cr), float64 (rows, cols, 8, 8) each, natural order, on the MCU-padded block grid.
    """
    import torch

    from dnnjpeg.nn import DiffJPEG

    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"SDQ encodes RGB images (H, W, 3), got shape {a.shape}")
    x = torch.from_numpy(np.array(a, np.float64)).permute(2, 0, 1)[None]
    with torch.no_grad():
        y, c = DiffJPEG(subsampling).double().transform(x)
    y, c = y.numpy(), c.numpy()
    return tuple(b.reshape(*b.shape[:2], 8, 8) for b in (y[0, 0], c[0, 0], c[0, 1]))


def sdq_encode(
    rgb: np.ndarray,
    tables: QuantTables,
    lam: float,
    weights: np.ndarray | None = None,
    subsampling: str = "4:2:0",
    iterations: int = 2,
) -> tuple[bytes, Coefficients]:
    """One image encoded with ``tables`` and each block's levels chosen by the trellis.

    Args:
        rgb: uint8 (H, W, 3) stored pixels.
        tables: the quantization tables (natural order), written into the file.
        lam: λ ≥ 0 in squared coefficient units per bit (0: plain rounding).
        weights: error weight per frequency, natural order: (3, 8, 8) for Y, Cb, Cr or (2, 8, 8)
            for luma and chroma (None: 1, the PSNR form).
        iterations: trellis passes, each under the Huffman tables fitted to the previous levels.
    Returns:
        (the JPEG file's bytes, the levels written).
    """
    if subsampling not in _SAMPLING:
        raise ValueError(f"SDQ writes 4:2:0 or 4:4:4, got {subsampling!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be ≥ 1, got {iterations}")
    h, w = np.asarray(rgb).shape[:2]
    comps = image_coefficients(rgb, subsampling)
    wt = np.ones((3, 8, 8)) if weights is None else np.asarray(weights, np.float64)
    if wt.shape == (2, 8, 8):
        wt = wt[[0, 1, 1]]
    if wt.shape != (3, 8, 8) or not np.all(wt >= 0):
        raise ValueError(f"weights must be (3, 8, 8) or (2, 8, 8) and ≥ 0, got shape {wt.shape}")
    steps = [tables.luma, tables.chroma, tables.chroma]
    sampling = _SAMPLING[subsampling]

    hmax, vmax = max(f[0] for f in sampling), max(f[1] for f in sampling)
    # each component's own blocks: the writer takes exactly those (libjpeg adds the MCU padding
    # itself, as dummy blocks; padded arrays would shift its rows when the block count is odd)
    real = [(math.ceil(math.ceil(h * v / vmax) / 8), math.ceil(math.ceil(w * f / hmax) / 8)) for f, v in sampling]

    def pack(levels) -> Coefficients:
        blocks = tuple(np.clip(lv[:r, :c], -2047, 2047).astype(np.int16) for lv, (r, c) in zip(levels, real))
        return Coefficients(blocks, tables, sampling, w, h)

    levels = [np.rint(c / s) for c, s in zip(comps, steps)]
    for _ in range(iterations):
        huff, use = parse_huffman(write_coefficients(pack(levels), optimize=True))
        ids = sorted(use)
        levels = []
        for i, (c, s) in enumerate(zip(comps, steps)):
            ac = huff[(1, use[ids[i]][1])]
            flat = c.reshape(-1, 8, 8)
            levels.append(sdq_levels(flat, s, wt[i], lam, ac).reshape(c.shape))
    coef = pack(levels)
    return write_coefficients(coef, optimize=True), coef
