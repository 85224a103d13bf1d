"""Per-image choice of tables by the network: rate allocation between images.

One table (or one quality) for a whole dataset spends the same care on every
image, yet images differ widely in how much JPEG error moves the network's
output: a confidently recognized object survives coarse steps that flip an
ambiguous one.  Given a *family* of tables (the IJG ladder, a designer's sweep)
the encoder here tries every member on every image, runs the network on each
decoded candidate, and keeps per image the member that minimizes

    KL(pristine output ‖ output on the decoded candidate) + λ · kilobytes,

the Lagrangian of "least mean KL for this many bytes in total": one λ for all
images is what makes the allocation optimal over the dataset, so λ (nats per KiB)
is the single knob, and a sweep of λ traces a rate/accuracy curve.  No label is
used; the files are ordinary baseline JPEGs (each with its own tables).  The price
is the network at compression time: K encodes, decodes and forward passes per image.

:func:`choose` is the rule, :func:`selected_curve` applies it to records of the
whole family already measured (``dnnjpeg evaluate --select``; the chosen file's
bits and prediction are exactly the family member's, because encoding is
deterministic), and :func:`select_encode` is the encoder used by
``dnnjpeg compress --select-model``.  Hand-written: no JPEG library chooses
tables by a network's output.

A cheaper relative needs no network per image: replace each image's KL by the member's
mean KL κ_k measured once on other images (``TableFamily.kappa_from_evaluation`` on a
design-split evaluation, or recorded in a sweep preset: ``TableFamily.kappa``; ``with_selection(..., kappa=…)``,
``compress --kappa`` / ``--by-rate``); the choice then moves
bits away from images whose files grow most between members.  It keeps part of the gain
(BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB, KIB_BITS

__all__ = [
    "choose",
    "selected_curve",
    "SelectedImage",
    "select_encode",
    "lambda_for_bpp",
]

#: bits per KiB: λ is in nats of KL per KiB of file
#: λ (nats per KiB) swept by ``evaluate --select``: from "nearly the finest member" (at the model
#: input one KiB is about 0.16 bpp, at ImageNet's stored sizes about 0.04 bpp) to "the coarsest"


def choose(bits: np.ndarray, kl: np.ndarray, lam: float) -> np.ndarray:
    """Index of the chosen family member per image.

    Args:
        bits: (K, N) file size in bits of member k on image n.
        kl: (K, N) KL(pristine ‖ decoded) in nats, same layout.
        lam: nats per KiB (≥ 0).
    Returns:
        int64 (N,) indices in 0..K−1 minimizing kl + lam · bits / 8192; among equal costs the
        smallest file.
    """
    bits, kl = np.asarray(bits, np.float64), np.asarray(kl, np.float64)
    if bits.shape != kl.shape or bits.ndim != 2 or bits.shape[0] == 0:
        raise ValueError(f"bits {bits.shape} and kl {kl.shape} must both be (K ≥ 1, N)")
    if not lam >= 0:
        raise ValueError(f"λ must be ≥ 0 nats/KiB, got {lam}")
    cost = kl + lam * bits / KIB_BITS
    best = cost.min(0)
    # ties (e.g. λ = 0 and several members with KL exactly 0): the smallest file among them
    tie = np.isclose(cost, best, rtol=0, atol=1e-12)
    return np.where(tie, bits, np.inf).argmin(0).astype(np.int64)


def lambda_for_bpp(
    bits: np.ndarray, kl: np.ndarray, pixels: np.ndarray, target_bpp: float, lo: float = 1e-9, hi: float = 1e4
) -> float:
    """The smallest λ (nats per KiB) whose per-image choice fits ``target_bpp`` on these images.

    Args:
        bits, kl: (K, N) every member's size in bits and KL (nats) on every image.
        pixels: (N,) pixels per image; the rate is total bits / total pixels.
        target_bpp: bits per pixel to stay at or under.
    Returns:
        λ in [lo, hi]: the least KL at that total size (sizes fall as λ grows, so this is a
        bisection on log λ); ``hi`` when even the coarsest choice is larger than the target,
        ``lo`` when the finest already fits.
    """
    bits = np.asarray(bits, np.float64)
    budget = target_bpp * float(np.sum(pixels))
    cols = np.arange(bits.shape[1])

    def total(lam: float) -> float:
        return float(bits[choose(bits, kl, lam), cols].sum())

    if total(lo) <= budget:
        return lo
    if total(hi) > budget:
        return hi
    a, b = np.log(lo), np.log(hi)
    for _ in range(60):  # 2^-60 of the log-range: far below any change of choice
        m = 0.5 * (a + b)
        if total(float(np.exp(m))) <= budget:
            b = m
        else:
            a = m
    return float(np.exp(b))


def selected_curve(
    bits: np.ndarray,
    correct: np.ndarray,
    kl: np.ndarray,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS_NATS_PER_KIB,
    selector_kl: np.ndarray | None = None,
) -> tuple[list[float], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The per-image choice applied at every λ, from records of every member on every image.

    Args:
        bits, correct, kl: (K, N) per member and image: bits, top-1 correct (bool), KL in nats.
        lambdas: λ values in nats per KiB.
        selector_kl: (K, N) KL of the network that chooses, when it is not the one measured
            (a transfer: choose with one model, measure with another); default ``kl``.
    Returns:
        (λ kept, bits (L, N), correct (L, N), kl (L, N), choice (L, N)): points whose choice
        repeats the previous λ's are dropped, so L ≤ len(lambdas); λ ascending, i.e. fine → coarse.
    """
    bits, correct, kl = np.asarray(bits), np.asarray(correct, bool), np.asarray(kl, np.float64)
    sel = kl if selector_kl is None else np.asarray(selector_kl, np.float64)
    if not (bits.shape == correct.shape == kl.shape == sel.shape):
        raise ValueError(
            f"records disagree in shape: bits {bits.shape}, correct {correct.shape}, kl {kl.shape}, selector "
            f"{sel.shape}"
        )
    cols = np.arange(bits.shape[1])
    lams, choices = [], []
    for lam in sorted(lambdas):
        c = choose(bits, sel, lam)
        if choices and np.array_equal(c, choices[-1]):
            continue
        lams.append(float(lam))
        choices.append(c)
    ch = np.array(choices)
    return lams, bits[ch, cols], correct[ch, cols], kl[ch, cols], ch


