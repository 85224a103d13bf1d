"""Per-image choice curves from an evaluation's records: the rule, its bit budget, its curves.

:func:`choose` is the rule (least KL + λ·KiB per image), :func:`lambda_for_bpp` the λ
that fits a bit budget, :func:`selected_curve` the rule applied at every λ to records of
every member on every image, and :func:`with_selection` adds such curves to a saved
result (``evaluate --select``, ``benchmarks/bench_select.py``). The encoder that makes
these choices on new images is :func:`dnnjpeg.select.select_encode`; both live on the
evaluation side so that evaluation never imports the encoder's module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB, KIB_BITS
from dnnjpeg.evaluate.compare import CurveData, recompare
from dnnjpeg.evaluate.result import EvaluationResult

__all__ = [
    "choose",
    "keep_choice",
    "CLIMB_REACH",
    "climb",
    "climb_choice",
    "cached_climb",
    "climb_lambda",
    "lambda_for_bpp",
    "selected_curve",
    "selected_entry",
    "with_selection",
]


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


def keep_choice(bits: np.ndarray, kl: np.ndarray, same: np.ndarray, cap: float = np.inf) -> np.ndarray:
    """The guarantee rule: per image the smallest member that keeps the classifier's top-1 answer and
    moves its output by at most ``cap`` nats of KL.

    Args:
        bits: (K, N) file size in bits of member k on image n.
        kl: (K, N) KL(pristine ‖ decoded) in nats.
        same: (K, N) bool: member k's top-1 on image n equals the top-1 on the stored image.
        cap: the largest KL allowed (inf: the top-1 answer only).
    Returns:
        int64 (N,) member indices; −1 where no member qualifies (the caller keeps the source then).
    """
    bits, kl, same = np.asarray(bits, np.float64), np.asarray(kl, np.float64), np.asarray(same, bool)
    if not bits.shape == kl.shape == same.shape or bits.ndim != 2 or bits.shape[0] == 0:
        raise ValueError(f"bits {bits.shape}, kl {kl.shape} and same {same.shape} must all be (K ≥ 1, N)")
    if not cap > 0:
        raise ValueError(f"the KL cap must be > 0 nats, got {cap}")
    ok = same & (kl <= cap)
    k = np.where(ok, bits, np.inf).argmin(0).astype(np.int64)
    return np.where(ok.any(0), k, -1)


#: how far the climb looks each way along the sizes before it stops: 1 (the nearest neighbours) kept 84–98% of the
#: full choice's gain on the size grid (3.0 members measured per image), 2 keeps 96–100% (4.2 members);
#: BENCHMARKS.md, "How far the climb looks before it stops"
CLIMB_REACH = 2


def climb(bits: np.ndarray, kl_of, lam: float, start: int, reach: int | None = None) -> tuple[int, list[int]]:
    """The choice of :func:`choose` for one image by a local search that measures few members.

    The members are ordered by this image's file size; from ``start`` the search measures the
    ``reach`` members on either side, moves to the cheapest of them (KL + λ·KiB) if it is cheaper and
    stops where none is. It finds :func:`choose`'s member whenever the cost has no local minimum
    walled off by ``reach`` or more dearer members, as it nearly always is for a coarse-to-fine sweep
    (BENCHMARKS.md measures how much of the gain it keeps).

    Args:
        bits: (K,) this image's member file sizes in bits.
        kl_of: called with a list of member indices not measured yet → their KL (nats), same order
            (one call per step, so a network can measure them in one batch).
        lam: nats per KiB; ``start``: the member to start from; ``reach``: members looked at each way (≥ 1; None:
            :data:`CLIMB_REACH`).
    Returns:
        (the chosen member, the members measured in the order measured).
    """
    steps = climb_steps(bits, lam, start, reach)
    try:
        want = next(steps)
        while True:
            want = steps.send(kl_of(want))
    except StopIteration as done:
        return done.value


def climb_steps(bits: np.ndarray, lam: float, start: int, reach: int | None = None):
    """:func:`climb` as a generator, so that many images' searches can share network passes: it yields
    the members to measure next (a list of indices) and is sent their KL (nats, same order); it
    returns (the chosen member, the members measured in order), as :func:`climb` does."""
    reach = CLIMB_REACH if reach is None else reach  # read at call time: a benchmark may set it
    if reach < 1:
        raise ValueError(f"the climb's reach must be ≥ 1 member, got {reach}")
    bits = np.asarray(bits, np.float64)
    order = np.argsort(bits, kind="stable")
    pos = int(np.flatnonzero(order == start)[0])
    cost: dict[int, float] = {}
    measured: list[int] = []
    while True:
        # the current member first, then nearest first: the order is the measuring order the tests pin
        span = [pos] + [p for d in range(1, reach + 1) for p in (pos - d, pos + d)]
        span = [p for p in span if 0 <= p < len(order)]
        want = [int(order[p]) for p in span if int(order[p]) not in cost]
        if want:
            got = yield want
            for k, v in zip(want, np.asarray(got, np.float64)):
                cost[k] = float(v) + lam * bits[k] / KIB_BITS
            measured += want
        best = min(span[1:], key=lambda p: cost[int(order[p])], default=pos)
        if cost[int(order[best])] >= cost[int(order[pos])]:
            return int(order[pos]), measured
        pos = best


def climb_choice(
    bits: np.ndarray, kl: np.ndarray, lam: float, start: np.ndarray, reach: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`climb` on every image of measured records: what ``--choose climb`` would choose.

    Args:
        bits, kl: (K, N) every member's size in bits and KL (nats) on every image.
        start: (N,) each image's first member; ``reach``: as :func:`climb`'s.
    Returns:
        (int64 (N,) chosen members, int64 (N,) members measured per image).
    """
    bits, kl = np.asarray(bits), np.asarray(kl, np.float64)
    out, count = np.empty(bits.shape[1], np.int64), np.empty(bits.shape[1], np.int64)
    for n in range(bits.shape[1]):
        out[n], m = climb(bits[:, n], lambda ks, n=n: kl[ks, n], lam, int(start[n]), reach)
        count[n] = len(m)
    return out, count


