"""Estimate the IJG (libjpeg) quality a JPEG's tables were made with."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dnnjpeg.codec.tables import ANNEX_K_CHROMA, ANNEX_K_LUMA, QuantTables, ijg_scaled_table

__all__ = ["QualityEstimate", "estimate_quality", "estimate_quality_tables"]


@dataclass(frozen=True, slots=True)
class QualityEstimate:
    """Result of matching tables against the IJG ladder.

    Attributes:
        quality: exact IJG quality (1..100) when ``exact``, else the nearest one.
        exact: True when the file's tables equal IJG tables at ``quality``
            (baseline-clamped or not).
        distance: mean absolute difference of the table entries (quantization
            steps) to the IJG tables at ``quality``; 0.0 when exact.
    """

    quality: int
    exact: bool
    distance: float

    def __str__(self) -> str:
        return f"{self.quality}" if self.exact else f"~{self.quality} (not IJG, d={self.distance:.2f})"


@lru_cache(maxsize=1)
def _ladders() -> tuple[np.ndarray, np.ndarray, dict[bytes, list[int]], dict[bytes, list[int]]]:
    # (100, 8, 8) baseline tables for distance search, plus byte-keyed lookups of
    # every exact table (baseline-clamped and 16-bit) for O(1) exact matches.
    qs = range(1, 101)
    luma = np.stack([ijg_scaled_table(ANNEX_K_LUMA, q) for q in qs]).astype(np.float64)
    chroma = np.stack([ijg_scaled_table(ANNEX_K_CHROMA, q) for q in qs]).astype(np.float64)
    lk: dict[bytes, list[int]] = {}
    ck: dict[bytes, list[int]] = {}
    for q in qs:
        for fb in (True, False):
            lb = ijg_scaled_table(ANNEX_K_LUMA, q, fb).tobytes()
            cb = ijg_scaled_table(ANNEX_K_CHROMA, q, fb).tobytes()
            if q not in lk.setdefault(lb, []):
                lk[lb].append(q)
            if q not in ck.setdefault(cb, []):
                ck[cb].append(q)
    return luma, chroma, lk, ck


def estimate_quality_tables(luma: np.ndarray, chroma: np.ndarray | None = None) -> QualityEstimate:
    """Match a luma (and optional chroma) table, each (8, 8) natural order, to the IJG ladder.

    Luma is checked first: chroma tables alone are ambiguous (IJG qualities 1..3
    all give an all-255 chroma table).  A match needs chroma to agree at the
    same quality.  Otherwise the nearest quality by mean absolute step
    difference over both tables is returned with ``exact=False``.
    """
    lad_l, lad_c, lk, ck = _ladders()
    lu = np.asarray(luma, dtype=np.uint16)
    ch = None if chroma is None else np.asarray(chroma, dtype=np.uint16)
    for q in lk.get(lu.tobytes(), []):
        if ch is None or q in ck.get(ch.tobytes(), []):
            return QualityEstimate(q, True, 0.0)
    d = np.abs(lad_l - lu.astype(np.float64)).sum(axis=(1, 2))
    count = 64
    if ch is not None:
        d = d + np.abs(lad_c - ch.astype(np.float64)).sum(axis=(1, 2))
        count = 128
    best = int(np.argmin(d))
    return QualityEstimate(best + 1, False, float(d[best] / count))


def estimate_quality(tables: QuantTables | object) -> QualityEstimate:
    """IJG quality of a :class:`QuantTables` or of a parsed header (anything with
    ``luma_table`` / ``chroma_table``)."""
    if isinstance(tables, QuantTables):
        return estimate_quality_tables(tables.luma, tables.chroma)
    return estimate_quality_tables(tables.luma_table, tables.chroma_table)  # type: ignore[attr-defined]
