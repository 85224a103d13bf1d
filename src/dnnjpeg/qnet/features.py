"""What a QNet sees of an image and a member: augmentations, DCT-domain quantization error, the probe's
statistics, sizes — the 12 features per member."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dnnjpeg.codec import QuantTables, decode, encode
from dnnjpeg.families import TableFamily

FORMAT = "dnnjpeg.qnet/2"
DEFAULT_PROBE = "efficientnet-lite0@128"
#: KL below this (nats) is "no change": the log target would otherwise chase float noise.
KL_FLOOR = 1e-5
#: the centre square the classifiers see of a stored image: crop 224 of a shorter side resized to 256
CROP_FRACTION = 0.875
#: luma DCT frequency bands by u + v (DC, low, mid, high, highest); chroma is one band
_UV = np.add.outer(np.arange(8), np.arange(8)).reshape(64)
BANDS = ((0, 0), (1, 2), (3, 5), (6, 9), (10, 14))
N_DQ = len(BANDS) + 1
#: error energies (per coefficient, squared levels) below this are "none" in the log features
_ERR_FLOOR = 1e-3
FEATURE_NAMES = (
    "log bpp",
    "log bits / finest",
    "log megapixels",
    *(f"log luma error u+v {a}-{b}" for a, b in BANDS),
    "log chroma error",
    "probe entropy",
    "probe log p1",
    "probe log margin",
)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new stored image from ``image`` (uint8 (H, W, 3)): a random crop of 30–100% of the area
    (aspect 3:4…4:3), scaled by 0.6–1, maybe flipped, re-encoded by the IJG ladder at quality 60–98
    and decoded — so sizes, content and the source's own JPEG history all vary."""
    from PIL import Image

    h, w = image.shape[:2]
    area = rng.uniform(0.3, 1.0) * h * w
    ar = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    ch, cw = max(8, min(h, round(math.sqrt(area / ar)))), max(8, min(w, round(math.sqrt(area * ar))))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = image[y : y + ch, x : x + cw]
    s = rng.uniform(0.6, 1.0)
    im = Image.fromarray(np.ascontiguousarray(crop)).resize(
        (max(8, round(cw * s)), max(8, round(ch * s))), Image.BILINEAR
    )
    a = np.asarray(im)
    if rng.random() < 0.5:
        a = a[:, ::-1]
    q = int(rng.integers(60, 99))
    return decode(encode(np.ascontiguousarray(a), QuantTables.standard(q), "4:2:0", optimize=True))


def _dct_matrix() -> np.ndarray:
    """(8, 8) orthonormal DCT-II matrix D: a block's coefficients are D @ B @ D.T."""
    k, n = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    d = np.sqrt(2 / 8) * np.cos((2 * n + 1) * k * np.pi / 16)
    d[0] /= np.sqrt(2)
    return d.astype(np.float32)


_DCT = _dct_matrix()
#: JFIF RGB → YCbCr (rows Y, Cb, Cr; Cb and Cr without their +128 offset)
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)


def _block_dct(channel: np.ndarray) -> np.ndarray:
    """float (H, W) → (H//8, W//8, 64) orthonormal 8×8 DCT-II (JPEG's coefficient scale), natural order.

    Two small matrix products per block (batched by NumPy): faster here than scipy's dctn over
    the block axes, and float32 is enough for features that are logs of mean errors."""
    h, w = channel.shape
    hb, wb = h // 8, w // 8
    b = np.asarray(channel[: hb * 8, : wb * 8], np.float32).reshape(hb, 8, wb, 8).transpose(0, 2, 1, 3)
    return (_DCT @ b @ _DCT.T).reshape(hb, wb, 64)