def cached_climb(bits: np.ndarray, known: dict[int, float], lam: float, start: int) -> tuple[int, bool]:
    """:func:`climb` on the members measured so far: (its choice, True) where every member it asks for
    is in ``known`` (member → KL in nats), else (the known member of least KL + λ·KiB, False): the
    climb would need the network for more."""
    steps = climb_steps(bits, lam, start)
    try:
        want = next(steps)
        while all(k in known for k in want):
            want = steps.send([known[k] for k in want])
    except StopIteration as done:
        return int(done.value[0]), True
    return min(known, key=lambda k: known[k] + lam * float(bits[k]) / KIB_BITS, default=start), False


def climb_lambda(
    bits: Sequence[np.ndarray],
    known: Sequence[dict],
    pixels: np.ndarray,
    target_bpp: float,
    kappa=None,
    over: float = 0.0,
) -> tuple[float, np.ndarray, np.ndarray]:
    """The λ of ``--choose climb --target-bpp``: the smallest λ (nats per KiB) whose climbs, on what
    was measured so far, fit the target, as :func:`lambda_for_bpp` is for every member measured.

    Args:
        bits: per image, (K,) every member's file size in bits.
        known: per image, member → KL (nats) measured so far.
        pixels: (N,) pixels per image; ``target_bpp``: bits per pixel to stay at or under.
        kappa: (K,) the family's recorded mean KL per member (the climb starts at the choice by rate),
            or None (it starts at the middle member).
        over: as for :func:`lambda_for_bpp` (the step just above the target, when it is nearer).
    Returns:
        (λ, (N,) each image's member at λ, (N,) bool: the climb there needed no member not measured; the
        others' members are their best measured ones, to be measured further and λ found again).
    """
    budget = target_bpp * float(np.sum(pixels))

    def climbs(lam: float) -> tuple[np.ndarray, np.ndarray]:
        got = [cached_climb(b, kn, lam, _start(b, kappa, lam)) for b, kn in zip(bits, known)]
        return np.array([g[0] for g in got], np.int64), np.array([g[1] for g in got], bool)

    def total(lam: float) -> float:
        return float(sum(b[k] for b, k in zip(bits, climbs(lam)[0])))

    a, b = np.log(1e-9), np.log(1e4)
    while total(float(np.exp(b))) > budget and b < np.log(1e30):
        b += np.log(1e3)
    if total(float(np.exp(a))) > budget:
        for _ in range(40):  # 2^-40 of the log-range: below any change of choice that matters here
            m = 0.5 * (a + b)
            if total(float(np.exp(m))) <= budget:
                b = m
            else:
                a = m
        if (
            over > 0
            and total(float(np.exp(b))) < (1 - over) * budget
            and total(float(np.exp(a))) <= (1 + over) * budget
        ):
            b = a
    else:
        b = a
    lam = float(np.exp(b))
    return (lam, *climbs(lam))


