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
``dnnjpeg compress --choose network``.  Hand-written: no JPEG library chooses
tables by a network's output.

A cheaper relative needs no network per image: replace each image's KL by the member's
mean KL κ_k measured once on other images (``TableFamily.kappa_from_evaluation`` on a
design-split evaluation, or recorded in a sweep preset: ``TableFamily.kappa``; ``with_selection(..., kappa=…)``,
``compress --kappa`` / ``--choose rate``); the choice then moves
bits away from images whose files grow most between members.  It keeps part of the gain
(BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dnnjpeg.evaluate.selection import choose, climb, keep_choice, lambda_for_bpp, selected_curve
from dnnjpeg.evaluate.trial import outcome

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
    search: str = "all",
    start: int | str | None = None,
    keep: float | None = None,
) -> SelectedImage:
    """Encode one stored image with the family member its network prefers at λ.

    Args:
        rgb: uint8 (H, W, 3) or (H, W) stored pixels (JPEG is applied to the stored image;
            the network sees each decoded candidate through its own resize and crop).
        family: sequence of :class:`~dnnjpeg.codec.QuantTables` (K ≥ 1), or of
            :class:`~dnnjpeg.families.CodecSpec` (each encodes itself: e.g. SDQ members; then
            ``subsampling`` and ``optimize`` are the specs' own).
        model: a :class:`dnnjpeg.models.Model`; None with ``kappa``.
        lam: nats of KL per KiB.
        subsampling: one for every member, or one per member.
        kappa: (K,) members' mean KL measured elsewhere: the choice by rate alone (no network;
            the returned ``kl`` is ``kappa``).
        search: "all" measures every member (K + 1 network passes); "climb" measures only the
            members :func:`~dnnjpeg.evaluate.selection.climb` visits from ``start`` (a member
            index; "rate": the choice by ``kappa``; default: the middle file size), usually 3–5
            passes; the returned ``kl`` is NaN for the others. With "climb", ``kappa`` only
            chooses the start.
        keep: instead of λ, the guarantee (:func:`~dnnjpeg.evaluate.selection.keep_choice`): the
            smallest member whose top-1 is the stored image's and whose KL ≤ ``keep`` nats; where
            none is, ``index`` is −1 and ``data`` the member of least KL.
    """
    from dnnjpeg.codec import encode

    family = list(family)
    subs = _checked_args(family, subsampling, kappa, search, start)
    grad = gradient_weights_by_size(rgb, family, model)  # once per image and stored size
    datas = [t.encode(rgb, weights=member_weights(t, grad)) if hasattr(t, "encode") else encode(rgb, t, s, optimize)
             for t, s in zip(family, subs)]  # fmt: skip
    bits = np.array([8 * len(d) for d in datas], np.int64)
    if kappa is not None:
        kl = np.asarray(kappa, np.float64)
        if kl.shape != (len(family),):
            raise ValueError(f"kappa has {kl.shape} values for {len(family)} tables")
        if search == "climb":  # κ only chooses where the climb starts
            start = int(choose(bits[:, None], kl[:, None], lam)[0]) if start == "rate" else start
            kappa = None
    if kappa is None and search == "climb":
        k, kl = _climb_choice(rgb, datas, bits, model, lam, start)
        return SelectedImage(datas[k], k, kl, bits)
    if kappa is None:
        kl, same = _measured(rgb, datas, model)
        if keep is not None:
            k = int(keep_choice(bits[:, None], kl[:, None], same[:, None], keep)[0])
            return SelectedImage(datas[k] if k >= 0 else datas[int(kl.argmin())], k, kl, bits)
    k = int(choose(bits[:, None], kl[:, None], lam)[0])
    return SelectedImage(datas[k], k, kl, bits)


def _measured(rgb, datas: list[bytes], model) -> tuple[np.ndarray, np.ndarray]:
    """Every member's KL (K,) in nats and whether its top-1 is the stored image's (K,), in one pass."""
    from dnnjpeg.pipeline import model_inputs

    inputs = model_inputs(rgb, datas, model.preprocess)
    logits = model.logits(inputs, batch_size=len(inputs))
    from dnnjpeg.models.committee import top1_kept

    _, kl = outcome(np.repeat(logits[:1], len(datas), 0), logits[1:])
    return kl, top1_kept(model, logits[0], logits[1:])


def _checked_args(family: list, subsampling, kappa, search: str, start) -> list[str]:
    """Each member's subsampling, after refusing arguments that cannot go together (ValueError)."""
    subs = [subsampling] * len(family) if isinstance(subsampling, str) else list(subsampling)
    if len(subs) != len(family) or not family:
        raise ValueError(f"{len(family)} tables but {len(subs)} subsamplings")
    if start == "rate" and kappa is None:
        raise ValueError("start='rate' needs kappa (the members' mean KL)")
    if search not in ("all", "climb"):
        raise ValueError(f"search must be 'all' or 'climb', got {search!r}")
    return subs


def gradient_weights_by_size(rgb, family, model) -> dict:
    """The image's own SDQ gradient weights where a member needs them (one backward pass per size the
    members store it at): {member's ``resize`` (None: as stored): weights}; {} when none needs them.
    Give each member its own with :func:`member_weights`."""
    need = {t.resize for t in family if getattr(t, "sdq", None) and t.sdq[0] == "gradient"}
    if not need or np.ndim(rgb) != 3:
        return {}
    from dnnjpeg.sdq.weights import gradient_weights

    if model is None:
        raise ValueError("SDQ with gradient weights needs the network (--choose network)")
    return {r: gradient_weights(next(t for t in family if t.resize == r).resized(rgb), model) for r in need}


def member_weights(member, by_size: dict):
    """The weights ``member`` encodes with, from :func:`gradient_weights_by_size`: the image's gradient
    weights at its stored size for an SDQ-gradient member; None for every other (an SDQ crop, Fisher or
    MSE member makes its own from the image). Keyed by size alone, a crop member beside a gradient
    one was given the gradient's weights when measured and its own when written: its bits as measured
    were not its file's (issue: the budget)."""
    sdq = getattr(member, "sdq", None)
    return by_size.get(member.resize) if sdq and sdq[0] == "gradient" else None


def _climb_choice(rgb, datas: list[bytes], bits: np.ndarray, model, lam: float, start) -> tuple[int, np.ndarray]:
    """:func:`~dnnjpeg.evaluate.selection.climb` over the members, the network measuring only those it
    visits (the pristine pass shared with the first): (chosen member, KL (K,) with NaN where not measured)."""
    from dnnjpeg.codec import decode

    kl = np.full(len(datas), np.nan)
    pre = model.preprocess
    rgb3 = np.repeat(rgb[..., None], 3, axis=2) if rgb.ndim == 2 else rgb
    pristine_in = pre.geometry(rgb3)
    p_logits = []

    def kl_of(ks: list[int]) -> np.ndarray:
        first = not p_logits
        inputs = np.stack(([pristine_in] if first else []) + [pre.geometry(decode(datas[k])) for k in ks])
        logits = model.logits(inputs, batch_size=len(inputs))
        if first:
            p_logits.append(logits[:1])
            logits = logits[1:]
        _, v = outcome(np.repeat(p_logits[0], len(ks), 0), logits)
        kl[ks] = v
        return v

    s = int(np.argsort(bits, kind="stable")[len(bits) // 2]) if start is None else int(start)
    k, _ = climb(bits, kl_of, lam, s)
    return k, kl
