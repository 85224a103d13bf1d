"""Designing DNN-favorable quantization tables.

Every method is a function ``design_X(problem, options) -> DesignResult`` in its own
module, with an options dataclass whose fields (made with :func:`option`) carry their
help text, registered here by name with :func:`register`. The CLI's flags and help and
the test list are generated from this registry: a new method is one module and one
``@register`` line.  A problem bundles the design-split data,
the model, where JPEG happens, the subsampling, the trial budget and the seed;
methods that need measurements get a :class:`TableEvaluator` from it, so trials
all run the same real encode → decode → classify path.

Methods: ``deepn`` (statistics; ``fit=True`` tunes its mapping), ``parametric`` (4 smooth
profile parameters scored across the curve), ``sorted-random``,
``bounded-random``, ``bayes`` (Optuna; ``objective_mode="pareto"`` for a Pareto
set), ``bandit`` (UCB over search heuristics), ``gradient`` (descent through the
differentiable codec, :mod:`dnnjpeg.nn`), ``fisher`` (Fisher-weighted Lagrangian tables,
one per target rate, no search).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from dnnjpeg._io import atomic_write_text
from dnnjpeg.codec import QuantTables
from dnnjpeg.data import Dataset
from dnnjpeg.design.objective import Measurement, TableEvaluator
from dnnjpeg.families import TableFamily
from dnnjpeg.models import Model

__all__ = [
    "DesignProblem", "DesignResult", "Candidate", "Designer", "design", "designers", "METHODS", "register", "option",
    "pareto_front",
]  # fmt: skip


@dataclass
class DesignProblem:
    """What to design for.

    Attributes:
        dataset: images to design on; only its design split is ever used.
        model: the network the tables should favor.
        at: "input" or "original" (as in evaluation).
        subsampling: "4:2:0" or "4:4:4" (part of the design).
        budget: number of table measurements a search may spend.
        seed: makes a run repeatable.
        trial_images: design images per measurement (the first N by path).
        objective: "kl" (smooth; default) or "top1", see :mod:`dnnjpeg.design.objective`.
        storage: Optuna storage URL (``sqlite:///study.db``) for persistent, resumable studies.
    """

    dataset: Dataset
    model: Model
    at: str = "input"
    subsampling: str = "4:2:0"
    budget: int = 60
    seed: int = 0
    trial_images: int | None = 200
    objective: str = "kl"
    storage: str | None = None
    progress: Callable[[int, int, float], None] | None = None  # (trial, budget, best gain)
    #: design images that could not be read: path → why (each designer adds what it met)
    skipped: dict[str, str] = field(default_factory=dict)
    _evaluator: TableEvaluator | None = field(default=None, repr=False)

    def design_set(self) -> Dataset:
        """The design split of the data."""
        return self.dataset.subset("design")

    def evaluator(self) -> TableEvaluator:
        """The shared, cached trial evaluator (built on first use: decodes and measures the ladder)."""
        if self._evaluator is None:
            self._evaluator = TableEvaluator(
                self.design_set(), self.model, self.at, self.subsampling, self.trial_images, self.objective
            )
            self.skipped.update(self._evaluator.pristine.failures)
        return self._evaluator


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


def option(default, help: str, *, cli: bool = True, kind: str | None = None):
    """A designer option: a dataclass field that says what it does.

    Args:
        help: one line for ``--help``.
        cli: False for options a command line cannot spell (objects, internal switches).
        kind: how the CLI reads it: "float", "int", "str", "bool", or "floats" (comma-separated,
            a tuple); default: the type of ``default``.
    """
    if kind is None:
        kind = {bool: "bool", int: "int", float: "float", str: "str", tuple: "floats"}.get(type(default))
    return field(default=default, metadata={"help": help, "cli": cli, "kind": kind})


@dataclass(frozen=True)
class Designer:
    """A registered method: its name, its function ``fn(problem, options)`` and options class."""

    name: str
    fn: Callable[..., DesignResult]
    options: type

    @property
    def summary(self) -> str:
        """The first sentence of the method's docstring."""
        para = " ".join((self.fn.__doc__ or self.name).strip().split("\n\n")[0].split())
        return para.split(". ")[0].rstrip(".") + "."


METHODS: dict[str, Designer] = {}


def register(name: str, options: type):
    """Decorator adding a designer function and its options dataclass to :data:`METHODS`."""

    def deco(fn):
        METHODS[name] = Designer(name, fn, options)
        return fn

    return deco


def designers() -> dict[str, Designer]:
    """Every registered method, by name (importing the modules registers them)."""
    from dnnjpeg.design import deepn, fisher, gradient, search  # noqa: F401

    return dict(sorted(METHODS.items()))


def design(method: str, problem: DesignProblem, options=None, **kw) -> DesignResult:
    """Run designer ``method`` on ``problem``; records wall time and trials in ``info``.

    Args:
        options: the method's options dataclass; or give its fields as keywords instead.
    Raises:
        ValueError: an unknown method, or an option the method does not have (named, with the
            options it does have).
    """
    ds = designers()
    if method not in ds:
        raise ValueError(f"unknown design method {method!r}; choose from {', '.join(ds)}")
    d = ds[method]
    if options is None:
        known = [f.name for f in fields(d.options)]
        bad = sorted(set(kw) - set(known))
        if bad:
            raise ValueError(f"{method} has no option {', '.join(bad)}; its options: {', '.join(known) or 'none'}")
        options = d.options(**kw)
    elif kw:
        raise ValueError("give the options as a dataclass or as keywords, not both")
    t0 = time.perf_counter()
    res = d.fn(problem, options)
    ev = problem._evaluator
    res.info.update(
        {
            "model": problem.model.name,
            "at": problem.at,
            "subsampling": problem.subsampling,
            "seed": problem.seed,
            "budget": problem.budget,
            "trial_images": len(ev.pristine) if ev else None,
            "objective": problem.objective,
            "trials_used": ev.n_trials if ev else 0,
            "ladder_measurements": ev.n_ladder if ev else 0,
            "wall_seconds": time.perf_counter() - t0,
            "data": str(problem.dataset.root),
            "split": "design",
        }
    )
    return res
