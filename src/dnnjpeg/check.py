"""``check``: what a compressed tree still holds for a classifier, file by file against its source.

Each output is paired with the source it was made from (the mirrored path compress writes), both are
read as stored (no EXIF rotation: what a training pipeline reads) and classified, and the pairs give:
how often the top-1 prediction is kept (agreement), the KL divergence of the output's class
distribution from the source's, top-1 against labels where the source tree has them, and bytes.
Intervals are 95%: Wilson's for proportions (:func:`~dnnjpeg.evaluate.report.wilson_interval`), a
percentile bootstrap over files for means and for the paired change in top-1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dnnjpeg._fs import display, inside, not_a_folder, read_regular
from dnnjpeg.codec import load_image
from dnnjpeg.compress.files import output_path
from dnnjpeg.data import discover
from dnnjpeg.evaluate.report import wilson_interval as wilson
from dnnjpeg.evaluate.trial import outcome
from dnnjpeg.pipeline import bounded_map, score_stream

__all__ = ["CheckResult", "check_tree", "wilson"]

#: how many of the files that changed most are listed
WORST = 10


def _boot_ci(x: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean of ``x`` (N,); a single value when N = 1."""
    if len(x) == 0:
        return (math.nan, math.nan)
    if len(x) == 1 or n_boot == 0:
        return (float(x.mean()), float(x.mean()))
    idx = np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))
    means = x[idx].mean(1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


@dataclass
class CheckResult:
    """A compressed tree against its source (percentages in 0..100, KL in nats, sizes in bytes).

    Attributes:
        files: pairs measured. ``bytes_source`` / ``bytes_output``: their totals; ``ratio`` source/output.
        agreement: % of pairs whose output keeps the source's top-1 prediction; ``agreement_ci`` Wilson.
        mean_kl: mean KL(source ‖ output) of the class distributions; ``mean_kl_ci`` bootstrap.
        top1_source, top1_output: % correct against labels (None when the tree has none), with
            ``top1_change_ci``: a paired bootstrap interval of output − source, in points.
        kept: outputs that are the source's own bytes (compress keeps a source it cannot shrink).
        worst: the pairs with the largest KL (source, output, kl, agree, bytes each).
        missing: sources without an output; failures: (path, why) for pairs that could not be read.
    """

    model: str
    files: int
    bytes_source: int
    bytes_output: int
    ratio: float | None
    agreement: float
    agreement_ci: tuple[float, float]
    mean_kl: float
    mean_kl_ci: tuple[float, float]
    top1_source: float | None = None
    top1_output: float | None = None
    top1_change_ci: tuple[float, float] | None = None
    kept: int = 0
    sampled_from: int = 0
    worst: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready: the keys of the attributes above (a value not measured is null, never NaN)."""
        return _json_safe(asdict(self))

    @property
    def complete(self) -> bool:
        """Every source drawn has an output that was measured (no source without one, none unreadable)."""
        return not self.missing and not self.failures

    def verdict(self) -> str:
        """One line a person reads first."""
        short = "" if self.complete else f" ({len(self.missing):,} without output, {len(self.failures):,} unreadable)"
        if self.files == 0:
            return "check: no pairs could be measured" + short
        lo, hi = self.agreement_ci
        asked = self.files + len(self.failures) + len(self.missing)
        on = f"{self.files:,} files" if self.complete else f"{self.files:,} of {asked:,} files"
        text = (
            f"check on {on} ({self.model}): top-1 prediction kept on {self.agreement:.1f}% "
            f"[{lo:.1f}, {hi:.1f}], mean KL {self.mean_kl:.4f} nats"
        )
        if self.ratio:
            text += f", {self.ratio:.2f}x smaller"
        if self.top1_source is not None:
            a, b = self.top1_change_ci
            text += (
                f"; top-1 vs labels {self.top1_source:.1f}% → {self.top1_output:.1f}% "
                f"(change {self.top1_output - self.top1_source:+.1f} points [{a:+.1f}, {b:+.1f}])"
            )
        else:
            text += "; no labels (agreement only)"
        return text + short


def _json_safe(x):
    """``x`` with every non-finite float as None (JSON has no NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def pairs(src: Path, dst: Path, model) -> tuple[list[tuple[Path, Path, int | None]], list[str], bool]:
    """(source, output, label in ``model``'s class order or None) for every source image whose output
    exists, the sources without one, and whether the labels apply: a model with its own classes and
    no class-index file is measured by agreement and KL only.

    Raises:
        ValueError: a class of the tree that the model's class-index file does not name.
    """
    ds = discover(src).for_model(model)
    found, missing = [], []
    for r in ds.records:
        if inside(r.path, dst):  # DST inside SRC: its outputs are no sources
            continue
        out = output_path(src, dst, r.path)
        (found if os.path.isfile(out) and not os.path.islink(out) else missing).append((r.path, out, r.label))
    labeled = ds.labeled and (bool(model.info.get("classes")) or model.labels == "imagenet")
    return found, [str(m[0]) for m in missing], labeled


def check_tree(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    model,
    *,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    n_boot: int = 1000,
    threads: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> CheckResult:
    """Measure what the files under ``dst`` (written by compress from ``src``) still hold.

    Args:
        model: a :class:`~dnnjpeg.models.Model` (its own preprocessing and class order).
        limit: measure this many pairs drawn at random (``seed``) instead of all.
        progress: called with (pairs done, pairs to do).
    Raises:
        FileNotFoundError: ``src`` or ``dst`` is not a folder.
        ValueError: the source tree's classes are not the model's (a class-index file is needed).
    """
    s, d = Path(src).resolve(), Path(dst).resolve()
    for p, what in ((s, "SRC"), (d, "DST")):
        if not p.is_dir():
            raise FileNotFoundError(f"{what} {display(p)}: {not_a_folder(p)}")
    if s == d:
        raise ValueError(f"DST {display(dst)} is SRC itself: give the tree compress wrote from it")
    found, missing, labeled = pairs(s, d, model)
    total = len(found)
    if limit is not None and limit < total:
        pick = np.sort(np.random.default_rng(seed).choice(total, limit, replace=False))
        found = [found[i] for i in pick]
    pre = model.preprocess

    def read(pair):
        a, b, _ = pair
        try:
            return None, np.stack([pre.geometry(load_image(str(a), "RGB")), pre.geometry(load_image(str(b), "RGB"))])
        except Exception as e:  # noqa: BLE001 — a pair that cannot be read is named, the rest go on
            return f"{type(e).__name__}: {e}", None

    from concurrent.futures import ThreadPoolExecutor

    rows, failures = [], []
    with ThreadPoolExecutor(max(1, threads)) as pool:
        items = ((pair, x, why) for pair, (why, x) in zip(found, bounded_map(pool, read, found, 4 * threads + 2)))
        for i, (pair, logits, why) in enumerate(score_stream(items, model, batch_size), 1):
            if logits is None:
                failures.append((str(pair[1]), why or "not read"))
            elif not np.isfinite(logits).all():
                failures.append((str(pair[1]), f"{model.name} gave values that are not finite (NaN or inf)"))
            else:
                rows.append((pair, logits))
            if progress:
                progress(i, len(found))
    return _summarize(model.name, rows, failures, missing, labeled, total, n_boot, seed)


def _summarize(name, rows, failures, missing, labeled, total, n_boot, seed) -> CheckResult:
    """The numbers of :class:`CheckResult` from each pair's (source, output, label) and (2, C) logits."""
    n = len(rows)
    if n:
        lg = np.stack([lg for _, lg in rows])  # (n, 2, C)
        top5, kl = outcome(lg[:, 0], lg[:, 1])
        p_src, p_out = lg[:, 0].argmax(1), top5[:, 0]
    else:
        kl, p_src, p_out = np.zeros(0), np.zeros(0, int), np.zeros(0, int)
    agree = p_src == p_out
    b_src = np.array([os.path.getsize(a) for (a, _, _), _ in rows], np.int64)
    b_out = np.array([os.path.getsize(b) for (_, b, _), _ in rows], np.int64)
    kept = sum(_same_bytes(a, b) for (a, b, _), _ in rows)
    res = CheckResult(
        model=name,
        files=n,
        bytes_source=int(b_src.sum()),
        bytes_output=int(b_out.sum()),
        ratio=float(b_src.sum() / b_out.sum()) if b_out.sum() else None,
        agreement=float(100 * agree.mean()) if n else math.nan,
        agreement_ci=wilson(int(agree.sum()), n),
        mean_kl=float(kl.mean()) if n else math.nan,
        mean_kl_ci=_boot_ci(kl, n_boot, seed),
        kept=kept,
        sampled_from=total,
        missing=missing,
        failures=failures,
    )
    if labeled and n:
        lab = np.array([pair[2] for pair, _ in rows])
        c0, c1 = (p_src == lab).astype(float), (p_out == lab).astype(float)
        res.top1_source, res.top1_output = float(100 * c0.mean()), float(100 * c1.mean())
        res.top1_change_ci = tuple(100 * v for v in _boot_ci(c1 - c0, n_boot, seed + 1))
    order = np.argsort(-kl, kind="stable")[:WORST]
    res.worst = [
        {"source": str(rows[i][0][0]), "output": str(rows[i][0][1]), "kl": float(kl[i]), "agree": bool(agree[i]),
         "bytes_source": int(b_src[i]), "bytes_output": int(b_out[i])}
        for i in order
    ]  # fmt: skip
    return res


def _same_bytes(a: Path, b: Path) -> bool:
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    try:
        return read_regular(a) == read_regular(b)
    except OSError:
        return False
