"""A differentiable estimate of a JPEG file's size from its quantized coefficients.

Baseline JPEG spends, per block, a DC difference (a magnitude category plus that
many bits) and for each non-zero AC coefficient a Huffman code for (zero run,
category) plus the category's bits, then an end-of-block code.  The model keeps
that structure with smooth counts: for every coefficient u = coef / step,

    nz(u)  = sigmoid(β (|u| − ½))   ≈ 1 when u rounds to a non-zero level
    mag(u) = log2(1 + |u|)          ≈ the magnitude category (bits of the level)

summed per component group (luma; Cb + Cr) and zigzag band, plus DC differences
and a soft end-of-block count, and combines them linearly with non-negative
weights fitted (weighted least squares, relative error) to real Pillow
``optimize=True`` file sizes.  Non-negative weights make the estimate fall as
any step grows.  Both integer levels (``exact``) and the continuous u of the
other modes give the same features to within the sigmoid's width.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dnnjpeg.codec.tables import ZIGZAG
from dnnjpeg.nn.codec import Encoded

__all__ = ["RateModel", "rate_features", "FEATURE_NAMES", "smape"]

BETA = 10.0
# Zigzag bands (positions in zigzag order) of the AC coefficients.
_BANDS = ((1, 6), (6, 21), (21, 64))
_GROUP_FEATURES = ["dc_nz", "dc_mag"] + [f"{k}_b{i}" for i in range(1, 4) for k in ("nz", "mag")] + ["eob", "blocks"]
FEATURE_NAMES = [f"{g}_{f}" for g in ("y", "c") for f in _GROUP_FEATURES] + ["intercept"]


_MASKS: dict = {}


def _band_masks(device, dtype) -> list[torch.Tensor]:
    # Built once per device/dtype: the gradient designer asks for them on every step.
    key = (str(device), dtype)
    if key not in _MASKS:
        zz = torch.as_tensor(np.array(ZIGZAG).reshape(-1), device=device)  # natural index of each zigzag position
        masks = []
        for a, b in _BANDS:
            m = torch.zeros(64, device=device, dtype=dtype)
            m[zz[a:b]] = 1
            masks.append(m)
        _MASKS[key] = masks
    return _MASKS[key]


def _group(levels: torch.Tensor) -> list[torch.Tensor]:
    """(B, C, nh, nw, 64) levels → list of (B,) features of one component group."""
    b = levels.shape[0]
    a = levels.abs()
    nz = torch.sigmoid(BETA * (a - 0.5))
    mag = torch.log2(1 + a)
    dc = levels[..., 0].reshape(b, levels.shape[1], -1)
    d = torch.diff(dc, dim=-1, prepend=torch.zeros_like(dc[..., :1])).abs()
    feats = [torch.sigmoid(BETA * (d - 0.5)).sum((1, 2)), torch.log2(1 + d).sum((1, 2))]
    for m in _band_masks(levels.device, levels.dtype):
        feats += [(nz * m).sum((1, 2, 3, 4)), (mag * m).sum((1, 2, 3, 4))]
    ac_nz = nz[..., 1:]
    # P(block has a non-zero AC) = 1 − Π(1 − nz), in logs for stability.
    eob = 1 - torch.exp(torch.log1p(-ac_nz.clamp(max=1 - 1e-6)).sum(-1))
    feats.append(eob.sum((1, 2, 3)))
    feats.append(torch.full((b,), float(np.prod(levels.shape[1:4])), dtype=levels.dtype, device=levels.device))
    return feats


def rate_features(enc: Encoded) -> torch.Tensor:
    """Features (B, F) of :data:`FEATURE_NAMES` from an :class:`Encoded` (levels or coef/step)."""
    f = _group(enc.levels_y) + _group(enc.levels_c)
    f.append(torch.ones_like(f[0]))
    return torch.stack(f, dim=1)


def smape(pred, real) -> np.ndarray:
    """Symmetric absolute percentage error per item: 100·|p − r| / ((|p| + |r|) / 2)."""
    p, r = np.asarray(pred, float), np.asarray(real, float)
    return 100 * np.abs(p - r) / ((np.abs(p) + np.abs(r)) / 2)


class RateModel(nn.Module):
    """bits (B,) = rate_features(enc) · w, w ≥ 0, one weight vector per subsampling.

    ``RateModel.default(subsampling)`` loads the weights shipped with the package
    (fitted by ``benchmarks/bench_rate.py``); :meth:`fit` fits new ones.
    """

    def __init__(self, weights, subsampling: str = "4:2:0", info: dict | None = None) -> None:
        super().__init__()
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64), dtype=torch.float32)
        if w.shape != (len(FEATURE_NAMES),):
            raise ValueError(f"rate model needs {len(FEATURE_NAMES)} weights, got shape {tuple(w.shape)}")
        self.register_buffer("weights", w)
        self.subsampling = subsampling
        self.info = info or {}

    def forward(self, enc: Encoded) -> torch.Tensor:
        """Estimated file size in bits, (B,)."""
        return rate_features(enc) @ self.weights.to(enc.levels_y.dtype)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Bits (N,) from precomputed features (N, F), e.g. from :func:`measure_rate_pairs`."""
        return np.asarray(features, float) @ self.weights.double().numpy()

    def bpp(self, enc: Encoded) -> torch.Tensor:
        """Estimated bits per pixel, (B,)."""
        return self(enc) / enc.pixels

    @staticmethod
    def fit(features: np.ndarray, bits: np.ndarray, subsampling: str = "4:2:0", info: dict | None = None) -> RateModel:
        """Non-negative least squares on relative error: features (N, F), real bits (N,)."""
        from scipy.optimize import nnls

        f, y = np.asarray(features, float), np.asarray(bits, float)
        scale = f.std(0) + 1e-9  # equalize columns so NNLS converges on the small ones too
        w, _ = nnls(f / y[:, None] / scale, np.ones_like(y), maxiter=20 * f.shape[1])
        return RateModel(w / scale, subsampling, info)

    def to_dict(self) -> dict:
        return {
            "subsampling": self.subsampling,
            "features": FEATURE_NAMES,
            "weights": self.weights.double().tolist(),
            "info": self.info,
        }

    @staticmethod
    def from_dict(d: dict) -> RateModel:
        if d.get("features") != FEATURE_NAMES:
            raise ValueError("rate model weights were fitted for other features; refit with benchmarks/bench_rate.py")
        return RateModel(d["weights"], d["subsampling"], d.get("info"))

    @staticmethod
    def default(subsampling: str = "4:2:0") -> RateModel:
        """The packaged model for ``subsampling`` (4:4:4, 4:2:2 or 4:2:0)."""
        data = json.loads(resources.files("dnnjpeg.nn").joinpath("rate_weights.json").read_text())
        if subsampling not in data:
            raise ValueError(f"no packaged rate model for {subsampling!r}; have {sorted(data)}")
        return RateModel.from_dict(data[subsampling])

    def save(self, path: str | Path) -> None:
        from dnnjpeg._io import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=1))


