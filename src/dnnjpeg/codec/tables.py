"""Quantization tables: the one table type that crosses every border of dnnjpeg.

Everything here is in natural (row-major) order: ``table[v, u]`` is the step of
the coefficient with vertical frequency ``v`` and horizontal frequency ``u``.
Zigzag order exists only in :mod:`dnnjpeg.codec.header` where bytes meet a file,
and through :data:`ZIGZAG` / :func:`to_zigzag` / :func:`from_zigzag` for callers
that need it for the same reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dnnjpeg._io import atomic_write_text

__all__ = [
    "ANNEX_K_LUMA",
    "ANNEX_K_CHROMA",
    "ZIGZAG",
    "INVERSE_ZIGZAG",
    "QuantTables",
    "ijg_scale_factor",
    "ijg_scaled_table",
    "to_zigzag",
    "from_zigzag",
]

# ITU-T T.81 Annex K, tables K.1 and K.2, natural order.
ANNEX_K_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.uint16,
)
ANNEX_K_CHROMA = np.array(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
    ],
    dtype=np.uint16,
)
for _t in (ANNEX_K_LUMA, ANNEX_K_CHROMA):
    _t.flags.writeable = False


def _zigzag_order() -> np.ndarray:
    # The zigzag walks anti-diagonals s = v + u; odd diagonals run top-down
    # (v increasing), even ones bottom-up.  Derived rather than typed in so a
    # typo cannot hide in 64 literals.
    order = []
    for s in range(15):
        cells = [(v, s - v) for v in range(8) if 0 <= s - v < 8]
        if s % 2 == 0:
            cells.reverse()
        order.extend(v * 8 + u for v, u in cells)
    return np.array(order, dtype=np.intp)


#: ``ZIGZAG[k]`` is the natural (row-major) index of the k-th coefficient in zigzag order.
ZIGZAG = _zigzag_order()
#: ``INVERSE_ZIGZAG[n]`` is the zigzag position of natural index ``n``.
INVERSE_ZIGZAG = np.argsort(ZIGZAG)
ZIGZAG.flags.writeable = False
INVERSE_ZIGZAG.flags.writeable = False


def to_zigzag(table: np.ndarray) -> np.ndarray:
    """Natural-order 8×8 table (or any ``(..., 8, 8)`` array) → ``(..., 64)`` in zigzag order."""
    a = np.asarray(table)
    return a.reshape(*a.shape[:-2], 64)[..., ZIGZAG]


def from_zigzag(values: np.ndarray) -> np.ndarray:
    """``(..., 64)`` values in zigzag order → ``(..., 8, 8)`` natural-order array."""
    a = np.asarray(values)
    return a[..., INVERSE_ZIGZAG].reshape(*a.shape[:-1], 8, 8)


def ijg_scale_factor(quality: int) -> int:
    """libjpeg's ``jpeg_quality_scaling``: quality 1..100 → percentage scale factor."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"IJG quality must be in 1..100, got {quality}")
    q = int(quality)
    return 5000 // q if q < 50 else 200 - 2 * q


def ijg_scaled_table(base: np.ndarray, quality: int, force_baseline: bool = True) -> np.ndarray:
    """Scale an 8×8 base table as libjpeg's ``jpeg_add_quant_table`` does.

    ``(base * scale + 50) // 100``, clamped to 1, and to 255 when ``force_baseline``
    (otherwise to 32767 as libjpeg does). Returns a new uint16 (8, 8) array.
    """
    scale = ijg_scale_factor(quality)
    t = (np.asarray(base, dtype=np.int64) * scale + 50) // 100
    t = np.clip(t, 1, 255 if force_baseline else 32767)
    return t.astype(np.uint16)


_FORMAT = "dnnjpeg.quant_tables/1"


def _leaves(x: Any) -> list:
    """The scalars of nested lists (JSON arrays), in order."""
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in _leaves(item)]
    return [x]


