"""Comparing rate/accuracy curves: BD-rate, rate at a target accuracy, gain at equal rate,
with paired bootstrap 95% intervals over images.

Accuracy (in percentage points) plays the role PSNR plays in video coding.
Measured accuracy is noisy and need not rise with rate, while the Bjøntegaard
integrals need a monotone curve, so every curve is first made monotone:

1. points are sorted by rate;
2. accuracy is replaced by its isotonic (non-decreasing) least-squares fit
   (pool-adjacent-violators, ``scipy.optimize.isotonic_regression``): a dip is
   averaged with its neighbours rather than dropped or clipped;
3. of points with equal fitted accuracy only the lowest-rate one is kept, so
   accuracy is strictly increasing (a flat stretch buys nothing for more bits).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dnnjpeg.evaluate.result import EvaluationResult

__all__ = ["CurveData", "monotone_curve", "bd_rate", "bd_accuracy", "rate_at_accuracy", "compare_curves", "Comparison"]


@dataclass
class CurveData:
    """Per-image measurements of one curve.

    Attributes:
        name: label.
        bits: int (P, N) file bits per point and image.
        correct: bool (P, N) whether the prediction was right.
        pixels: int (N,) pixels per image (of what was encoded).
        kl: float (P, N) KL(pristine output ‖ compressed output) per point and
            image, in nats; optional (then no KL-based BD-rate).
    """

    name: str
    bits: np.ndarray
    correct: np.ndarray
    pixels: np.ndarray
    kl: np.ndarray | None = None

    def bpp(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(P,) bits per pixel of the whole set (total bits / total pixels)."""
        if idx is None:
            return self.bits.sum(1) / self.pixels.sum()
        return self.bits[:, idx].sum(1) / self.pixels[idx].sum()

    def accuracy(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(P,) accuracy in percent."""
        c = self.correct if idx is None else self.correct[:, idx]
        return 100.0 * c.mean(1)

    def fidelity(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(P,) −ln(mean KL) per point: the network's output fidelity, higher is better.

        Top-1 only moves when an image crosses a decision boundary; the KL to the
        pristine output moves with every image, so a BD-rate on it has a far
        narrower interval on the same images (it is the smooth objective the
        designers optimize, judged on held-out images)."""
        if self.kl is None:
            raise ValueError(f"curve {self.name!r} has no per-image KL")
        k = self.kl if idx is None else self.kl[:, idx]
        return -np.log(np.maximum(k.mean(1), 1e-12))


def monotone_curve(rate, acc) -> tuple[np.ndarray, np.ndarray]:
    """Sort by rate, isotonic fit of accuracy, keep strictly increasing points (see module doc)."""
    from scipy.optimize import isotonic_regression

    r = np.asarray(rate, dtype=np.float64)
    a = np.asarray(acc, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(a) & (r > 0)
    r, a = r[ok], a[ok]
    order = np.argsort(r, kind="stable")
    r, a = r[order], a[order]
    if len(a) == 0:
        return r, a
    fit = isotonic_regression(a, increasing=True).x
    keep = [0]
    for i in range(1, len(fit)):
        if fit[i] > fit[keep[-1]] + 1e-12:
            keep.append(i)
    return r[keep], fit[keep]


def _bd(fn, ref_rate, ref_acc, test_rate, test_acc, min_overlap: float) -> float:
    import bjontegaard

    r1, a1 = monotone_curve(ref_rate, ref_acc)
    r2, a2 = monotone_curve(test_rate, test_acc)
    if len(r1) < 2 or len(r2) < 2:
        return float("nan")
    lo, hi = max(a1.min(), a2.min()), min(a1.max(), a2.max())
    span = min(a1.max() - a1.min(), a2.max() - a2.min())
    if fn == "bd_psnr":
        lo, hi = max(np.log(r1.min()), np.log(r2.min())), min(np.log(r1.max()), np.log(r2.max()))
        span = min(np.log(r1.max() / r1.min()), np.log(r2.max() / r2.min()))
    if hi <= lo or span <= 0 or (hi - lo) / span < min_overlap:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(
            getattr(bjontegaard, fn)(r1, a1, r2, a2, method="pchip", require_matching_points=False, min_overlap=0)
        )


def bd_rate(ref_rate, ref_acc, test_rate, test_acc, min_overlap: float = 0.2) -> float:
    """Bjøntegaard delta rate in percent: mean rate change of ``test`` against ``ref`` at equal
    accuracy over their common accuracy range (negative = fewer bits). NaN without overlap."""
    return _bd("bd_rate", ref_rate, ref_acc, test_rate, test_acc, min_overlap)


def bd_accuracy(ref_rate, ref_acc, test_rate, test_acc, min_overlap: float = 0.2) -> float:
    """Mean accuracy gain (percentage points) of ``test`` over ``ref`` at equal rate (log-rate axis)."""
    return _bd("bd_psnr", ref_rate, ref_acc, test_rate, test_acc, min_overlap)


def rate_at_accuracy(rate, acc, target: float) -> float:
    """Bits per pixel at which the monotone curve reaches ``target`` accuracy (log-rate
    interpolated linearly in accuracy); NaN when the curve never gets there."""
    r, a = monotone_curve(rate, acc)
    if len(r) == 0 or target > a.max():
        return float("nan")
    if target <= a.min():
        return float(r[0]) if len(r) and np.isclose(target, a.min()) else float("nan")
    return float(np.exp(np.interp(target, a, np.log(r))))


@dataclass
class Comparison:
    """Test curve against reference: estimates and 95% bootstrap intervals (lo, hi)."""

    reference: str
    test: str
    target_accuracy: float
    bd_rate: float
    bd_rate_ci: tuple[float, float]
    bd_accuracy: float
    bd_accuracy_ci: tuple[float, float]
    ref_bpp_at_target: float
    test_bpp_at_target: float
    bpp_ratio: float  # test / reference at the target
    bpp_ratio_ci: tuple[float, float]
    n_images: int
    n_boot: int
    nan_fraction: dict
    # BD-rate with −ln(mean KL to the pristine output) as the quality axis (NaN without per-image KL)
    bd_rate_kl: float = float("nan")
    bd_rate_kl_ci: tuple[float, float] = (float("nan"), float("nan"))

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _ci(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if len(x) < 10:
        return (float("nan"), float("nan"))
    return (float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5)))


def compare_curves(
    ref: CurveData,
    test: CurveData,
    pristine_correct: np.ndarray,
    drop: float = 1.0,
    n_boot: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Compare two curves measured on the same images (paired).

    Args:
        pristine_correct: bool (N,) correctness on pristine images; the target
            accuracy is pristine accuracy − ``drop`` points.
        n_boot: bootstrap resamples of the images (the same resample for both curves).
    """
    n = len(ref.pixels)

    def metrics(idx):
        target = 100.0 * (pristine_correct if idx is None else pristine_correct[idx]).mean() - drop
        rr, ra, tr, ta = ref.bpp(idx), ref.accuracy(idx), test.bpp(idx), test.accuracy(idx)
        r_at, t_at = rate_at_accuracy(rr, ra, target), rate_at_accuracy(tr, ta, target)
        bdk = bd_rate(rr, ref.fidelity(idx), tr, test.fidelity(idx)) if with_kl else float("nan")
        return target, bd_rate(rr, ra, tr, ta), bd_accuracy(rr, ra, tr, ta), r_at, t_at, t_at / r_at, bdk

    with_kl = ref.kl is not None and test.kl is not None
    target, bdr, bda, r_at, t_at, ratio, bdk = metrics(None)
    rng = np.random.default_rng(seed)
    boots = np.array([metrics(rng.integers(0, n, n))[1:] for _ in range(n_boot)]) if n_boot else np.zeros((0, 6))
    nan_frac = {
        k: float(np.mean(~np.isfinite(boots[:, i]))) if n_boot else 0.0
        for i, k in enumerate(["bd_rate", "bd_accuracy", "ref_at", "test_at", "ratio", "bd_rate_kl"])
    }
    return Comparison(
        reference=ref.name,
        test=test.name,
        target_accuracy=target,
        bd_rate=bdr,
        bd_rate_ci=_ci(boots[:, 0]),
        bd_accuracy=bda,
        bd_accuracy_ci=_ci(boots[:, 1]),
        ref_bpp_at_target=r_at,
        test_bpp_at_target=t_at,
        bpp_ratio=ratio,
        bpp_ratio_ci=_ci(boots[:, 4]),
        n_images=n,
        n_boot=n_boot,
        nan_fraction=nan_frac,
        bd_rate_kl=bdk,
        bd_rate_kl_ci=_ci(boots[:, 5]) if with_kl else (float("nan"), float("nan")),
    )


def recompare(
    result: EvaluationResult | dict, reference: str | None = None, n_boot: int | None = None, seed: int | None = None
) -> EvaluationResult:
    """Recompute a saved result's comparisons from its per-image records (no images, no model).

    For results written before a comparison metric existed (BD-rate on KL), or to
    compare against another reference curve. ``result`` is a loaded
    ``results.json``; returns a copy with new ``comparisons`` (and settings
    ``reference``/``n_boot``/``seed`` updated). Raises ValueError naming what is
    missing when the result holds no per-image records.
    """
    from dnnjpeg.evaluate.result import EvaluationResult

    result = EvaluationResult.from_dict(result).to_dict()
    s = result["settings"]
    n_boot = s["n_boot"] if n_boot is None else n_boot
    seed = s["seed"] if seed is None else seed
    try:
        label = np.asarray(result["pristine"]["per_image"]["label"])
        pixels = np.asarray(result["pristine"]["per_image"]["pixels"])
        data = []
        for c in result["curves"]:
            per = [p["per_image"] for p in c["points"]]
            data.append(
                CurveData(
                    c["name"],
                    np.array([q["bits"] for q in per]),
                    np.array([q["top1"] for q in per]) == label,
                    pixels,
                    np.array([q["kl"] for q in per], dtype=np.float64),
                )
            )
    except KeyError as e:
        raise ValueError(f"result has no per-image record {e} (written with an older dnnjpeg?)") from None
    names = [c["name"] for c in result["curves"]]
    ref = reference or s.get("reference") or names[0]
    if ref not in names:
        raise ValueError(f"reference curve {ref!r} not among {names}")
    ref_i = names.index(ref)
    pristine_correct = np.asarray(result["pristine"]["per_image"]["top1"]) == label
    comparisons = [
        compare_curves(data[ref_i], d, pristine_correct, s.get("target_drop", 1.0), n_boot, seed).to_dict()
        for i, d in enumerate(data)
        if i != ref_i
    ]
    return EvaluationResult.from_dict(
        {**result, "settings": {**s, "reference": ref, "n_boot": n_boot, "seed": seed}, "comparisons": comparisons}
    )