def _start(bits: np.ndarray, kappa, lam: float) -> int:
    """Where ``--choose climb`` starts on one image: the choice by rate (κ recorded), else the middle member."""
    if kappa is not None:
        return int(choose(np.asarray(bits)[:, None], np.asarray(kappa)[:, None], lam)[0])
    return int(np.argsort(bits, kind="stable")[len(bits) // 2])


def lambda_for_bpp(
    bits: np.ndarray,
    kl: np.ndarray,
    pixels: np.ndarray,
    target_bpp: float,
    lo: float = 1e-9,
    hi: float = 1e4,
    over: float = 0.0,
) -> float:
    """The smallest λ (nats per KiB) whose per-image choice fits ``target_bpp`` on these images.

    The total is a step function of λ (one image changes member at a time): ``over`` > 0 takes the
    step just above the target instead, when it is at most that fraction over and the step at or
    under is further than that below (a budget met within ±``over``, not only from below).

    Args:
        bits, kl: (K, N) every member's size in bits and KL (nats) on every image.
        pixels: (N,) pixels per image; the rate is total bits / total pixels.
        target_bpp: bits per pixel to stay at or under.
    Returns:
        λ in [lo, hi]: the least KL at that total size (sizes fall as λ grows, so this is a
        bisection on log λ); ``hi`` is raised ×1000 at a time (to 1e30) while the choice still shrinks,
        for KL in larger units; the largest λ tried when even the coarsest choice is larger than the target,
        ``lo`` when the finest already fits.
    """
    bits = np.asarray(bits, np.float64)
    budget = target_bpp * float(np.sum(pixels))
    cols = np.arange(bits.shape[1])

    def total(lam: float) -> float:
        return float(bits[choose(bits, kl, lam), cols].sum())

    if total(lo) <= budget:
        return lo
    while total(hi) > budget and hi < 1e30:  # a costlier unit of KL (e.g. SDQ's squared levels) needs more
        if total(hi * 1e3) == total(hi):
            return hi  # nothing smaller is chosen at any λ
        hi *= 1e3
    if total(hi) > budget:
        return hi
    a, b = np.log(lo), np.log(hi)
    for _ in range(60):  # 2^-60 of the log-range: far below any change of choice
        m = 0.5 * (a + b)
        if total(float(np.exp(m))) <= budget:
            b = m
        else:
            a = m
    under, above = total(float(np.exp(b))), total(float(np.exp(a)))
    if over > 0 and under < (1 - over) * budget and above <= (1 + over) * budget:
        return float(np.exp(a))
    return float(np.exp(b))


def selected_curve(
    bits: np.ndarray,
    correct: np.ndarray,
    kl: np.ndarray,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS_NATS_PER_KIB,
    selector_kl: np.ndarray | None = None,
    rule=None,
) -> tuple[list[float], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The per-image choice applied at every λ, from records of every member on every image.

    Args:
        bits, correct, kl: (K, N) per member and image: bits, top-1 correct (bool), KL in nats.
        lambdas: λ values in nats per KiB.
        selector_kl: (K, N) KL of the network that chooses, when it is not the one measured
            (a transfer: choose with one model, measure with another); default ``kl``.
        rule: ``rule(λ)`` → int (N,) choices, instead of :func:`choose` on the selector's KL
            (e.g. :func:`climb_choice`, a search that measures only some members).
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
        c = choose(bits, sel, lam) if rule is None else np.asarray(rule(lam), np.int64)
        if choices and np.array_equal(c, choices[-1]):
            continue
        lams.append(float(lam))
        choices.append(c)
    ch = np.array(choices)
    return lams, bits[ch, cols], correct[ch, cols], kl[ch, cols], ch


def selected_entry(
    curves: Sequence[dict],
    labels: np.ndarray,
    pristine_top1: np.ndarray,
    pixels: np.ndarray,
    lambdas: Sequence[float],
    selector: str,
    selector_kl: np.ndarray | None = None,
    name: str | None = None,
    rule=None,
) -> tuple[dict, CurveData]:
    """The per-image choice among the members of one or more measured curves (results.json curve
    entry and its CurveData).

    ``curves``: results.json curves with per-image records, their points together the family
    (several: e.g. the ladder at 4:2:0 and 4:4:4, so subsampling is chosen per image too);
    ``selector_kl`` (K, N): the choosing model's KL when it is not the measuring one (a transfer);
    ``rule``: see :func:`selected_curve`.
    """
    members = [(c, p) for c in curves for p in c["points"]]
    per = [p["per_image"] for _, p in members]
    bits = np.array([q["bits"] for q in per], np.int64)
    pred = np.array([q["top1"] for q in per], np.int64)
    kl = np.array([q["kl"] for q in per], np.float64)
    lams, b, _, k, ch = selected_curve(bits, pred == labels, kl, lambdas, selector_kl, rule)
    cols = np.arange(bits.shape[1])
    subs = {p.get("subsampling") for _, p in members}
    opts = {p.get("optimize") for _, p in members}
    sub, opt = (subs.pop() if len(subs) == 1 else None), (opts.pop() if len(opts) == 1 else None)  # None: mixed
    pts = [_selected_point(lam, b[i], k[i], ch[i], pred[ch[i], cols], labels, pristine_top1, pixels, sub, opt,
                           len(bits)) for i, lam in enumerate(lams)]  # fmt: skip
    one = len(curves) == 1
    name = name or f"{curves[0]['name'] if one else ' + '.join(c['name'] for c in curves)} per-image"
    entry = {
        "name": name,
        "kind": "selected",
        "family": curves[0]["name"] if one else [c["name"] for c in curves],
        "selector": selector,
        "family_labels": [p["label"] if one else f"{c['name']} {p['label']}" for c, p in members],
        "points": pts,
    }
    return entry, CurveData(name, b, pred[ch, cols] == labels, pixels, k)


def _selected_point(lam, bits, kl, choice, p_sel, labels, pristine_top1, pixels, sub, opt, k: int) -> dict:
    """results.json's point of the per-image choice at one λ."""
    return {
        "label": f"λ={lam:.2g} nats/KiB", "lam": lam, "quality": None, "scale": None, "subsampling": sub,
        "optimize": opt,
        "bpp": float(bits.sum() / pixels.sum()), "mean_image_bpp": float(np.mean(bits / pixels)),
        "compression_ratio": None, "top1": float(100 * np.mean(p_sel == labels)), "top5": None,
        "agreement": float(100 * np.mean(p_sel == pristine_top1)), "kl": float(kl.mean()), "seconds": 0.0,
        "tables": None, "members": np.bincount(choice, minlength=k).tolist(),
        "per_image": {"bits": bits.tolist(), "top1": p_sel.tolist(), "kl": np.round(kl, 6).tolist(),
                      "choice": choice.tolist()},
    }  # fmt: skip


def _chooser_kl(n: str, by_name: dict, sel_curves: dict, kappa, selector, n_images: int) -> np.ndarray | None:
    """The choosing KL (K, N) of curve ``n``: κ broadcast over the images, the selector's own KL, or
    None (the measuring model chooses)."""
    if n not in by_name:
        raise ValueError(f"curve {n!r} not among {list(by_name)}")
    k_points = len(by_name[n]["points"])
    if kappa is not None:
        k = np.asarray(kappa.get(n, ()), np.float64)
        if k.shape != (k_points,):
            raise ValueError(f"kappa for {n!r} needs {k_points} values, got {k.shape}")
        return np.broadcast_to(k[:, None], (len(k), n_images))
    if selector is not None:
        if n not in sel_curves or len(sel_curves[n]["points"]) != k_points:
            raise ValueError(f"selector result has no curve {n!r} with the same {k_points} points")
        return np.array([p["per_image"]["kl"] for p in sel_curves[n]["points"]], np.float64)
    return None


def with_selection(
    result: EvaluationResult | dict,
    lambdas: Sequence[float] | None = None,
    selector: dict | None = None,
    curves: Sequence[str] | None = None,
    kappa: dict[str, Sequence[float]] | None = None,
    union: bool = False,
) -> EvaluationResult:
    """Add per-image choice curves to a saved result, from its per-image records (no images, no model).

    Args:
        result: a loaded ``results.json`` (the measuring model's).
        lambdas: λ in nats per KiB (default :data:`dnnjpeg.conventions.DEFAULT_LAMBDAS_NATS_PER_KIB`).
        selector: another model's ``results.json`` on the same images and curves: that model
            chooses, ``result``'s model is measured (how well the choice transfers).
        curves: names of the family curves (default every curve of ≥ 2 points that is not itself a choice).
        kappa: curve name → each member's mean KL measured elsewhere (K,) (e.g. on the design
            split): the choice by rate alone, least κ_k + λ·KiB per image, no network per image
            (curves named "NAME per-image by rate"); replaces ``selector``.
        union: also the choice among the members of all ``curves`` together ("A + B per-image").
    Returns:
        A copy with the new curves (named "NAME per-image", or "NAME per-image by MODEL") and
        every comparison recomputed. Raises ValueError when images or curves do not match.
    """
    lambdas = DEFAULT_LAMBDAS_NATS_PER_KIB if lambdas is None else lambdas
    result = EvaluationResult.from_dict(result).to_dict()
    if selector is not None:
        selector = EvaluationResult.from_dict(selector).to_dict()
    pr = result["pristine"]["per_image"]
    labels, pixels, ptop1 = np.asarray(pr["label"]), np.asarray(pr["pixels"]), np.asarray(pr["top1"])
    by_name = {c["name"]: c for c in result["curves"]}
    names = (
        list(curves)
        if curves is not None
        else list(kappa)
        if kappa is not None
        else [c["name"] for c in result["curves"] if c.get("kind") != "selected" and len(c["points"]) >= 2]
    )
    sel_curves = {}
    if selector is not None:
        if selector["pristine"]["per_image"]["path"] != pr["path"]:
            raise ValueError("selector result was measured on other images (paths differ)")
        sel_curves = {c["name"]: c for c in selector["curves"]}
    who = "rate" if kappa is not None else (selector or result)["settings"]["model"]
    kls = [_chooser_kl(n, by_name, sel_curves, kappa, selector, len(labels)) for n in names]  # checks the names
    chooser = [(by_name[n], k) for n, k in zip(names, kls)]
    groups = [[c] for c in chooser] + ([chooser] if union and len(chooser) >= 2 else [])
    new = []
    for g in groups:
        skl = None if g[0][1] is None else np.concatenate([k for _, k in g])
        entry, _ = selected_entry([c for c, _ in g], labels, ptop1, pixels, lambdas, who, skl)
        if selector is not None or kappa is not None:
            entry["name"] = f"{entry['name']} by {who}"
        new.append(entry)
    fresh = {e["name"] for e in new}  # a choice computed again replaces the earlier one of the same name
    return recompare({**result, "curves": [c for c in result["curves"] if c["name"] not in fresh] + new})
