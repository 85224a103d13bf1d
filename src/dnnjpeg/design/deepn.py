"""DeepN-JPEG: quantization steps from the spread of each DCT frequency.

A frequency whose coefficients vary a lot carries features a network uses, so
it gets a small step; a frequency that barely varies gets a large one.  The
piecewise-linear mapping from standard deviation σ to step Q:

    Q = a − k1·σ   for σ ≤ T1
    Q = b − k2·σ   for T1 < σ ≤ T2
    Q = c − k3·σ   for σ > T2
    Q = max(Q, Qmin), then rounded and clamped to 1..255

Defaults are those of a public reimplementation (a=255, b=80, c=240, T1=20,
T2=60, k1=9.75, k2=1, k3=3, Qmin=5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from dnnjpeg.codec import QuantTables
from dnnjpeg.design.stats import DctStats

__all__ = ["DeepNParams", "deepn_steps", "deepn_tables"]


@dataclass(frozen=True)
class DeepNParams:
    """The mapping's parameters (steps in quantization units, σ in DCT units)."""

    a: float = 255.0
    b: float = 80.0
    c: float = 240.0
    t1: float = 20.0
    t2: float = 60.0
    k1: float = 9.75
    k2: float = 1.0
    k3: float = 3.0
    qmin: float = 5.0

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **kw) -> DeepNParams:
        return replace(self, **kw)


def deepn_steps(sigma: np.ndarray, p: DeepNParams = DeepNParams()) -> np.ndarray:
    """Map standard deviations (any shape) to real-valued steps (same shape), before rounding."""
    s = np.asarray(sigma, dtype=np.float64)
    q = np.where(s <= p.t1, p.a - p.k1 * s, np.where(s <= p.t2, p.b - p.k2 * s, p.c - p.k3 * s))
    return np.maximum(q, p.qmin)


def deepn_tables(stats: DctStats, p: DeepNParams = DeepNParams()) -> QuantTables:
    """Baseline tables (luma from Y σ, chroma from pooled Cb/Cr σ), rounded half up, clamped 1..255."""

    def legal(q):
        return np.clip(np.floor(q + 0.5), 1, 255).astype(np.int64)

    return QuantTables(legal(deepn_steps(stats.luma_std, p)), legal(deepn_steps(stats.chroma_std, p)))


def design_statistics(problem) -> DctStats:
    """DCT statistics of every design image as the encoder would see it (model-input crop for
    ``at="input"``, the stored image for ``at="original"``), after the problem's subsampling."""
    from dnnjpeg._fs import describe_error
    from dnnjpeg.design.stats import dct_statistics
    from dnnjpeg.evaluate.trial import _load_rgb

    pre = problem.model.preprocess

    def images():
        ds = problem.design_set()
        problem.skipped.update((p, f"not read: {why}") for p, why in ds.problems)
        for rec in ds.records:
            try:
                rgb = _load_rgb(str(rec.path))
            except Exception as e:  # unreadable images are skipped (and reported) as in evaluation
                problem.skipped[str(rec.path)] = describe_error(e)
                continue
            yield pre.geometry(rgb) if problem.at == "input" else rgb

    return dct_statistics(images(), problem.subsampling)


# Ranges searched by fit=True: wide enough to include the defaults and tables
# several times coarser or finer than them.
FIT_RANGES = {
    "a": (60, 255),
    "b": (10, 160),
    "c": (60, 255),
    "t1": (2, 60),
    "t2": (20, 200),
    "k1": (0.0, 12.0),
    "k2": (0.0, 3.0),
    "k3": (0.0, 6.0),
    "qmin": (1, 30),
}


def _register():
    from dnnjpeg.design.base import option, register
    from dnnjpeg.design.result import DesignResult

    @dataclass(frozen=True)
    class DeepNOptions:
        fit: bool = option(False, "deepn: tune the mapping's parameters on the design split (spends the budget)")
        params: DeepNParams | None = option(None, "the mapping's parameters (default: DeepNParams())", cli=False)

    @register("deepn", DeepNOptions)
    def design_deepn(problem, options: DeepNOptions) -> DesignResult:
        """DeepN-JPEG tables from the design images' DCT statistics.

        ``fit=False``: the mapping with ``params`` (defaults above); no model needed.
        ``fit=True``: Optuna (TPE, seeded) tunes the mapping's parameters over
        ``problem.budget`` measurements to maximize the gain over the ladder;
        the default mapping is measured first so the report says where it stands.
        """
        fit = options.fit
        p0 = options.params or DeepNParams()
        stats = design_statistics(problem)
        default = deepn_tables(stats, p0)
        info = {
            "params": p0.to_dict(),
            "sigma_luma": stats.luma_std.round(3).tolist(),
            "sigma_chroma": stats.chroma_std.round(3).tolist(),
            "n_blocks": list(stats.n_blocks),
        }
        if not fit:
            return DesignResult("deepn", default, info=info)
        import optuna

        from dnnjpeg.design.objective import Run

        run = Run(problem, "deepn")
        first = run.try_(default, params=p0.to_dict(), default=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=problem.seed))

        def objective(trial):
            p = DeepNParams(**{k: trial.suggest_float(k, lo, hi) for k, (lo, hi) in FIT_RANGES.items()})
            return run.try_(deepn_tables(stats, p), params=p.to_dict()).gain

        study.optimize(objective, n_trials=max(1, problem.budget - 1))
        best = max(run.cands, key=lambda c: c.gain)
        info.update(
            {
                "fit": True,
                "default_gain": first.gain,
                "default_measurement": first.measurement.to_dict(),
                "best_params": best.info["params"],
            }
        )
        return run.result(**info)

    return design_deepn


_register()
