"""Encode an image with soft-decision quantization: fixed tables, each block's levels searched.

The image's unquantized coefficients come from the differentiable codec's encoder half (libjpeg's
colour conversion, down-sampling and padding, float DCT); the levels from
:func:`dnnjpeg.sdq.trellis.sdq_levels` under the code lengths of the Huffman tables that libjpeg
fits to the previous pass's levels (the first pass: plain rounding; computed as libjpeg does,
:func:`dnnjpeg.sdq.rate.optimal_table`, without writing a file), ``iterations`` times; the
file is written by libjpeg from the levels with optimized Huffman tables, an ordinary baseline JPEG.
"""

from __future__ import annotations

import math

import numpy as np

from dnnjpeg.codec.coefficients import Coefficients, write_coefficients
from dnnjpeg.codec.tables import QuantTables
from dnnjpeg.conventions import CHROMA_FACTORS
from dnnjpeg.sdq.rate import optimal_table, scan_symbols
from dnnjpeg.sdq.trellis import sdq_levels

__all__ = ["image_coefficients", "sdq_encode", "fisher_weights", "FISHER_PRESET", "table_lambda"]

#: the shipped design whose Fisher diagonal weights ``--levels sdq:fisher`` (lite0, JPEG of the stored image)
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


def table_lambda(tables: QuantTables, weights: np.ndarray, alpha: float) -> float:
    """λ for one table: ``alpha`` × the geometric mean over luma frequencies of w_f q_f², the
    weighted squared error of one quantization step.

    Why: a fixed λ would zero a fine table's levels and leave a coarse table's alone; tying λ to
    the step size (mozjpeg scales its trellis λ with q² the same way) makes ``alpha`` one
    dimensionless setting for a whole family of tables, the search trading about ``alpha`` of a
    step's error per bit at every rate.

    Args:
        weights: (3, 8, 8) or (2, 8, 8) per-model weights (their luma plane is used).
    Returns:
        λ in the weights' error units per bit (nats per bit for Fisher weights).
    """
    if not (np.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number ≥ 0, got {alpha}")
    w = np.asarray(weights, np.float64)[0]
    q = np.asarray(tables.luma, np.float64)
    return float(alpha * np.exp(np.mean(np.log(np.maximum(w, 1e-30) * q**2))))


_SAMPLING = {"4:2:0": ((2, 2), (1, 1), (1, 1)), "4:4:4": ((1, 1), (1, 1), (1, 1))}


def image_coefficients(rgb: np.ndarray, subsampling: str = "4:2:0") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unquantized DCT coefficients of a stored RGB image as libjpeg's encoder sees them.

    The encoder half of :class:`dnnjpeg.nn.DiffJPEG` (its ``transform``: colour conversion rounded
    to integers, edge replication to the MCU, libjpeg's biased box down-sampling, orthonormal DCT),
    in NumPy float32 for one image: torch's per-call overhead made it a quarter of an SDQ encode.
    Equal to the torch version to float32 precision (tested).

    Args:
        rgb: uint8 (H, W, 3).
    Returns:
        (Y, Cb, Cr), float32 (rows, cols, 8, 8) each, natural order, on the MCU-padded block grid.
    """
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"SDQ encodes RGB images (H, W, 3), got shape {a.shape}")
    if subsampling not in CHROMA_FACTORS:
        raise ValueError(f"subsampling must be one of {tuple(CHROMA_FACTORS)}, got {subsampling!r}")
    fh, fv = CHROMA_FACTORS[subsampling]

    def pad(x, mh, mw):  # replicate the last row/column up to multiples of (mh, mw); x (C, H, W)
        h, w = x.shape[1:]
        return np.pad(x, ((0, 0), (0, (-h) % mh), (0, (-w) % mw)), mode="edge")

    def blocks_dct(x):  # (H, W), multiples of 8 → (H/8, W/8, 8, 8) coefficients
        h, w = x.shape
        b = x.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
        return (b @ _KRON_T).reshape(h // 8, w // 8, 8, 8)

    x = pad(a.transpose(2, 0, 1).astype(np.float32), fv, 8 * fh)
    ycc = np.einsum("ij,jhw->ihw", _RGB2YCC, x) + _YCC_OFFSET[:, None, None]
    ycc = np.clip(np.sign(ycc) * np.floor(np.abs(ycc) + 0.5), 0, 255)  # libjpeg rounds half away from 0
    y = pad(ycc[:1], 8 * fv, 8 * fh)[0]
    c = ycc[1:]
    if (fh, fv) != (1, 1):
        ch, h, w = c.shape
        box = c.reshape(ch, h // fv, fv, w // fh, fh).sum((2, 4))
        bias = np.resize(np.array([1.0, 2.0] if fh * fv == 4 else [0.0, 1.0], np.float32), box.shape[-1])
        c = np.floor((box + bias) / (fh * fv))
    c = pad(c, 8, 8)
    return blocks_dct(y - 128), blocks_dct(c[0] - 128), blocks_dct(c[1] - 128)


def _kron_t() -> np.ndarray:
    """Kron(D, D)ᵀ for the orthonormal 8×8 DCT-II D (as :func:`dnnjpeg.nn.functional.dct_matrix`)."""
    k = np.arange(8)
    d = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    return np.kron(d, d).T.astype(np.float32)


_KRON_T = _kron_t()
_RGB2YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168735892, -0.331264108, 0.5], [0.5, -0.418687589, -0.081312411]], np.float32
)
_YCC_OFFSET = np.array([0.0, 128.0, 128.0], np.float32)


def sdq_encode(
    rgb: np.ndarray,
    tables: QuantTables,
    lam: float,
    weights=None,
    subsampling: str = "4:2:0",
    iterations: int = 2,
    refit: int = 0,
    coefficients=None,
) -> tuple[bytes, Coefficients]:
    """One image encoded with ``tables`` and each block's levels chosen by the trellis.

    Args:
        rgb: uint8 (H, W, 3) stored pixels.
        tables: the quantization tables (natural order), written into the file.
        lam: λ ≥ 0 in squared coefficient units per bit (nats per bit with Fisher weights; 0:
            plain rounding).
        weights: error weight per frequency, natural order: (3, 8, 8) for Y, Cb, Cr or (2, 8, 8)
            for luma and chroma; or per block, a sequence of three arrays (rows, cols, 8, 8) on
            :func:`image_coefficients`' grid (:func:`dnnjpeg.sdq.weights.gradient_weights`);
            None: 1, the PSNR form.
        iterations: trellis passes, each under the Huffman tables fitted to the previous levels.
        refit: table re-fits (OptS's alternation): after a pass, every step becomes the weighted
            least-squares step for the chosen levels (Σ w c l / Σ w l², rounded, 1..255; luma
            from Y, chroma from Cb and Cr), and one more pass runs under the new tables. The
            file carries the last tables.
        coefficients: :func:`image_coefficients` of ``rgb`` when the caller has them already.
    Returns:
        (the JPEG file's bytes, the levels written and their tables).
    """
    if subsampling not in _SAMPLING:
        raise ValueError(f"SDQ writes 4:2:0 or 4:4:4, got {subsampling!r}")
    if iterations < 1 or refit < 0:
        raise ValueError(f"iterations must be ≥ 1 and refit ≥ 0, got {iterations}, {refit}")
    h, w = np.asarray(rgb).shape[:2]
    comps = coefficients if coefficients is not None else image_coefficients(rgb, subsampling)
    wt = _component_weights(weights, comps)
    sampling = _SAMPLING[subsampling]

    hmax, vmax = max(f[0] for f in sampling), max(f[1] for f in sampling)
    # each component's own blocks: the writer takes exactly those (libjpeg adds the MCU padding
    # itself, as dummy blocks; padded arrays would shift its rows when the block count is odd)
    real = [(math.ceil(math.ceil(h * v / vmax) / 8), math.ceil(math.ceil(w * f / hmax) / 8)) for f, v in sampling]

    def pack(levels, tables) -> Coefficients:
        blocks = tuple(np.clip(lv[:r, :c], -2047, 2047).astype(np.int16) for lv, (r, c) in zip(levels, real))
        return Coefficients(blocks, tables, sampling, w, h)

    levels = [np.rint(c / s) for c, s in zip(comps, (tables.luma, tables.chroma, tables.chroma))]
    for it in range(iterations + refit):
        steps = (tables.luma, tables.chroma, tables.chroma)
        # the AC tables libjpeg's optimize_coding will fit to these levels (Y: table 0; Cb, Cr: table 1)
        stats = scan_symbols(pack(levels, tables).blocks, sampling, w, h)
        acs = [optimal_table(stats[0][1])] + [optimal_table(stats[1][1] + stats[2][1])] * 2
        levels = [_pass(c, s, wt[i], lam, acs[i]) for i, (c, s) in enumerate(zip(comps, steps))]
        if it < refit:
            tables = _refit_tables(comps, levels, wt, tables)
    coef = pack(levels, tables)
    return write_coefficients(coef, optimize=True), coef


def _pass(c: np.ndarray, steps, w: np.ndarray, lam: float, ac) -> np.ndarray:
    """One component's levels (rows, cols, 8, 8) by the trellis under AC table ``ac``."""
    return sdq_levels(c.reshape(-1, 8, 8), steps, w.reshape(-1, 8, 8) if w.ndim > 2 else w, lam, ac).reshape(c.shape)


def _component_weights(weights, comps) -> list[np.ndarray]:
    """Y, Cb, Cr weights: (8, 8) each, or (rows, cols, 8, 8) each on the coefficients' grid."""
    if weights is None:
        return [np.ones((8, 8))] * 3
    if isinstance(weights, (list, tuple)):
        if len(weights) != 3:
            raise ValueError(f"per-block weights are three arrays (Y, Cb, Cr), got {len(weights)}")
        out = [np.asarray(x, np.float64).reshape(*c.shape[:2], 8, 8) if np.size(x) == c.size else None
               for x, c in zip(weights, comps)]  # fmt: skip
        if any(o is None for o in out):
            raise ValueError("per-block weights must have one (8, 8) row per block of each component")
    else:
        a = np.asarray(weights, np.float64)
        if a.shape == (2, 8, 8):
            a = a[[0, 1, 1]]
        if a.shape != (3, 8, 8):
            raise ValueError(f"weights must be (3, 8, 8), (2, 8, 8) or per block, got shape {a.shape}")
        out = list(a)
    if not all(np.all(np.isfinite(o)) and np.all(o >= 0) for o in out):
        raise ValueError("weights must be finite and ≥ 0")
    return out


def _refit_tables(comps, levels, wt, tables: QuantTables) -> QuantTables:
    """The steps that minimize Σ w (c − q l)² for fixed levels, per frequency: luma from Y, chroma
    from Cb and Cr; a frequency with no nonzero level keeps its step."""
    new = []
    for idx, old in (((0,), tables.luma), ((1, 2), tables.chroma)):
        num = sum((np.broadcast_to(wt[i], comps[i].shape) * comps[i] * levels[i]).reshape(-1, 8, 8).sum(0) for i in idx)
        den = sum((np.broadcast_to(wt[i], comps[i].shape) * levels[i] ** 2).reshape(-1, 8, 8).sum(0) for i in idx)
        q = np.where(den > 0, num / np.where(den > 0, den, 1.0), old)
        new.append(np.clip(np.rint(q), 1, 255).astype(np.int64))
    return QuantTables(new[0], new[1])
