"""Re-encode a whole image tree with given tables as standard baseline JPEG files.

SRC is only ever read: the destination may not overlap it, and no output may
reach into it (a symbolic link in DST is never followed: see :mod:`dnnjpeg._fs`).
Each output is written atomically (temporary file, then rename), so an interrupted
run leaves complete files or none; ``resume`` skips outputs that already decode,
and existing outputs are never replaced unless ``overwrite`` is asked for.  The
settings of a run are recorded in ``DST/.dnnjpeg-compress.json``; a later run into
the same DST with other settings is refused unless it overwrites.
Every source file is decoded strictly: a JPEG with corrupt scan data (any libjpeg
warning) is a per-file failure, never re-encoded as garbage.
Pixels are taken as stored (EXIF orientation is not applied; metadata is not
copied); grayscale images stay grayscale.

Each image's tables come from one chooser (:mod:`dnnjpeg.choosers`): fixed tables, the
per-image choice by rate alone (in a process pool), or by a network (in this process,
one image's K candidates at a time).
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnnjpeg._fs import (
    UnsafeOutputError,
    describe_error,
    display,
    inside,
    read_json,
    safe_output_path,
)
from dnnjpeg._io import atomic_write_bytes, atomic_write_text, remove_part
from dnnjpeg.choosers import MAX_SCALE, Chooser, FixedTables
from dnnjpeg.codec import QuantTables, decode_file, load_image
from dnnjpeg.data import find_images
from dnnjpeg.engine import Engine, LocalEngine

__all__ = ["CompressReport", "compress_tree", "check_run", "output_path", "SETTINGS_FILE", "MAX_SCALE"]

#: The record of a run's settings, beside its outputs.
SETTINGS_FILE = ".dnnjpeg-compress.json"


@dataclass
class CompressReport:
    """Totals of a run; ``failures`` holds (source path, message) per failed file."""

    written: int = 0
    skipped: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: per-image choice: how many images took each family member (index → count)
    members: dict[int, int] = field(default_factory=dict)
    #: per-image choice: the λ used (nats per KiB; found from ``target_bpp`` when given)
    lam: float | None = None
    #: with ``target_bpp``: bits per pixel of the files written (outputs kept by resume excluded)
    bpp: float | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def add(self, outcome: tuple[str, str, int, int, str | None], member: int | None) -> None:
        """Count one file's (source, status, bytes before, bytes after, error) and chosen member."""
        src_path, status, before, after, msg = outcome
        if status == "failed":
            self.failures.append((src_path, msg or "failed"))
        else:
            self.written += status == "written"
            self.skipped += status == "skipped"
            self.bytes_before += before
            self.bytes_after += after
        if member is not None:
            self.members[member] = self.members.get(member, 0) + 1


def output_path(src_root: Path, dst_root: Path, path: Path) -> Path:
    """Mirror ``path`` under ``dst_root``; non-JPEG suffixes become ``.jpg``."""
    rel = path.relative_to(src_root)
    if rel.suffix.lower() not in (".jpg", ".jpeg"):
        rel = rel.with_suffix(".jpg")
    return dst_root / rel


def _overlap(a: Path, b: Path) -> bool:
    return inside(a, b) or inside(b, a)


def _existing(src: str, out: Path, resume: bool, overwrite: bool) -> tuple[str, str, int, int, str | None] | None:
    """The outcome when ``out`` already exists and is kept (or refused), else None (encode)."""
    try:
        if not stat.S_ISREG(os.lstat(out).st_mode):
            return None  # safe_output_path has refused links and the rest already
    except FileNotFoundError:
        return None
    before = os.path.getsize(src)
    if resume:
        if os.path.samefile(src, out):
            # a hard link to the source is no earlier output: encode it (the rename replaces only
            # DST's name for it; the source keeps its bytes)
            return None
        try:
            decode_file(out, "L")  # a complete earlier output decodes
            return src, "skipped", before, out.stat().st_size, None
        except Exception:
            return None  # broken or partial: encode again
    if not overwrite:
        return src, "failed", before, 0, f"{display(out)} exists (use --resume to keep valid outputs, or --overwrite)"
    return None


