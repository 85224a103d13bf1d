"""The network's local search (``--choose climb``) over many images at once.

One image's climb measures 3–5 members in 2–3 rounds; run image by image, each round is a forward pass
of one to three rows and the JPEG work waits for it. Here a window of images climbs together: every
round decodes the members each search asks for (threads) and classifies all of them in full batches
(:func:`dnnjpeg.pipeline.score_stream`); each search then moves on by
:func:`~dnnjpeg.evaluate.selection.climb_steps`, the very steps of the image-by-image climb, so the
files are the same, byte for byte.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dnnjpeg.compress.files import _unless_kept, write_chosen

#: images climbing together (their candidates' files are held in memory meanwhile)
WINDOW = 64


class _Search:
    """One image's climb: its files, the model inputs asked for, and where the search stands."""

    def __init__(self, prepared, lam: float, kappa) -> None:
        from dnnjpeg.evaluate.selection import choose, climb_steps

        self.src, self.out, self.before, self.datas, self.bits, self.pristine = prepared
        if kappa is not None:  # the choice by rate is where the search starts, as select_encode does
            start = int(choose(self.bits[:, None], np.asarray(kappa)[:, None], lam)[0])
        else:
            start = int(np.argsort(self.bits, kind="stable")[len(self.bits) // 2])
        self.p_logits, self.chosen = None, None
        self.steps = climb_steps(self.bits, lam, start)
        self.want = next(self.steps)

    def inputs(self, pre) -> np.ndarray:
        from dnnjpeg.codec import decode

        rows = [pre.geometry(decode(self.datas[k])) for k in self.want]
        return np.stack(([self.pristine] if self.p_logits is None else []) + rows)

    def advance(self, logits: np.ndarray) -> None:
        from dnnjpeg.evaluate.trial import outcome

        if self.p_logits is None:
            self.p_logits, logits = logits[:1], logits[1:]
        _, kl = outcome(np.repeat(self.p_logits, len(logits), 0), logits)
        try:
            self.want = self.steps.send(kl)
        except StopIteration as done:
            self.chosen, self.want = done.value[0], None


def _prepare(job, points, pre):
    """Worker half: (outcome, None) for a file kept or failed, else (None, (source, output, bytes before,
    every member's file, their bits, the pristine model input))."""

    def work(src, out, before, px, _n):
        datas = [p.encode(px) for p in points]
        rgb3 = np.repeat(px[..., None], 3, axis=2) if px.ndim == 2 else px
        return src, str(out), before, datas, np.array([8 * len(d) for d in datas], np.int64), pre.geometry(rgb3)

    return _unless_kept(job, work)


def batched_climb(jobs, chooser, engine, batch_size: int):
    """``--choose climb`` for many images, windows of :data:`WINDOW` at a time. Yields per job, in
    order, (outcome, member or None) as :func:`~dnnjpeg.compress.files._batched_choice` does."""
    from dnnjpeg.pipeline import bounded_map

    points, pre = chooser.family.points, chooser.model.preprocess
    # the rounds of a window decode, then classify: the decoding has every core to itself
    threads = max(1, min(8, engine.workers))
    rules = jobs[0][5] if jobs else None
    with ThreadPoolExecutor(threads) as pool:
        prepared = bounded_map(pool, lambda j: _prepare(j, points, pre), jobs, 4 * threads + 2)
        window: list = []
        for done, p in prepared:
            window.append(done if p is None else _Search(p, chooser.lam, chooser.family.kappa))
            if len(window) == WINDOW:
                yield from _climb_window(window, chooser.model, pre, pool, batch_size, rules)
                window = []
        yield from _climb_window(window, chooser.model, pre, pool, batch_size, rules)


def _climb_window(window: list, model, pre, pool, batch_size: int, rules):
    """Every search of a window to its end, a round at a time; then each image's outcome in order."""
    from dnnjpeg.pipeline import score_stream

    while True:
        active = [s for s in window if isinstance(s, _Search) and s.want is not None]
        if not active:
            break
        inputs = list(pool.map(lambda s: s.inputs(pre), active))
        for _, logits, s in score_stream(((i, x, s) for i, (x, s) in enumerate(zip(inputs, active))), model,
                                         batch_size):  # fmt: skip
            s.advance(logits)
    for s in window:
        yield (
            write_chosen(s.src, s.out, s.before, s.datas[s.chosen], s.chosen, rules)
            if isinstance(s, _Search)
            else (s, None)
        )
