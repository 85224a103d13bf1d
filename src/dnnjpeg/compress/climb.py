"""The network's local search (``--choose climb``) over many images at once.

One image's climb measures 3–7 members in 1–3 rounds; run image by image, each round is a forward pass
of one to three rows and the JPEG work waits for it. Here a window of images climbs together: every
round decodes the members each search asks for (threads) and classifies all of them in full batches
(:func:`dnnjpeg.pipeline.score_stream`); each search then moves on by
:func:`~dnnjpeg.evaluate.selection.climb_steps`, the very steps of the image-by-image climb, so the
files are the same, byte for byte.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dnnjpeg.compress.files import _unless_kept, as_written, write_chosen

#: images climbing together (their candidates' files are held in memory meanwhile)
WINDOW = 64


class _Search:
    """One image's climb: its files, the model inputs asked for, and where the search stands. ``known``
    (member → KL) answers the steps measured before (a bit budget's earlier passes) without the network,
    and ``p_logits`` ((1, C), the stored image's logits from then) spares its pass."""

    def __init__(self, prepared, lam: float, kappa, known: dict | None = None, p_logits=None) -> None:
        from dnnjpeg.evaluate.selection import _start, climb_steps

        self.src, self.out, self.before, self.datas, self.bits, self.pristine, self.pixels = prepared
        self.p_logits, self.chosen, self.rows = p_logits, None, 0
        self.kl: dict[int, float] = dict(known or {})
        self.steps = climb_steps(self.bits, lam, _start(self.bits, kappa, lam))
        self._go(next(self.steps))

    def _go(self, pending: list[int]) -> None:
        """Step on from what is known; stop at the first step that needs the network (``want``)."""
        while True:
            self.pending, self.want = pending, [k for k in pending if k not in self.kl]
            if self.want:
                return
            try:
                pending = self.steps.send([self.kl[k] for k in pending])
            except StopIteration as done:
                self.chosen, self.want = done.value[0], None
                return

    def inputs(self, pre) -> np.ndarray:
        from dnnjpeg.codec import decode

        rows = [pre.geometry(decode(self.datas[k])) for k in self.want]
        return np.stack(([self.pristine] if self.p_logits is None else []) + rows)

    def advance(self, logits: np.ndarray) -> None:
        from dnnjpeg.evaluate.trial import outcome

        self.rows += len(logits)
        if self.p_logits is None:
            self.p_logits, logits = logits[:1], logits[1:]
        _, kl = outcome(np.repeat(self.p_logits, len(logits), 0), logits)
        self.kl.update(zip(self.want, map(float, kl)))
        try:
            self._go(self.steps.send([self.kl[k] for k in self.pending]))
        except StopIteration as done:
            self.chosen, self.want = done.value[0], None


def _prepare(job, points, pre):
    """Worker half: (outcome, None) for a file kept or failed, else (None, (source, output, bytes before,
    every member's file, their bits, the pristine model input, source pixels))."""

    def work(src, out, before, px, n):
        datas = [p.encode(px) for p in points]
        rgb3 = np.repeat(px[..., None], 3, axis=2) if px.ndim == 2 else px
        bits = np.array([8 * len(d) for d in datas], np.int64)
        return src, str(out), before, datas, bits, pre.geometry(rgb3), n

    return _unless_kept(job, work)


def _searches(jobs, chooser, engine, batch_size: int, lam, known=None, p_logits=None):
    """Every job's climb at ``lam``, windows of :data:`WINDOW` at a time. Yields per job, in order, an
    outcome (kept or failed) or its finished :class:`_Search`.

    ``lam``: nats/KiB, or a callable giving the λ of the searches it starts next (a window's searches
    start once the window before was consumed); ``known``: per job, member → KL measured before;
    ``p_logits``: per job, the stored image's logits (1, C) from then, or None."""
    from dnnjpeg.pipeline import bounded_map

    points, pre = chooser.family.points, chooser.model.preprocess
    # the rounds of a window decode, then classify: the decoding has every core to itself
    threads = max(1, min(8, engine.workers))
    known = known or [None] * len(jobs)
    p_logits = p_logits or [None] * len(jobs)
    with ThreadPoolExecutor(threads) as pool:
        prepared = bounded_map(pool, lambda j: _prepare(j, points, pre), jobs, 4 * threads + 2)
        window: list = []
        for (done, p), kn, pl in zip(prepared, known, p_logits):
            at = lam() if callable(lam) else lam
            window.append(done if p is None else _Search(p, at, chooser.family.kappa, kn, pl))
            if len(window) == WINDOW:
                yield from _climb_window(window, chooser.model, pre, pool, batch_size)
                window = []
        yield from _climb_window(window, chooser.model, pre, pool, batch_size)


def batched_climb(jobs, chooser, engine, batch_size: int):
    """``--choose climb`` for many images. Yields per job, in order, (outcome, member or None) as
    :func:`~dnnjpeg.compress.files._batched_choice` does."""
    rules = jobs[0][5] if jobs else None
    for s in _searches(jobs, chooser, engine, batch_size, chooser.lam):
        if isinstance(s, _Search):
            yield write_chosen(s.src, s.out, s.before, s.datas[s.chosen], s.chosen, rules)
        else:
            yield s, None


def _climb_window(window: list, model, pre, pool, batch_size: int):
    """Every search of a window to its end, a round at a time; then each, in order."""
    from dnnjpeg.pipeline import score_stream

    while True:
        active = [s for s in window if isinstance(s, _Search) and s.want is not None]
        if not active:
            break
        inputs = list(pool.map(lambda s: s.inputs(pre), active))
        for _, logits, s in score_stream(((i, x, s) for i, (x, s) in enumerate(zip(inputs, active))), model,
                                         batch_size):  # fmt: skip
            s.advance(logits)
    yield from window


#: images whose every member is measured first, to find where λ starts for a bit budget
SAMPLE = 64
#: images (at most, spread) whose climbs set λ again while the tree is measured the first time
REFIT_IMAGES = 1024
#: rounds of measuring what the climbs at the λ found still need, before the best measured are taken
ROUNDS = 8


class BudgetClimb:
    """``--choose climb --target-bpp B``: the climb's λ found for the tree's bit budget, reusing the
    network passes already made (issue 30: before, compress measured every member to find λ).

    1. every member of :data:`SAMPLE` images spread over the tree: the λ that fits B on them;
    2. every image's climb at that λ (the members' bits and the KLs measured kept; the files not), λ found
       again from the climbs so far after 1, 2, 4, 8, … windows;
    3. λ found again for the whole tree from the climbs on what is measured
       (:func:`~dnnjpeg.evaluate.selection.climb_lambda`); the images whose climb there needs a member
       not measured are climbed again at that λ, passes before reused, and 3 repeats (≤ :data:`ROUNDS`).

    The members then chosen are exactly the climb's at the λ found (tested), unless rounds ran out: then
    some images take their best measured member (:attr:`incomplete` says how many).
    """

    def __init__(self, jobs, chooser, engine, batch_size: int) -> None:
        self.jobs, self.chooser, self.engine, self.batch = jobs, chooser, engine, batch_size
        self.done: list = []  # (job index, outcome) of files kept or failed
        self.bits: dict[int, np.ndarray] = {}
        self.known: dict[int, dict] = {}
        self.pixels: dict[int, int] = {}
        self.p_logits: dict[int, np.ndarray] = {}  # the stored images' logits: a climb again needs no pass for them
        self.rows = 0  # network passes (rows), the pristine images' included
        self.incomplete = 0

    def _measure(self, idx: list[int], lam: float, target: float | None = None) -> None:
        """Every image of ``idx`` climbed at ``lam``; with ``target``, λ is found again on what was measured
        after windows 1, 2, 4, 8, … so that the later images climb nearer the λ of the whole tree (fewer climb
        again at the end)."""
        jobs = [self.jobs[i] for i in idx]
        known, p_logits = [self.known.get(i) for i in idx], [self.p_logits.get(i) for i in idx]
        now = [lam]
        refit = {WINDOW * 2**k for k in range(40)}
        searches = _searches(jobs, self.chooser, self.engine, self.batch, lambda: now[0], known, p_logits)
        for n, (i, s) in enumerate(zip(idx, searches), 1):
            if isinstance(s, _Search):
                if s.p_logits is not None:
                    self.p_logits[i] = s.p_logits
                # the metadata the files will carry counts (the same for every member: the climb is unchanged)
                self.bits[i] = as_written(s.src, s.bits, None, self.jobs[i][5])[0]
                self.known[i], self.pixels[i] = s.kl, s.pixels
                self.rows += s.rows
            elif i not in self.bits:
                self.done.append((i, s))
            if target is not None and n in refit:
                now[0] = self._refit(target)

    def _refit(self, target: float) -> float:
        """λ (nats/KiB) of the climbs over at most :data:`REFIT_IMAGES` of the images measured so far (spread)."""
        idx = sorted(self.bits)
        return self._lambda(idx[:: max(1, len(idx) // REFIT_IMAGES)], target)[0]

    def _lambda(self, idx: list[int], target: float):
        """:func:`~dnnjpeg.evaluate.selection.climb_lambda` on what images ``idx`` have measured so far."""
        from dnnjpeg.evaluate.selection import climb_lambda

        pix = np.array([self.pixels[i] for i in idx])
        bits, known = [self.bits[i] for i in idx], [self.known[i] for i in idx]
        from dnnjpeg.compress.budget import TOLERANCE

        return climb_lambda(bits, known, pix, target, self.chooser.family.kappa, over=TOLERANCE)

    def _sample(self, target: float) -> float:
        """λ from every member of a sample of images (their KLs kept for the climbs)."""
        from dnnjpeg.compress.files import _batched_choice
        from dnnjpeg.select import lambda_for_bpp

        idx = list(range(len(self.jobs)))[:: max(1, len(self.jobs) // SAMPLE)][:SAMPLE]
        got = _batched_choice([self.jobs[i] for i in idx], self.chooser, self.engine, self.batch, measure_only=True)
        rows = []
        for i, (_, m) in zip(idx, got):
            if m is not None:
                self.known[i] = dict(enumerate(map(float, m[1])))
                self.rows += len(m[1]) + 1
                rows.append(m)
        if not rows:
            return self.chooser.lam or 1e-3
        b, kl = np.stack([m[0] for m in rows], 1), np.stack([m[1] for m in rows], 1)
        return lambda_for_bpp(b, kl, np.array([m[2] for m in rows]), target)

    def fit(self, target: float) -> tuple[list[int], list[int], float]:
        """(job indices to write, their members, λ) for ``target`` bits per source pixel.

        Raises:
            ValueError: even every image at its smallest file is over the target (nothing is written).
        """
        self._measure(list(range(len(self.jobs))), self._sample(target), target)
        idx = sorted(self.bits)
        if not idx:
            return [], [], self.chooser.lam or 0.0
        pix = np.array([self.pixels[i] for i in idx])
        floor = float(sum(self.bits[i].min() for i in idx) / pix.sum())
        if floor > target:
            raise ValueError(f"target {target:g} bpp is out of reach: the smallest files these tables make are "
                             f"{floor:.4f} bpp (every image at its coarsest member); nothing was written")  # fmt: skip
        for _ in range(ROUNDS + 1):
            lam, members, complete = self._lambda(idx, target)
            missing = [i for i, ok in zip(idx, complete) if not ok]
            if not missing:
                break
            self._measure(missing, lam)
        self.incomplete = len(missing)
        return idx, [int(k) for k in members], lam
