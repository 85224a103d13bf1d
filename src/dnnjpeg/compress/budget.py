"""A bit budget (``--target-bpp``) over a tree: one λ fitted on every image's members as written,
and a miss said in one line.

The bits λ is fitted on are the bits of the files written (:func:`~dnnjpeg.compress.files.as_written`:
metadata added, a source kept where no member is smaller). The tree's total is a step function of λ
(one image changes member at a time), so a small tree, or a family with coarse steps, may not land
within :data:`TOLERANCE` of the target: that is reported, never silent.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TOLERANCE", "budget_cause", "fit_budget", "miss"]

#: a bit budget is met when the files written are within this fraction of the target
TOLERANCE = 0.01


def fit_budget(measured: list, target_bpp: float) -> tuple[list[int], float, float]:
    """From every member's (bits (K,), KL (K,), pixels) on every image: each image's member at the
    λ (nats per KiB) whose choice fits ``target_bpp`` over these images (at or under it, or at most
    :data:`TOLERANCE` over when the step under is further below), that λ, and their pixels.

    Raises:
        ValueError: even every image at its smallest file is over the target (says how small it gets).
    """
    from dnnjpeg.select import choose, lambda_for_bpp

    bits = np.stack([m[0] for m in measured], 1)
    kl = np.stack([m[1] for m in measured], 1)
    pix = np.array([m[2] for m in measured])
    floor = float(bits.min(0).sum() / pix.sum())
    if floor > target_bpp:
        raise ValueError(
            f"target {target_bpp:g} bpp is out of reach: the smallest files these tables make "
            f"are {floor:.4f} bpp (every image at its coarsest member); nothing was written"
        )
    lam = lambda_for_bpp(bits, kl, pix, target_bpp, over=TOLERANCE)
    return [int(k) for k in choose(bits, kl, lam)], lam, float(pix.sum())


def budget_cause(measured: list, target_bpp: float) -> str:
    """Why a choice over these images may land away from ``target_bpp`` (for :func:`miss`)."""
    bits = np.stack([m[0] for m in measured], 1)
    finest = float(bits.max(0).sum() / sum(m[2] for m in measured))
    if finest < target_bpp:
        return f"every image at its finest member makes only {finest:.3f} bpp"
    return (
        f"one image changing member moves these {len(measured):,} images' total by more than that: more "
        "images, or a family with finer steps, land nearer"
    )


def miss(rep, target_bpp: float | None, tolerance: float = TOLERANCE) -> str | None:
    """One line when ``rep`` (a :class:`~dnnjpeg.compress.CompressReport`) wrote files more than
    ``tolerance`` (a fraction) away from ``target_bpp``; None when within, without a budget, or when λ
    came from the record of a resumed run (it prices the rest of a tree that was fitted whole)."""
    if target_bpp is None or rep.bpp is None or rep.resumed_lam:
        return None
    off = rep.bpp / target_bpp - 1
    if abs(off) <= tolerance:
        return None
    cause = f": {rep.budget_cause}" if rep.budget_cause else ""
    return (f"target {target_bpp:g} bpp missed: the files written are at {rep.bpp:.3f} bpp ({100 * off:+.1f}%, "
            f"more than ±{100 * tolerance:g}%){cause}")  # fmt: skip
