"""The result of an evaluation, as one typed value (what ``results.json`` holds).

Its curves, points and comparisons stay JSON records (dicts), exactly as written to
disk, so that a saved result and a fresh one are read the same way; the top level is
typed, and reading by key (``result["curves"]``) still works for code written against
the saved JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["EvaluationResult"]


@dataclass
class EvaluationResult:
    """Everything one evaluation measured.

    Attributes:
        settings: data, layout, split, model, at, input_size, n_images, labeled,
            accuracy_metric ("top1" or "agreement"), reference (curve name), target_drop,
            n_boot, seed, batch_size, workers, date.
        versions: of everything that shapes a measurement.
        pristine: top1/top5/agreement (%) and per-image path, label, top1, pixels.
        curves: one record per curve: name, kind, points (label, bpp, top1, kl, tables,
            per_image bits/top1/kl...); per-image choice curves also carry family and selector.
        comparisons: one record per curve against the reference (BD-rate and its interval,
            on top-1 and on KL, bits at the target accuracy...).
        notes: sentences a reader must see (a table measured away from what it was designed for).
        failures: [path, reason] of every image that could not be read.
    """

    settings: dict
    versions: dict
    pristine: dict
    curves: list[dict]
    comparisons: list[dict]
    notes: list[str] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict | EvaluationResult) -> EvaluationResult:
        """From a loaded ``results.json`` (unknown keys are an error: they would be lost)."""
        if isinstance(d, EvaluationResult):
            return d
        extra = set(d) - set(cls.__dataclass_fields__)
        if extra:
            raise ValueError(f"not an evaluation result: unexpected keys {sorted(extra)}")
        return cls(**{k: d[k] for k in d})

    def to_dict(self) -> dict:
        """The JSON-ready dict written as ``results.json``."""
        return asdict(self)

    @property
    def accuracy_metric(self) -> str:
        """ "top1" for labeled data, "agreement" (with the pristine top-1) otherwise."""
        return self.settings["accuracy_metric"]

    @property
    def n_images(self) -> int:
        return int(self.settings["n_images"])

    def curve(self, name: str) -> dict:
        """The curve record called ``name``; KeyError names the curves there are."""
        for c in self.curves:
            if c["name"] == name:
                return c
        raise KeyError(f"no curve {name!r}; curves: {[c['name'] for c in self.curves]}")

    def comparison(self, test: str) -> dict:
        """The comparison of curve ``test`` against the reference."""
        for k in self.comparisons:
            if k["test"] == test:
                return k
        raise KeyError(f"no comparison for {test!r}; compared: {[k['test'] for k in self.comparisons]}")

    # -- reading by key, as code written against the saved JSON does ---------------------------
    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.__dataclass_fields__ else default

    def __contains__(self, key: str) -> bool:
        return key in self.__dataclass_fields__

    def keys(self):
        return self.__dataclass_fields__.keys()