def _validated(name: str, table: Any, max_value: int) -> np.ndarray:
    a = np.asarray(table)
    if a.shape == (64,):
        a = a.reshape(8, 8)
    if a.shape != (8, 8):
        raise ValueError(f"{name} table must be 8x8 (or 64 values), got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{name} table must hold integers, got non-integral values")
    elif a.dtype.kind not in "iu":
        raise ValueError(f"{name} table must hold integers, got dtype {a.dtype}")
    lo, hi = int(a.min()), int(a.max())
    if lo < 1 or hi > max_value:
        hint = "" if max_value > 255 else " (pass extended=True for 16-bit tables)"
        raise ValueError(f"{name} table entries must be in 1..{max_value}, got {lo}..{hi}{hint}")
    out = a.astype(np.uint16).copy()
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False, init=False)
class QuantTables:
    """A luma and a chroma quantization table, 8×8 each, natural row-major order.

    Immutable and validated once at construction: integers in 1..255 (baseline),
    or 1..65535 when ``extended=True`` (16-bit DQT, not readable by baseline decoders).

    Attributes:
        luma: read-only uint16 array (8, 8), steps for Y.
        chroma: read-only uint16 array (8, 8), steps shared by Cb and Cr.
        extended: whether entries above 255 are allowed.
    """

    luma: np.ndarray
    chroma: np.ndarray
    extended: bool

    def __init__(self, luma: Any, chroma: Any | None = None, *, extended: bool = False) -> None:
        max_value = 65535 if extended else 255
        lum = _validated("luma", luma, max_value)
        chrom = lum if chroma is None else _validated("chroma", chroma, max_value)
        object.__setattr__(self, "luma", lum)
        object.__setattr__(self, "chroma", chrom)
        object.__setattr__(self, "extended", bool(extended))

    # -- constructors -------------------------------------------------------
    @classmethod
    def standard(cls, quality: int, force_baseline: bool = True) -> QuantTables:
        """The IJG/libjpeg tables for ``quality`` 1..100 (Annex K scaled)."""
        return cls(
            ijg_scaled_table(ANNEX_K_LUMA, quality, force_baseline),
            ijg_scaled_table(ANNEX_K_CHROMA, quality, force_baseline),
            extended=not force_baseline,
        )

    @classmethod
    def from_array(cls, array: Any, *, extended: bool = False) -> QuantTables:
        """From an array of shape (2, 8, 8) (luma, chroma) or (2, 64) natural order."""
        a = np.asarray(array)
        if a.shape[0] != 2:
            raise ValueError(f"expected 2 tables (luma, chroma), got shape {a.shape}")
        return cls(a[0], a[1], extended=extended)

    # -- views --------------------------------------------------------------
    def as_array(self) -> np.ndarray:
        """Stacked copy, shape (2, 8, 8), uint16: ``[luma, chroma]``."""
        return np.stack([self.luma, self.chroma])

    def pillow_qtables(self, n: int = 2) -> list[list[int]]:
        """The ``qtables=`` argument for Pillow: ``n`` lists of 64 ints, natural order."""
        tables = [self.luma, self.chroma][:n]
        return [t.reshape(64).astype(int).tolist() for t in tables]

    def scaled(self, factor: float) -> QuantTables:
        """Every entry × ``factor``, rounded half up and clamped to 1..255 (1..65535 extended).

        The one way to sweep a designed table into a rate curve.
        """
        if not factor > 0:
            raise ValueError(f"scale factor must be positive, got {factor}")
        hi = 65535 if self.extended else 255
        arr = np.floor(self.as_array().astype(np.float64) * factor + 0.5)
        return QuantTables.from_array(np.clip(arr, 1, hi).astype(np.int64), extended=self.extended)

    # -- equality -----------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantTables):
            return NotImplemented
        return np.array_equal(self.luma, other.luma) and np.array_equal(self.chroma, other.chroma)

    def __hash__(self) -> int:
        return hash((self.luma.tobytes(), self.chroma.tobytes()))

    def __repr__(self) -> str:
        return (
            f"QuantTables(luma DC={int(self.luma[0, 0])} mean={self.luma.mean():.1f}, "
            f"chroma DC={int(self.chroma[0, 0])} mean={self.chroma.mean():.1f})"
        )

    # -- serialization ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"format", "order": "natural", "luma": 8×8 lists, "chroma": ...}``."""
        return {
            "format": _FORMAT,
            "order": "natural",
            "extended": self.extended,
            "luma": self.luma.astype(int).tolist(),
            "chroma": self.chroma.astype(int).tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantTables:
        """Inverse of :meth:`to_dict`; also accepts a dict that wraps one under ``"tables"``.

        Strict: a JSON object is required, ``format`` (when given) must be this one, entries must
        be numbers (``true`` is not 1), ``extended`` a boolean.
        """
        if isinstance(d, dict) and "tables" in d and "luma" not in d:
            d = d["tables"]
        if not isinstance(d, dict):
            raise ValueError(
                f"quantization-table JSON must be an object with 'luma' and 'chroma', got {type(d).__name__}"
            )
        if "format" in d and d["format"] != _FORMAT:
            raise ValueError(f"unknown format {d['format']!r}: expected {_FORMAT!r}")
        if d.get("order", "natural") != "natural":
            raise ValueError(f"unsupported table order {d.get('order')!r}: dnnjpeg stores natural order")
        extended = d.get("extended", False)
        if not isinstance(extended, bool):
            raise ValueError(f"'extended' must be true or false, got {extended!r}")
        for key in ("luma", "chroma"):
            if key not in d:
                raise ValueError(f"quantization-table JSON lacks the {key!r} key")
            bad = [v for v in _leaves(d[key]) if isinstance(v, bool) or not isinstance(v, (int, float))]
            if bad:
                raise ValueError(f"{key} table entries must be numbers, got {bad[0]!r}")
        return cls(d["luma"], d["chroma"], extended=extended)

    def to_json(self) -> str:
        """Serialize with :meth:`to_dict`, one table row per line."""
        d = self.to_dict()
        rows = lambda t: "[\n" + ",\n".join("    " + json.dumps(r) for r in t) + "\n  ]"  # noqa: E731
        return (
            "{\n"
            f'  "format": "{d["format"]}",\n  "order": "natural",\n'
            f'  "extended": {json.dumps(d["extended"])},\n'
            f'  "luma": {rows(d["luma"])},\n  "chroma": {rows(d["chroma"])}\n'
            "}\n"
        )

    @classmethod
    def from_json(cls, text: str) -> QuantTables:
        """Parse JSON written by :meth:`to_json` (or any dict :meth:`from_dict` takes)."""
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write JSON to ``path`` atomically (temp file + rename). Returns the path."""
        return atomic_write_text(Path(path), self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> QuantTables:
        """Read a table JSON file; errors name the file."""
        from dnnjpeg._fs import display, read_json

        p = Path(path)
        try:  # read_json caps the size and the nesting depth before parsing
            return cls.from_dict(read_json(p))
        except (OSError, ValueError) as e:
            raise ValueError(f"{display(p)}: cannot read quantization tables: {e}") from e

    def to_cjpeg_qtables(self) -> str:
        """Text for ``cjpeg -qtables FILE -qslots 0,1``: two tables, natural order.

        libjpeg's ``read_quant_tables`` reads 64 integers per table in natural
        (not zigzag) order; ``#`` starts a comment.
        """
        out = ["# dnnjpeg quantization tables, natural order", "# table 0: luma"]
        out += [" ".join(f"{int(x):3d}" for x in row) for row in self.luma]
        out.append("# table 1: chroma")
        out += [" ".join(f"{int(x):3d}" for x in row) for row in self.chroma]
        return "\n".join(out) + "\n"
