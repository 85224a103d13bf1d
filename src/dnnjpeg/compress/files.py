"""One file of a compress run: where its output goes, whether an earlier one is kept, its encode
(by its chooser, or batched with other images' candidates through the network)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnnjpeg._fs import (
    UnsafeOutputError,
    describe_error,
    display,
    inside,
    safe_output_path,
)
from dnnjpeg._io import atomic_write_bytes, remove_part
from dnnjpeg.codec import decode_file, load_image

#: the end of the failure of a source whose output exists (a rerun without --resume): the CLI says them once
EXISTS = " exists (use --resume to keep valid outputs, or --overwrite)"


def output_path(src_root: Path, dst_root: Path, path: Path) -> Path:
    """Mirror ``path`` under ``dst_root``. A JPEG keeps its name exactly, whatever its suffix (none,
    ``.jpe``, ``.JPEG``): manifests and label files that list paths still hold in DST. Another format
    (PNG, BMP…) is now a JPEG and takes the suffix ``.jpg`` (its content decides, not its name)."""
    from dnnjpeg.codec.header import read_head

    rel = path.relative_to(src_root)
    if rel.suffix.lower() in (".jpg", ".jpeg"):
        return dst_root / rel
    try:
        jpeg = read_head(path, 2) == b"\xff\xd8"
    except OSError:  # unreadable: it fails when it is read, under its mirrored name
        jpeg = True
    return dst_root / (rel if jpeg else rel.with_suffix(".jpg"))


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
        return src, "failed", before, 0, f"{display(out)}{EXISTS}"
    return None


@dataclass(frozen=True)
class FileRules:
    """What every file of a run obeys besides its chooser.

    Attributes:
        resize: :attr:`CompressSettings.resize` (None: stored at its own size).
        allow_larger: write the re-encode even when it is not smaller than a JPEG source (by
            default the source's own bytes are kept then, and counted as kept).
        strip_metadata: drop the source's EXIF, XMP, ICC and comment segments (by default they are
            copied, so that an EXIF-rotated photo displays as before: pixels are stored unrotated).
    """

    resize: int | str | None = None
    allow_larger: bool = False
    strip_metadata: bool = False


def finish(src: str, data: bytes, before: int, rules: FileRules, keep_source: bool = False) -> tuple[bytes, str]:
    """The bytes to write for ``src`` and their status: the re-encode ``data`` with the source's
    metadata (a JPEG source), or the source's own bytes ("kept") when the re-encode is not smaller.

    A kept source is an output like any other: every promise of the rules holds for it, or it is not
    kept. With ``strip_metadata`` it is kept without its metadata segments (a lossless edit of its
    header; compared with the re-encode, which has none either); with ``resize`` it is never kept (it
    is not at the size asked for): the re-encode is written, status "larger" when it is not smaller.

    Args:
        src: the source file (read again only when it is a JPEG: a few KiB of header, or all of it
            when it is kept). ``before``: its size in bytes.
        keep_source: the chooser found no member good enough (--keep-prediction): a JPEG source is
            kept as it is whatever the sizes.
    Returns:
        (bytes to write, "written", "kept" or "larger").
    """
    from dnnjpeg._fs import read_regular
    from dnnjpeg.codec.header import read_head
    from dnnjpeg.codec.metadata import metadata_segments, with_metadata, without_metadata

    if rules.strip_metadata and rules.allow_larger and not keep_source:
        return data, "written"
    if read_head(src, 2) != b"\xff\xd8":  # a PNG, BMP…: nothing to copy, and its bytes are no JPEG to keep
        return data, "written"
    source = read_regular(src)
    if rules.strip_metadata:
        source = without_metadata(source)
    if keep_source and rules.resize is None:
        return source, "kept"
    if not rules.strip_metadata:
        data = with_metadata(data, metadata_segments(source))
    if not rules.allow_larger and len(data) >= len(source):
        return (data, "larger") if rules.resize is not None else (source, "kept")
    return data, "written"


def as_written(src: str, bits: np.ndarray, kl: np.ndarray | None, rules: FileRules):
    """Every member's (bits (K,), KL (K,)) as :func:`finish` would write it for ``src``, for a bit budget.

    A JPEG source's metadata segments are added to each re-encode (unless stripped: the same for every
    member, so the choice at a λ is unchanged); and where a re-encode would not be smaller than the
    source, the file written is the source's own bytes (never larger, no --resize): those bits, at KL 0
    (the stored image itself). So the bits a λ is fitted on are the bits of the files written.
    ``kl`` may be None (the climb measures KL lazily): bits only.
    """
    from dnnjpeg._fs import read_regular
    from dnnjpeg.codec.header import read_head
    from dnnjpeg.codec.metadata import metadata_segments, without_metadata

    bits = np.asarray(bits, np.int64)
    if read_head(src, 2) != b"\xff\xd8":  # a PNG, BMP…: nothing added, nothing to keep
        return bits, kl
    source = read_regular(src)
    if rules.strip_metadata:
        source = without_metadata(source)
    else:
        bits = bits + 8 * sum(len(seg) for seg in metadata_segments(source))
    if rules.allow_larger or rules.resize is not None:
        return bits, kl
    kept = bits >= 8 * len(source)
    bits = np.where(kept, 8 * len(source), bits)
    return bits, (None if kl is None else np.where(kept, 0.0, kl))


def _pixels(src: str, resize: int | str | None = None) -> np.ndarray:
    # gray stays gray (H, W); everything else RGB (H, W, 3); strict decode (errors name the file)
    return _resized(load_image(src), resize)


def _resized(px: np.ndarray, resize: int | str | None) -> np.ndarray:
    """The stored pixels as ``--resize`` has them encoded (unchanged without it)."""
    if resize is None:
        return px
    if isinstance(resize, str):  # "short:N": the shorter side brought down to N, the whole image kept
        from dnnjpeg.codec import resize_shorter

        return resize_shorter(px, int(resize.removeprefix("short:")))
    return at_model_size(px, resize)


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
    the file fails, else (None, ``work(source, output path, bytes before, pixels, source pixels)``). Every
    per-file problem is reported and the batch goes on; a full or read-only destination stops it."""
    src, dst, resume, overwrite, roots, rules = job
    try:
        out = safe_output_path(roots[1], Path(dst), roots[0])
        kept = _existing(src, out, resume, overwrite)
        if kept is not None:
            remove_part(out)  # this output's own leftover of a killed run (its exact name)
            return kept, None
        before = os.path.getsize(src)
        px = load_image(src)
        # a bit budget counts the stored image's pixels, whatever --resize made of it: a smaller
        # output is charged per pixel of its source
        return None, work(src, out, before, _resized(px, rules.resize), int(px.shape[0] * px.shape[1]))
    except Exception as e:
        if _fatal(e):
            raise
        return (src, "failed", 0, 0, _error(e)), None


