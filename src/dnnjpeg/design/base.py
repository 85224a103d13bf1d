"""The design problem and the registry of designers (each method registers itself here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dnnjpeg.data import Dataset
from dnnjpeg.design.objective import TableEvaluator
from dnnjpeg.design.result import DesignResult
from dnnjpeg.models import Model

__all__ = ["DesignProblem", "Designer", "METHODS", "register", "option"]


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
