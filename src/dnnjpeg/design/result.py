"""What a designer returns: measurements, candidate tables, the Pareto front, the result."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from dnnjpeg._io import atomic_write_text
from dnnjpeg.codec import QuantTables
from dnnjpeg.families import TableFamily

__all__ = ["Measurement", "Candidate", "DesignResult", "pareto_front"]


@dataclass(frozen=True)
class Measurement:
    """One table on the trial images: bpp (total bits / total pixels), top-1 % (or agreement
    for unlabeled data), mean KL from the pristine output (nats), mean cross-entropy (nats)."""

    bpp: float
    top1: float
    kl: float
    ce: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Candidate:
    """A measured table: the tables, their measurement and score (gain over the ladder)."""

    tables: QuantTables
    measurement: Measurement
    gain: float
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"tables": self.tables.to_dict(), **self.measurement.to_dict(), "gain": self.gain, **self.info}


def pareto_front(cands: list[Candidate], objective: str = "kl") -> list[Candidate]:
    """Non-dominated candidates in (bpp ↓, distortion ↓) — KL, or −top-1 — sorted by rate."""

    def dist(c):
        return c.measurement.kl if objective == "kl" else -c.measurement.top1

    out = []
    for c in sorted(cands, key=lambda c: (c.measurement.bpp, dist(c))):
        if not out or dist(c) < dist(out[-1]):
            out.append(c)
    return out


@dataclass
class DesignResult:
    """What a designer found.

    Attributes:
        method: its name.
        tables: the recommended tables (highest gain over the ladder on the design images).
        pareto: the rate/distortion Pareto set of everything tried (may be empty for ``deepn``).
        history: every measurement in order, as dicts (tables, bpp, top1, kl, ce, gain, ...).
        info: settings, trials used, wall time, method parameters.
        family: for a designer that makes one table per rate (fisher), those tables as a
            :class:`~dnnjpeg.families.TableFamily` (coarse to fine); ``sweep_info`` holds what
            each member records besides its tables (λ, target and measured bpp...).
    """

    method: str
    tables: QuantTables
    pareto: list[Candidate] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    family: TableFamily | None = None
    sweep_info: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The table document: tables at the top (``QuantTables.load`` reads it), and under
        ``"design"`` how they were made, with the family as ``"sweep"`` (``--codec sweep:FILE``)."""
        d = self.tables.to_dict()
        d["design"] = {
            "method": self.method,
            **self.info,
            "pareto": [c.to_dict() for c in self.pareto],
            "history": self.history,
        }
        if self.family is not None:
            extra = self.sweep_info or [{} for _ in self.family.members]
            d["design"]["sweep"] = [{"tables": t.to_dict(), **x} for t, x in zip(self.family.members, extra)]
        return d

    def save(self, path: str | Path) -> Path:
        """JSON that :meth:`QuantTables.load` and ``--codec tables:FILE`` read directly (atomic)."""
        return atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=1))