def _pixels(src: str, resize: int | None = None) -> np.ndarray:
    # gray stays gray (H, W); everything else RGB (H, W, 3); strict decode (errors name the file)
    px = load_image(src)
    return px if resize is None else at_model_size(px, resize)


def at_model_size(px: np.ndarray, size: int) -> np.ndarray:
    """An image as a classifier's preprocessing would crop it: the shorter side resized to
    round(size / 0.875) (bilinear, antialiased), then the centre ``size``×``size`` (``--resize``).

    Args:
        px: uint8 (H, W) gray or (H, W, 3) RGB.
        size: output side in pixels (a multiple of 16: the 4:2:0 block grid then has no padding).
    Returns:
        uint8 (size, size) or (size, size, 3), gray kept gray.
    """
    from dnnjpeg.models import Preprocess

    pre = Preprocess(size=size, resize=round(size / 0.875))
    if px.ndim == 2:  # the three equal channels of the RGB view resize alike
        return np.ascontiguousarray(pre.geometry(np.repeat(px[..., None], 3, 2))[..., 0])
    return pre.geometry(px)


_error = describe_error
#: Errors of the destination, not of one file: the batch stops with one clear error.
_FATAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def _fatal(e: Exception) -> bool:
    return isinstance(e, OSError) and not isinstance(e, UnsafeOutputError) and e.errno in _FATAL_ERRNOS


def _unless_kept(job, work: Callable) -> tuple[tuple | None, object]:
    """One file of a run: (outcome, None) when its output is kept or refused (:func:`_existing`) or
    the file fails, else (None, ``work(source, output path, bytes before, pixels)``). Every
    per-file problem is reported and the batch goes on; a full or read-only destination stops it."""
    src, dst, resume, overwrite, roots, resize = job
    try:
        out = safe_output_path(roots[1], Path(dst), roots[0])
        kept = _existing(src, out, resume, overwrite)
        if kept is not None:
            remove_part(out)  # this output's own leftover of a killed run (its exact name)
            return kept, None
        before = os.path.getsize(src)
        return None, work(src, out, before, _pixels(src, resize))
    except Exception as e:
        if _fatal(e):
            raise
        return (src, "failed", 0, 0, _error(e)), None


def _write(
    src: str,
    dst: str,
    resume: bool,
    overwrite: bool,
    make: Callable[[np.ndarray], bytes],
    roots: tuple[Path, Path],
    resize: int | None = None,
) -> tuple[str, str, int, int, str | None]:
    """(source, status, bytes before, bytes after, error) for one file encoded by ``make(pixels)``."""

    def write(src, out, before, px):
        data = make(px)
        atomic_write_bytes(out, data, fixed_part=True)
        return src, "written", before, len(data), None

    done, written = _unless_kept((src, dst, resume, overwrite, roots, resize), write)
    return done or written


def _one(job) -> tuple[tuple[str, str, int, int, str | None], int | None]:
    """One file encoded by its chooser: (outcome, chosen member or None). Top level, so that a
    process pool can run it with a picklable chooser."""
    (src, dst, resume, overwrite, roots, resize), chooser, member = job
    chosen = []

    def make(px: np.ndarray) -> bytes:
        if member is not None:  # fixed by a bit budget's λ, found after measuring every image
            chosen.append(member)
            return chooser.encode_member(px, member)
        data, k = chooser.encode(px)
        chosen.append(k)
        return data

    res = _write(src, dst, resume, overwrite, make, roots, resize)
    return res, (chosen[0] if res[1] == "written" and chosen else None)


