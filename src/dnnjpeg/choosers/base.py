"""The chooser interface, fixed tables, and the checks every chooser shares."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from dnnjpeg.codec import QuantTables, encode

__all__ = ["Chooser", "FixedTables", "MAX_SCALE"]

#: Beyond this every table entry is 255 already (entries are ≥ 1): a larger scale is a typo.
MAX_SCALE = 255.0


class Chooser(Protocol):
    """What compress asks of a way to decide each image's tables.

    ``in_process``: True when it holds a network and must run in the calling process; False
    when it is picklable and cheap, so compress spreads it over a process pool.
    ``target_bpp``: None, or the bits per pixel a family chooser must fit (compress then calls
    :meth:`measure` on every image, picks λ, and calls :meth:`encode_member`).
    """

    in_process: bool
    target_bpp: float | None

    def scaled(self, factor: float) -> Chooser:
        """The same chooser with every table entry × ``factor`` (clamped to 1..255)."""

    def settings(self) -> dict:
        """JSON-ready: everything that decides the output bytes (recorded beside the outputs)."""

    def describe(self) -> str:
        """One line for a person: what is chosen, among what, how."""

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        """uint8 (H, W, 3) or (H, W) stored pixels → (JPEG file, chosen member or None)."""

    def measure(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every member's (bits (K,), KL (K,) nats) on this image (family choosers only)."""

    def encode_member(self, pixels: np.ndarray, k: int) -> bytes:
        """The file of member ``k`` (family choosers only)."""

    def member_label(self, k: int) -> str:
        """A person's name for member ``k``."""


class NoMembers:
    """The family half of :class:`Chooser` for choosers without members (fixed tables, SDQ, a table
    generator): a bit budget over the tree and member encodes are refused, each with its reason."""

    _budget_refusal = "this chooser has no members to measure"  # why a bit budget over the tree cannot apply
    _member_refusal = "this chooser has no members"
    _label = "tables"

    def measure(self, pixels):
        raise ValueError(self._budget_refusal)

    def encode_member(self, pixels, k):
        raise ValueError(self._member_refusal)

    def member_label(self, k: int) -> str:
        return self._label


@dataclass(frozen=True)
class FixedTables(NoMembers):
    """Every image encoded with ``tables`` (natural order) at ``subsampling``."""

    tables: QuantTables
    subsampling: str = "4:2:0"
    optimize: bool = True
    in_process = False
    target_bpp = None
    _budget_refusal = "fixed tables have no members to measure: a bit budget needs a family chooser"
    _member_refusal, _label = "fixed tables have no members", "tables"

    def scaled(self, factor: float) -> FixedTables:
        return self if factor == 1.0 else replace(self, tables=self.tables.scaled(factor))

    def settings(self) -> dict:
        return {"tables": self.tables.to_dict(), "subsampling": self.subsampling, "optimize": self.optimize}

    def describe(self) -> str:
        return f"fixed tables at {self.subsampling}"

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        return encode(pixels, self.tables, self.subsampling, self.optimize), None


def _check_rate(lam: float | None, target_bpp: float | None) -> None:
    if (lam is None) == (target_bpp is None):
        raise ValueError("give λ or a target bits per pixel (which finds λ), not both and not neither")
    if lam is not None and not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"λ must be a finite number ≥ 0 nats/KiB, got {lam}")
    if target_bpp is not None and not (math.isfinite(target_bpp) and target_bpp > 0):
        raise ValueError(f"target bits per pixel must be a finite number > 0, got {target_bpp}")
