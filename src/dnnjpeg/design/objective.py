"""Measuring candidate tables during design: the trial path, cached, against the ladder.

Every designer scores tables the same way: encode the trial images (design
split only) with the real encoder, classify, and compare with the standard IJG
ladder measured once on the same images.  The score is a smooth one by default:
the gain in log mean KL divergence from the pristine output over the ladder at
the same rate (positive = less distortion than the ladder for the same bits).
Top-1 gain is available too but is a step function on a few hundred images.
"""

from __future__ import annotations

import numpy as np

from dnnjpeg.codec import QuantTables
from dnnjpeg.conventions import LADDER_QUALITIES
from dnnjpeg.data import Dataset
from dnnjpeg.design.result import Candidate, DesignResult, Measurement
from dnnjpeg.evaluate.spec import CodecSpec
from dnnjpeg.evaluate.trial import Pristine, build_pristine, run_trial
from dnnjpeg.models import Model

__all__ = ["Measurement", "TableEvaluator", "OBJECTIVES", "Run"]

OBJECTIVES = ("kl", "top1")


class TableEvaluator:
    """Scores tables on a fixed set of design images; caches every measurement.

    Args:
        dataset: must hold design-split images only (a ``ValueError`` otherwise).
        trial_images: use the first N of them (by path).
    """

    def __init__(
        self,
        dataset: Dataset,
        model: Model,
        at: str = "input",
        subsampling: str = "4:2:0",
        trial_images: int | None = 200,
        objective: str = "kl",
        workers: int | None = None,
        progress: bool = False,
    ) -> None:
        bad = [r.path.name for r in dataset.records if r.split != "design"]
        if bad:
            raise ValueError(f"design must only see the design split; {len(bad)} eval images given, e.g. {bad[0]}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.dataset = dataset.subset("design", trial_images)
        self.model = model
        self.at = at
        self.subsampling = subsampling
        self.objective = objective
        self.workers = workers
        self.pristine: Pristine = build_pristine(self.dataset, model, at)
        if len(self.pristine) == 0:
            raise ValueError(f"{dataset.root}: no readable design images")
        self._cache: dict[QuantTables, Measurement] = {}
        self.n_trials = 0
        self.ladder = [self.measure(QuantTables.standard(q)) for q in LADDER_QUALITIES]
        self.n_ladder = self.n_trials  # the reference curve, measured once; not a design trial
        self.n_trials = 0

    def measure(self, tables: QuantTables) -> Measurement:
        """Real encode → decode → classify of every trial image (cached per table)."""
        if tables in self._cache:
            return self._cache[tables]
        tr = run_trial(
            CodecSpec(tables, self.subsampling, True), self.pristine, self.model, workers=self.workers, keep_logits=True
        )
        self.n_trials += 1
        lp = tr.logits - tr.logits.max(1, keepdims=True)
        lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
        labels = self.pristine.labels
        m = Measurement(
            bpp=float(tr.bits.sum() / self.pristine.pixels.sum()),
            top1=float(100 * np.mean(tr.top5[:, 0] == labels)),
            kl=float(tr.kl.mean()),
            ce=float(-lp[np.arange(len(labels)), labels].mean()),
        )
        self._cache[tables] = m
        return m

    def ladder_at(self, bpp: float) -> tuple[float, float]:
        """(log KL, top-1) of the ladder interpolated at ``bpp`` (log-rate axis; extrapolated linearly at the ends)."""
        x = np.log([m.bpp for m in self.ladder])
        lk = np.log([max(m.kl, 1e-9) for m in self.ladder])
        acc = np.array([m.top1 for m in self.ladder])
        order = np.argsort(x)
        x, lk, acc = x[order], lk[order], acc[order]
        t = np.log(bpp)

        def interp(y):
            if t < x[0]:
                return y[0] + (y[1] - y[0]) / (x[1] - x[0]) * (t - x[0])
            if t > x[-1]:
                return y[-1] + (y[-1] - y[-2]) / (x[-1] - x[-2]) * (t - x[-1])
            return float(np.interp(t, x, y))

        return float(interp(lk)), float(min(100.0, interp(acc)))

    def gain(self, m: Measurement) -> float:
        """Score to maximize: log-KL reduction (objective "kl") or top-1 points (objective "top1")
        over the ladder at the same rate."""
        lk, acc = self.ladder_at(m.bpp)
        if self.objective == "kl":
            return float(lk - np.log(max(m.kl, 1e-9)))
        return float(m.top1 - acc)


class Run:
    """One designer's measurements: every table it tries is measured on the problem's shared
    evaluator, recorded as a :class:`~dnnjpeg.design.Candidate` and in the history, and
    reported to ``problem.progress``; :meth:`result` makes the :class:`~dnnjpeg.design.DesignResult`
    (best gain, Pareto front, the ladder). Every designer that measures uses one."""

    def __init__(self, problem, method: str) -> None:
        self.problem = problem
        self.ev = problem.evaluator()
        self.method = method
        self.cands: list = []
        self.history: list[dict] = []

    def try_(self, tables: QuantTables, **info) -> Candidate:
        """Measure ``tables``; ``info`` (phase, parameters...) is kept with the candidate."""

        m = self.ev.measure(tables)
        c = Candidate(tables, m, self.ev.gain(m), info)
        self.cands.append(c)
        self.history.append(c.to_dict())
        if self.problem.progress:
            self.problem.progress(len(self.cands), self.problem.budget, max(x.gain for x in self.cands))
        return c

    def target_bpp(self, target: float | None) -> float:
        # Default target: the ladder's rate at quality 50 on the trial images.
        from dnnjpeg.conventions import LADDER_QUALITIES

        return target if target is not None else self.ev.ladder[LADDER_QUALITIES.index(50)].bpp

    def warmup(self, rng, n: int) -> None:
        """``n`` sorted-random tables."""
        from dnnjpeg.design.sampling import sorted_random_tables

        for _ in range(n):
            self.try_(sorted_random_tables(rng), phase="sorted-random")

    def warmup_bounds(self, rng, fraction: float, target: float | None) -> tuple[int, float, np.ndarray, np.ndarray]:
        """Sorted-random warm-up of ``fraction`` of the budget (at least 4), then per-entry
        bounds from its Pareto tables near the target rate. Returns (n warm-up, target bpp, lo, hi)."""
        from dnnjpeg.design.sampling import bounds_near_rate

        n0 = max(4, int(self.problem.budget * fraction))
        self.warmup(rng, n0)
        tgt = self.target_bpp(target)
        lo, hi = bounds_near_rate(self.cands, tgt, objective=self.problem.objective)
        return n0, tgt, lo, hi

    def result(self, **info) -> DesignResult:
        """The best-gain tables, the Pareto front, the history, and ``info`` plus the ladder."""
        from dnnjpeg.design.result import pareto_front

        best = max(self.cands, key=lambda c: c.gain)
        info.setdefault("best_gain", best.gain)
        info["ladder"] = [m.to_dict() for m in self.ev.ladder]
        return DesignResult(
            self.method, best.tables, pareto_front(self.cands, self.problem.objective), self.history, info
        )


# -- methods -------------------------------------------------------------------------------