@dataclass
class SelectedImage:
    """What :func:`select_encode` chose for one image.

    ``data``: the chosen JPEG file's bytes; ``index``: its member of the family;
    ``kl``: (K,) KL in nats of every member; ``bits``: (K,) every member's size in bits.
    """

    data: bytes
    index: int
    kl: np.ndarray
    bits: np.ndarray


def select_encode(
    rgb: np.ndarray,
    family,
    model,
    lam: float,
    subsampling: str | Sequence[str] = "4:2:0",
    optimize: bool = True,
    kappa: np.ndarray | None = None,
) -> SelectedImage:
    """Encode one stored image with the family member its network prefers at λ.

    Args:
        rgb: uint8 (H, W, 3) or (H, W) stored pixels (JPEG is applied to the stored image;
            the network sees each decoded candidate through its own resize and crop).
        family: sequence of :class:`~dnnjpeg.codec.QuantTables` (K ≥ 1).
        model: a :class:`dnnjpeg.models.Model`; None with ``kappa``.
        lam: nats of KL per KiB.
        subsampling: one for every member, or one per member.
        kappa: (K,) members' mean KL measured elsewhere: the choice by rate alone (no network;
            the returned ``kl`` is ``kappa``).
    """
    from dnnjpeg.codec import decode, encode
    from dnnjpeg.evaluate.trial import outcome

    family = list(family)
    subs = [subsampling] * len(family) if isinstance(subsampling, str) else list(subsampling)
    if len(subs) != len(family) or not family:
        raise ValueError(f"{len(family)} tables but {len(subs)} subsamplings")
    datas = [encode(rgb, t, s, optimize) for t, s in zip(family, subs)]
    if kappa is not None:
        kl = np.asarray(kappa, np.float64)
        if kl.shape != (len(family),):
            raise ValueError(f"kappa has {kl.shape} values for {len(family)} tables")
    else:
        pre = model.preprocess
        rgb3 = np.repeat(rgb[..., None], 3, axis=2) if rgb.ndim == 2 else rgb
        inputs = np.stack([pre.geometry(rgb3)] + [pre.geometry(decode(d)) for d in datas])
        logits = model.logits(inputs, batch_size=len(inputs))
        _, kl = outcome(np.repeat(logits[:1], len(family), 0), logits[1:])
    bits = np.array([8 * len(d) for d in datas], np.int64)
    k = int(choose(bits[:, None], kl[:, None], lam)[0])
    return SelectedImage(datas[k], k, kl, bits)
