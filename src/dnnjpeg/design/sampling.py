"""Table generators the searches draw from: sorted random tables, bounds near a rate, samples within them."""

from __future__ import annotations

import math

import numpy as np

from dnnjpeg.codec import QuantTables, from_zigzag
from dnnjpeg.design.result import Candidate, pareto_front

__all__ = ["sorted_random_tables", "bounds_near_rate", "sample_bounded", "tables_from_vector"]


def _sorted_random_table(rng: np.random.Generator) -> np.ndarray:
    v = np.abs(rng.standard_normal(64))
    v = (v - v.min()) / max(v.max() - v.min(), 1e-12)
    lo, hi = rng.integers(0, 35), rng.integers(50, 150)
    v = (lo + v * (hi - lo)) * rng.uniform(0.5, 1.5)
    v = np.clip(np.rint(v), 1, 255)
    return from_zigzag(np.sort(v))  # smallest steps at DC, growing along the zigzag


def sorted_random_tables(rng: np.random.Generator) -> QuantTables:
    """Random tables whose sorted values run along the zigzag (DC smallest), luma and chroma drawn
    independently: |N(0,1)| values normalized, mapped to [lo, hi] with lo in 0..34 and hi in
    50..149, times a scale in 0.5..1.5, rounded and clipped to 1..255."""
    return QuantTables(_sorted_random_table(rng), _sorted_random_table(rng))


def bounds_near_rate(
    cands: list[Candidate], target_bpp: float, k: int = 6, objective: str = "kl"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-entry bounds (lo, hi), each int (128,) natural order [luma, chroma], from the ``k``
    Pareto candidates nearest ``target_bpp`` in log rate and their transposes: min − 0.5σ … max + 0.5σ."""
    front = pareto_front(cands, objective) or cands
    near = sorted(front, key=lambda c: abs(math.log(c.measurement.bpp / target_bpp)))[: max(2, k)]
    arr = np.array([c.tables.as_array() for c in near], dtype=np.float64)  # (n, 2, 8, 8)
    arr = np.concatenate([arr, arr.transpose(0, 1, 3, 2)]).reshape(-1, 128)
    sd = arr.std(0)
    lo = np.clip(np.floor(arr.min(0) - 0.5 * sd), 1, 255).astype(np.int64)
    hi = np.clip(np.ceil(arr.max(0) + 0.5 * sd), 1, 255).astype(np.int64)
    return lo, np.maximum(hi, lo)


def sample_bounded(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> QuantTables:
    """Uniform integers inside per-entry bounds (128 values, natural order, luma then chroma)."""
    return QuantTables.from_array(rng.integers(lo, hi + 1).reshape(2, 8, 8))


def tables_from_vector(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> QuantTables:
    """Map x in [0, 1]^128 into the bounds, rounded to legal integer tables."""
    v = lo + np.clip(np.asarray(x, dtype=np.float64), 0, 1) * (hi - lo)
    return QuantTables.from_array(np.clip(np.rint(v), 1, 255).astype(np.int64).reshape(2, 8, 8))
