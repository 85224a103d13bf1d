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

import time
from dataclasses import fields

from dnnjpeg.design.base import METHODS, Designer, DesignProblem, option, register
from dnnjpeg.design.result import Candidate, DesignResult, pareto_front

__all__ = [
    "DesignProblem", "DesignResult", "Candidate", "Designer", "design", "designers", "METHODS", "register", "option",
    "pareto_front",
]  # fmt: skip


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