def _one_shared(item, chooser) -> tuple[tuple[str, str, int, int, str | None], int | None]:
    """:func:`_one` as an engine runs it: ``item`` = (job, member, fresh), the chooser shared.

    ``fresh``: the output did not exist when the driver handed the job out (Ray engine). Ray runs
    the task of a killed worker again; an output present then was written by the killed attempt
    (whole: every write is atomic) and is this run's, not an earlier run's."""
    job, member, fresh = item
    if fresh:
        src, dst = job[0], job[1]
        try:
            if stat.S_ISREG(os.lstat(dst).st_mode):
                return (src, "written", os.path.getsize(src), os.path.getsize(dst), None), None
        except OSError:
            pass
    return _one((job, chooser, member))


def _measure_shared(item, chooser):
    return _measure((item[0], chooser, None))


def _prepare(job, shared) -> tuple[tuple | None, tuple | None]:
    """Worker half of the batched network choice: (outcome, None) for a file kept or failed, else
    (None, (source, output path, bytes before, :class:`~dnnjpeg.pipeline.Candidates`))."""
    from dnnjpeg.pipeline import candidates

    points, pre = shared
    return _unless_kept(job, lambda src, out, before, px: (src, str(out), before, candidates(px, points, pre)))


def _batched_choice(jobs, chooser, engine, batch_size: int, measure_only: bool = False):
    """The network choice with many images' candidates per forward pass (:mod:`dnnjpeg.pipeline`):
    JPEG work in threads, the network here. Yields per job, in order, (outcome, member) — or
    with ``measure_only`` (outcome or None, (bits, kl, pixels) or None)."""
    from concurrent.futures import ThreadPoolExecutor

    from dnnjpeg.pipeline import bounded_map, score_stream

    points = chooser.family.points
    shared = (points, chooser.model.preprocess)
    # JPEG work in threads (Pillow and libjpeg release the GIL): measured faster here than a process
    # pool, which must copy each image's K + 1 model inputs back (BENCHMARKS.md, "Scale")
    threads = max(1, min(8, engine.workers // 2))
    with ThreadPoolExecutor(threads) as pool:
        prepared = bounded_map(pool, lambda j: _prepare(j, shared), jobs, 4 * threads + 2)
        items = ((done, None if p is None else p[3].inputs, p) for done, p in prepared)
        yield from _decide(score_stream(items, chooser.model, batch_size), chooser, measure_only)


def _decide(scored, chooser, measure_only: bool):
    from dnnjpeg.evaluate.trial import outcome
    from dnnjpeg.select import choose

    points = chooser.family.points
    for done, logits, p in scored:
        if done is not None:
            yield done, None
            continue
        src, out, before, c = p
        _, kl = outcome(np.repeat(logits[:1], len(points), 0), logits[1:])
        if measure_only:
            yield None, (c.bits, kl, c.pixels)
            continue
        k = int(choose(c.bits[:, None], kl[:, None], chooser.lam)[0])
        try:
            atomic_write_bytes(Path(out), c.datas[k], fixed_part=True)
            yield (src, "written", before, len(c.datas[k]), None), k
        except Exception as e:  # every per-file problem is reported; the batch goes on
            if _fatal(e):
                raise
            yield (src, "failed", 0, 0, _error(e)), None


def _batchable(chooser) -> bool:
    """A network choice that measures every member, without per-image SDQ gradients (those need
    the network before encoding): its candidates can be made away from the network."""
    from dnnjpeg.choosers import NetworkChoice

    return (
        isinstance(chooser, NetworkChoice)
        and chooser.search == "all"
        and not any(p.sdq and p.sdq[0] == "gradient" for p in chooser.family.points)
    )


def _measure(job) -> tuple[tuple[str, str, int, int, str | None] | None, tuple[np.ndarray, np.ndarray, int] | None]:
    """Pass 1 of a size target: (outcome when the file is kept or fails, else None; (bits (K,), kl (K,), pixels))."""
    job, chooser, _ = job
    return _unless_kept(job, lambda src, out, before, px: (*chooser.measure(px), int(px.shape[0] * px.shape[1])))


def _check_settings(d: Path, settings: dict, resume: bool, overwrite: bool) -> bool:
    """Refuse to add to a DST made with other settings (unless overwriting); record these.
    Returns whether the record was written now."""
    rec = d / SETTINGS_FILE
    body = json.dumps(settings, sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    try:
        st = os.lstat(rec)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{display(rec)}: expected the settings record of an earlier run, found something else")
        try:
            old = read_json(rec).get("digest")
        except (OSError, ValueError, AttributeError):
            old = None
        if old != digest and not overwrite:
            raise ValueError(
                f"{display(d)} holds outputs of a run with other settings (recorded in {SETTINGS_FILE})"
                + (", which --resume would keep" if resume else "")
                + ": use the same settings, --overwrite to replace those outputs, or another destination"
            )
        if old == digest:
            return False
    atomic_write_text(rec, json.dumps({"digest": digest, "settings": settings}, indent=1))
    return True


def check_run(scale: float, resume: bool, overwrite: bool) -> None:
    """Refuse a scale outside (0, MAX_SCALE] and ``resume`` with ``overwrite`` (ValueError), before any work."""
    if resume and overwrite:
        raise ValueError("--resume keeps valid outputs and --overwrite replaces them: give one, not both")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise ValueError(f"--scale must be in (0, {MAX_SCALE:g}] (above that every entry is 255), got {scale}")


def compress_tree(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    chooser: Chooser | QuantTables,
    *,
    scale: float = 1.0,
    workers: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    resize: int | None = None,
    engine: Engine | None = None,
    batch_size: int = 32,
) -> CompressReport:
    """Encode every image under ``src`` (recursively) into the mirrored tree ``dst``.

    Args:
        chooser: how each image's tables are decided (:mod:`dnnjpeg.choosers`: ``FixedTables``,
            ``RateChoice``, ``NetworkChoice``; :func:`~dnnjpeg.choosers.make_chooser` builds one);
            plain :class:`QuantTables` mean ``FixedTables(tables)`` at 4:2:0.
        scale: multiply every table entry first (clamped to 1..255).
        workers: processes (default all cores); a chooser that holds a network runs here.
        resume: keep outputs that already decode; ``overwrite``: replace them (not both).
        progress: called with 1 per file done.
        resize: store every image at a classifier's input size first (:func:`at_model_size`:
            shorter side to size/0.875, centre crop size×size; a multiple of 16), so that a model
            reading the files' coefficients needs no resizing.
        engine: where the work runs (:mod:`dnnjpeg.engine`); default a local pool of ``workers``.
            A network choice measuring every member runs its network here on batches of
            ``batch_size`` candidates from many images, its JPEG work in the pool; on Ray each
            worker holds its own copy of the network.
    Raises:
        ValueError: ``dst`` overlaps ``src``; a bad scale; ``resume`` with ``overwrite``; DST made with
            other settings (and no ``overwrite``); a bit budget below what the family can reach
            (nothing is written then).
        FileNotFoundError: ``src`` does not exist.
        OSError: the destination is full, over quota or read-only (the batch stops; every
            output already written is whole).
    """
    s, d = Path(src).resolve(), Path(dst).resolve()
    if not s.is_dir():
        raise FileNotFoundError(f"{display(src)}: no such folder")
    if _overlap(s, d):
        raise ValueError(f"destination {display(dst)} overlaps source {display(src)}: dnnjpeg never writes inside SRC")
    if d.exists() and not d.is_dir():
        raise ValueError(f"destination {display(dst)} exists and is not a folder")
    check_run(scale, resume, overwrite)
    if resize is not None and not (isinstance(resize, int) and 16 <= resize <= 4096 and resize % 16 == 0):
        raise ValueError(f"--resize must be a multiple of 16 from 16 to 4096 (whole 4:2:0 blocks), got {resize}")
    if isinstance(chooser, QuantTables):
        chooser = FixedTables(chooser)
    chooser = chooser.scaled(scale)
    files, problems = find_images(s, hidden=True)  # content decides: a JPEG without an extension is one
    d.mkdir(parents=True, exist_ok=True)
    settings = {"chooser": chooser.settings(), "scale": scale} | ({"resize": resize} if resize else {})
    recorded = _check_settings(d, settings, resume, overwrite)
    rep = CompressReport()
    rep.failures.extend((p, f"not read: {why}") for p, why in problems)
    seen: dict[Path, Path] = {}
    jobs = []
    for f in map(Path, files):
        out = output_path(s, d, f)
        if out in seen:
            rep.failures.append((str(f), f"same output {display(out)} as {display(seen[out])}"))
            continue
        seen[out] = f
        jobs.append((str(f), str(out), resume, overwrite, (s, d), resize))
    engine = engine or LocalEngine(workers)
    on_ray = engine.name == "ray"
    # Ray re-runs a killed worker's task: a job whose output did not exist at hand-out may find
    # the killed attempt's (whole) output, which is then this run's (see _one_shared)
    fresh = {j[1]: on_ray and not os.path.lexists(j[1]) for j in jobs}
    batched = _batchable(chooser) and not on_ray
    here = LocalEngine(1)
    eng = here if chooser.in_process and not on_ray and not batched else engine
    start = getattr(chooser, "pool_start", None)

    def consume(results) -> None:
        for res, k in results:
            rep.add(res, k)
            if progress:
                progress(1)

    def run(js, members=None):
        members = members or [None] * len(js)
        items = [(j, k, fresh[j[1]]) for j, k in zip(js, members)]
        return eng.map(_one_shared, items, chooser, start=start, chunk=1 if eng.workers == 1 else 8)

    if chooser.target_bpp is None:
        rep.lam = getattr(chooser, "lam", None)
        consume(_batched_choice(jobs, chooser, engine, batch_size) if batched else run(jobs))
        return rep
    measured, todo = [], []
    results = (_batched_choice(jobs, chooser, engine, batch_size, measure_only=True) if batched
               else eng.map(_measure_shared, [(j,) for j in jobs], chooser, start=start, chunk=8))  # fmt: skip
    for job, (done, m) in zip(jobs, results):
        if done is not None:
            consume([(done, None)])
        else:
            measured.append(m)
            todo.append(job)
    if todo:
        try:
            members, rep.lam, pixels = _fit_budget(measured, chooser.target_bpp)
        except ValueError:
            if recorded and rep.written == 0:
                (d / SETTINGS_FILE).unlink(missing_ok=True)  # this run wrote nothing after all
            raise
        written_before = rep.bytes_after
        if batched:  # the second pass needs no network: every member's file in the pool
            items = [(j, k, False) for j, k in zip(todo, members)]
            sdq = "spawn" if any(p.sdq for p in chooser.family.points) else None
            consume(engine.map(_one_shared, items, _Members(chooser.family), start=sdq, chunk=8))
        else:
            consume(run(todo, members))
        rep.bpp = 8 * (rep.bytes_after - written_before) / pixels
    return rep


@dataclass(frozen=True)
class _Members:
    """The picklable half of a family chooser: member k's file (a bit budget's second pass)."""

    family: object

    def encode_member(self, pixels: np.ndarray, k: int) -> bytes:
        return self.family.points[k].encode(pixels)


def _fit_budget(measured: list, target_bpp: float) -> tuple[list[int], float, float]:
    """From every member's (bits (K,), KL (K,), pixels) on every image: each image's member at the
    λ (nats per KiB) whose choice fits ``target_bpp`` over these images, that λ, and their pixels.

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
    lam = lambda_for_bpp(bits, kl, pix, target_bpp)
    return [int(k) for k in choose(bits, kl, lam)], lam, float(pix.sum())