def _write(job, make: Callable[[np.ndarray], bytes], chosen=()) -> tuple[str, str, int, int, str | None]:
    """(source, status, bytes before, bytes after, error) for one file encoded by ``make(pixels)``
    (``job``: see :func:`_unless_kept`; status "written", "kept" (the source's bytes), "skipped" or "failed")."""

    def write(src, out, before, px, _n):
        data = make(px)
        data, status = finish(src, data, before, job[5], keep_source=bool(chosen) and chosen[0] == -1)
        atomic_write_bytes(out, data, fixed_part=True)
        return src, status, before, len(data), None

    done, written = _unless_kept(job, write)
    return done or written


def _one(job) -> tuple[tuple[str, str, int, int, str | None], int | None]:
    """One file encoded by its chooser: (outcome, chosen member or None). Top level, so that a
    process pool can run it with a picklable chooser."""
    job, chooser, member = job
    chosen = []

    def make(px: np.ndarray) -> bytes:
        if member is not None:  # fixed by a bit budget's λ, found after measuring every image
            chosen.append(member)
            return chooser.encode_member(px, member)
        data, k = chooser.encode(px)
        chosen.append(k)
        return data

    res = _write(job, make, chosen)
    return res, (chosen[0] if res[1] in ("written", "larger") and chosen else None)


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
    (None, (source, output path, bytes before, :class:`~dnnjpeg.pipeline.Candidates`, source pixels))."""
    from dnnjpeg.pipeline import candidates

    points, pre = shared
    return _unless_kept(job, lambda src, out, before, px, n: (src, str(out), before, candidates(px, points, pre), n))


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
        rules = jobs[0][5] if jobs else FileRules()
        yield from _decide(score_stream(items, chooser.model, batch_size), chooser, measure_only, rules)


def _decide(scored, chooser, measure_only: bool, rules: FileRules):
    from dnnjpeg.evaluate.trial import outcome
    from dnnjpeg.select import choose, keep_choice

    points = chooser.family.points
    for done, logits, p in scored:
        if done is not None:
            yield done, None
            continue
        src, out, before, c, n = p
        if not np.isfinite(logits).all():  # blind choices otherwise: this file fails, the rest go on
            yield (src, "failed", 0, 0, f"{chooser.model.name} gave values that are not finite (NaN or inf)"), None
            continue
        _, kl = outcome(np.repeat(logits[:1], len(points), 0), logits[1:])
        if measure_only:
            yield None, (*as_written(src, c.bits, kl, rules), n)
            continue
        if getattr(chooser, "keep", None) is not None:
            from dnnjpeg.models.committee import top1_kept

            same = top1_kept(chooser.model, logits[0], logits[1:])[:, None]
            k = int(keep_choice(c.bits[:, None], kl[:, None], same, chooser.keep)[0])
        else:
            k = int(choose(c.bits[:, None], kl[:, None], chooser.lam)[0])
        yield write_chosen(src, out, before, c.datas[k if k >= 0 else int(kl.argmin())], k, rules)


def write_chosen(src: str, out: str, before: int, data: bytes, k: int, rules: FileRules):
    """Write the member ``k`` a batched choice picked (−1: none kept the prediction; ``data`` is then
    the fallback) through :func:`finish`: (outcome, member or None). Every per-file problem is
    reported and the batch goes on; a full or read-only destination stops it."""
    try:
        data, status = finish(src, data, before, rules, keep_source=k < 0)
        atomic_write_bytes(Path(out), data, fixed_part=True)
        return (src, status, before, len(data), None), (k if status in ("written", "larger") else None)
    except Exception as e:
        if _fatal(e):
            raise
        return (src, "failed", 0, 0, _error(e)), None


def _batchable(chooser, search: str = "all") -> bool:
    """A network choice with this ``search`` (every member, or the climb), without per-image SDQ
    gradients (those need the network before encoding): its candidates can be made away from the
    network, many images per network pass."""
    from dnnjpeg.choosers import NetworkChoice

    return (
        isinstance(chooser, NetworkChoice)
        and chooser.search == search
        and not any(p.sdq and p.sdq[0] == "gradient" for p in chooser.family.points)
    )


def _measure(job) -> tuple[tuple[str, str, int, int, str | None] | None, tuple[np.ndarray, np.ndarray, int] | None]:
    """Pass 1 of a size target: (outcome when the file is kept or fails, else None; (bits (K,), kl (K,), pixels))."""
    job, chooser, _ = job

    def work(src, out, before, px, n):
        bits, kl = chooser.measure(px)
        return *as_written(src, bits, kl, job[5]), n

    return _unless_kept(job, work)


@dataclass(frozen=True)
class _Members:
    """The picklable half of a family chooser: member k's file (a bit budget's second pass)."""

    family: object

    def encode_member(self, pixels: np.ndarray, k: int) -> bytes:
        return self.family.points[k].encode(pixels)