def quantization_error(rgb: np.ndarray, family: TableFamily) -> np.ndarray:
    """Each member's quantization error in the classifier's centre crop, without encoding.

    Args:
        rgb: uint8 (H, W, 3) stored pixels, or (H, W) gray.
        family: K members (luma table for Y; chroma table for Cb, Cr at 4:2:0, 2×2 means).
    Returns:
        float32 (K, 6): log of the mean squared error per block (squared levels of the
        orthonormal DCT, i.e. of pixels, summed over the coefficients of the band) for the luma
        bands :data:`BANDS` and for Cb + Cr. Blocks whose centre lies in the centre square of
        side 0.875 × the shorter side count (what a resize-and-crop classifier sees).
    """
    a = np.asarray(rgb)
    h, w = a.shape[:2]
    side = CROP_FRACTION * min(h, w)
    y0, x0 = (h - side) / 2, (w - side) / 2
    # Work on the 16-aligned window around the crop (the block grids of both 4:2:0 planes start at
    # the image's corner, so a 16-aligned window keeps them): the rest of the image never counts.
    r0, c0 = int(max(0.0, y0 - 12) // 16 * 16), int(max(0.0, x0 - 12) // 16 * 16)
    r1, c1 = min(h, int(-(-(y0 + side + 12) // 16) * 16)), min(w, int(-(-(x0 + side + 12) // 16) * 16))
    x = np.asarray(a[r0:r1, c0:c1], np.float32)
    if x.ndim == 2:
        comps = [(x - 128.0, 1, True)]
    else:
        # JFIF's YCbCr (what libjpeg encodes); chroma at 4:2:0 as 2×2 means
        ycc = x.reshape(-1, 3) @ _YCC.T
        ycc = ycc.reshape(x.shape)
        h2, w2 = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2

        def sub(c):
            return 0.25 * (c[0:h2:2, 0:w2:2] + c[1:h2:2, 0:w2:2] + c[0:h2:2, 1:w2:2] + c[1:h2:2, 1:w2:2])

        comps = [(ycc[..., 0] - 128.0, 1, True), (sub(ycc[..., 1]), 2, False), (sub(ycc[..., 2]), 2, False)]
    ql = np.stack([t.luma.reshape(64) for t in family.members]).astype(np.float32)
    qc = np.stack([t.chroma.reshape(64) for t in family.members]).astype(np.float32)
    luma = np.zeros((len(family), 64), np.float64)
    chroma = np.zeros(len(family), np.float64)
    for comp, f, is_luma in comps:
        # only the blocks whose centres lie in the crop are transformed (a contiguous range)
        cy = r0 + (np.arange(comp.shape[0] // 8) * 8 + 4) * f
        cx = c0 + (np.arange(comp.shape[1] // 8) * 8 + 4) * f
        rows, cols = np.flatnonzero((cy >= y0) & (cy < y0 + side)), np.flatnonzero((cx >= x0) & (cx < x0 + side))
        if len(rows) and len(cols):
            comp = comp[rows[0] * 8 : (rows[-1] + 1) * 8, cols[0] * 8 : (cols[-1] + 1) * 8]
        c = _block_dct(comp).reshape(-1, 64)
        if not len(c):
            continue
        q = ql if is_luma else qc
        err = np.empty((len(family), 64))
        for k in range(len(family)):  # per member keeps memory at one (blocks, 64) array
            e = c - q[k] * np.round(c / q[k])
            err[k] = np.einsum("nf,nf->f", e, e, dtype=np.float64) / len(c)
        if is_luma:
            luma += err
        else:
            chroma += err.sum(1)
    bands = [luma[:, (_UV >= a) & (_UV <= b)].sum(1) for a, b in BANDS]
    return np.log(np.stack([*bands, chroma], 1) + _ERR_FLOOR).astype(np.float32)


def probe_stats(images: Sequence[np.ndarray], probe) -> np.ndarray:
    """How unsure the probe network is on each stored image.

    Args:
        images: uint8 (H, W, 3) (or (H, W)) stored pixels.
        probe: a :class:`dnnjpeg.models.Model` (its own resize and crop).
    Returns:
        float32 (N, 3): entropy of the softmax (nats), log top-1 probability, log(p1 / p2).
    """
    if not len(images):
        return np.zeros((0, 3), np.float32)
    pre = probe.preprocess
    x = np.stack([pre.geometry(np.repeat(a[..., None], 3, 2) if a.ndim == 2 else a) for a in images])
    logits = probe.logits(x, batch_size=len(x)).astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    p = np.exp(logp)
    top2 = np.sort(logp, 1)[:, -2:]
    return np.stack([-(p * logp).sum(1), top2[:, 1], top2[:, 1] - top2[:, 0]], 1).astype(np.float32)


def member_features(bits: np.ndarray, pixels: np.ndarray, dq: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """The predictor's input per image and member, float32 (N, K, 12) (names: :data:`FEATURE_NAMES`).

    Args:
        bits: (N, K) member file sizes in bits; ``pixels``: (N,) stored pixels per image;
        dq: (N, K, 6) :func:`quantization_error`; ``stats``: (N, 3) :func:`probe_stats`.
    """
    bits = np.asarray(bits, np.float64)
    n, k = bits.shape
    px = np.asarray(pixels, np.float64).reshape(n, 1)
    size = np.stack([np.log(bits / px), np.log(bits / bits.max(1, keepdims=True)), np.log(px / 1e6).repeat(k, 1)], 2)
    st = np.broadcast_to(np.asarray(stats, np.float64)[:, None, :], (n, k, 3))
    return np.concatenate([size, np.asarray(dq, np.float64), st], 2).astype(np.float32)