def measure_rate_pairs(images, tables, subsampling: str = "4:2:0", progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Features and real sizes for every (image, table) pair, for fitting and checking a model.

    Args:
        images: iterable of uint8 RGB arrays (H, W, 3), any sizes.
        tables: list of QuantTables.
    Returns:
        (features (N·T, F) from the ``exact`` codec, real bits (N·T,) of Pillow ``optimize=True``
        files), image-major.
    """
    from dnnjpeg.codec import encode
    from dnnjpeg.nn.codec import DiffJPEG

    codec = DiffJPEG(subsampling, "exact")
    t = torch.stack([torch.as_tensor(q.as_array(), dtype=torch.float32) for q in tables])
    feats, bits = [], []
    for im in images:
        x = (
            torch.from_numpy(np.array(im, dtype=np.uint8))
            .permute(2, 0, 1)[None]
            .float()
            .expand(len(tables), -1, -1, -1)
        )
        with torch.no_grad():
            _, enc = codec(x, t, return_levels=True)
        feats.append(rate_features(enc).double().numpy())
        bits.append([8 * len(encode(im, q, subsampling=subsampling, optimize=True)) for q in tables])
        if progress:
            progress()
    return np.concatenate(feats), np.concatenate([np.asarray(b, float) for b in bits])
