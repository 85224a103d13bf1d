"""A compress run over a tree: its settings, the record beside its outputs, and the budget's two passes."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dnnjpeg._fs import COMPRESS_RECORD, display
from dnnjpeg.choosers import MAX_SCALE, Chooser, FixedTables
from dnnjpeg.codec import QuantTables
from dnnjpeg.compress.budget import budget_cause, fit_budget
from dnnjpeg.compress.files import (
    FileRules,
    _batchable,
    _batched_choice,
    _fatal,
    _measure_shared,
    _Members,
    _one_shared,
    _overlap,
    output_path,
)  # fmt: skip
from dnnjpeg.compress.owner import DstLock, claim_record, record_lam
from dnnjpeg.data import find_images
from dnnjpeg.engine import Engine, LocalEngine

#: the per-file errors of a file that no decoder reads (see :meth:`_Run._other_after_all`)
_UNDECODABLE = ("CorruptJpegError", "NotAJpegError", "UnsupportedJpegError", "UnidentifiedImageError")
#: why --keep-prediction and --resize do not go together
KEEP_RESIZE = (
    "--keep-prediction keeps each stored image's own answer, and --resize changes the stored image (a resized "
    "file's answer is another image's): give one of the two"
)
#: The record of a run's settings, beside its outputs.
SETTINGS_FILE = COMPRESS_RECORD


@dataclass
class CompressReport:
    """Totals of a run; ``failures`` holds (source path, message) per failed file."""

    written: int = 0
    #: of ``written``: sources kept as their own bytes (a re-encode would not have been smaller)
    kept: int = 0
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
    #: ``--choose climb --target-bpp``: network passes per image (rows, the stored image's included) to
    #: find λ and choose, and the images whose climb was cut short (their best measured member taken)
    passes: float | None = None
    incomplete: int = 0
    #: files under SRC that are not images: how many of each kind (suffix), and how many were copied
    other: dict[str, int] = field(default_factory=dict)
    copied: int = 0
    #: of ``other``: files a resumed ``copy_other`` found already copied
    already: int = 0
    #: entries under SRC that are never opened (FIFOs, sockets, devices, links to them): (path, kind)
    not_opened: list[tuple[str, str]] = field(default_factory=list)
    #: the λ of a bit budget came from the record of the run this one resumes
    resumed_lam: bool = False
    #: with ``resize``: re-encodes written although not smaller than their source (a resized file
    #: cannot be the source's own bytes)
    larger: int = 0
    #: with ``target_bpp``: why the choice could not land nearer the target (None: nothing known)
    budget_cause: str | None = None

    def budget_miss(self, target_bpp: float | None, tolerance: float | None = None) -> str | None:
        """One line when the files written miss ``target_bpp`` (see :func:`~dnnjpeg.compress.budget.miss`)."""
        from dnnjpeg.compress.budget import TOLERANCE, miss

        return miss(self, target_bpp, TOLERANCE if tolerance is None else tolerance)

    @property
    def ok(self) -> bool:
        return not self.failures

    def add(self, outcome: tuple[str, str, int, int, str | None], member: int | None) -> None:
        """Count one file's (source, status, bytes before, bytes after, error) and chosen member."""
        src_path, status, before, after, msg = outcome
        if status == "failed":
            self.failures.append((src_path, msg or "failed"))
        else:
            self.written += status in ("written", "kept", "larger")
            self.kept += status == "kept"
            self.larger += status == "larger"
            self.skipped += status == "skipped"
            self.bytes_before += before
            self.bytes_after += after
        if member is not None:
            self.members[member] = self.members.get(member, 0) + 1


def drops(chooser, resize: int | str | None = None) -> str | None:
    """What a mode leaves out of the stored images, in one sentence (None when it keeps every pixel's
    information): SDQ with crop weights flattens what lite0's centre crop never reads, and an
    integer ``resize`` stores that crop only. Training with random crops needs neither."""
    points = getattr(getattr(chooser, "family", None), "points", ())
    crop = getattr(chooser, "weights", None) == "crop" or any(p.sdq and p.sdq[0] == "crop" for p in points)
    parts = []
    if crop:
        parts.append(
            "sdq:crop levels flatten every 8×8 block outside the classifier's centre crop to its mean colour "
            "(they cost bits and the crop never reads them)"
        )
    if isinstance(resize, int):
        parts.append(f"--resize {resize} stores only the classifier's {resize}×{resize} centre crop")
    if not parts:
        return None
    return "; ".join(parts) + ": do not train with random crops or flips of other regions on these files"


def check_run(scale: float, resume: bool, overwrite: bool) -> None:
    """Refuse a scale outside (0, MAX_SCALE] and ``resume`` with ``overwrite`` (ValueError), before any work."""
    if resume and overwrite:
        raise ValueError("--resume keeps valid outputs and --overwrite replaces them: give one, not both")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise ValueError(f"--scale must be in (0, {MAX_SCALE:g}] (above that every entry is 255), got {scale}")


@dataclass(frozen=True)
class CompressSettings:
    """How a tree is written, whatever the chooser (one object: the command line fills it in).

    Attributes:
        scale: multiply every table entry first (clamped to 1..255).
        workers: processes (default all cores; never more than the files, nor 4× the cores); a
            chooser that holds a network runs here.
        resume: keep outputs that already decode; ``overwrite``: replace them (not both).
        resize: store every image at a classifier's input size first (an int S, :func:`at_model_size`:
            shorter side to S/0.875, centre crop S×S; a multiple of 16), or at its resolution without
            the crop ("short:N": the shorter side brought down to N with the classifiers' bilinear
            filter, never enlarged; N = the model's resize, 256 for lite0, reads the same pixels).
            A bit budget is counted per pixel of the source either way.
        allow_larger: write every re-encode, even one not smaller than its JPEG source (by default
            the source's own bytes are kept then, and counted in :attr:`CompressReport.kept`).
        strip_metadata: drop EXIF, XMP, ICC and comments (by default copied from a JPEG source).
        copy_other: copy the files under SRC that are not images byte for byte, so that DST holds
            the whole dataset (by default they are counted by kind in :attr:`CompressReport.other`).
        engine: where the work runs (:mod:`dnnjpeg.engine`); default a local pool of ``workers``.
            A network choice measuring every member runs its network here on batches of
            ``batch_size`` candidates from many images, its JPEG work in the pool; on Ray each
            worker holds its own copy of the network.
    """

    scale: float = 1.0
    workers: int | None = None
    resume: bool = False
    overwrite: bool = False
    resize: int | str | None = None
    engine: Engine | None = None
    batch_size: int = 32
    allow_larger: bool = False
    strip_metadata: bool = False
    copy_other: bool = False
    #: how the network of a network choice is made fast (:data:`dnnjpeg.models.fast.ACCELERATORS`):
    #: "auto" = onnxruntime from 32 images, torch.compile from 5000 where gradients are needed
    accelerate: str = "auto"

    def check(self) -> None:
        """Refuse what cannot run (ValueError), before any file is read."""
        check_run(self.scale, self.resume, self.overwrite)
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be ≥ 1, got {self.batch_size}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be ≥ 1, got {self.workers}")
        from dnnjpeg.models.fast import ACCELERATORS

        if self.accelerate not in ACCELERATORS:
            raise ValueError(f"accelerate must be one of {', '.join(ACCELERATORS)}, got {self.accelerate!r}")
        r = self.resize
        if isinstance(r, str):
            n = r.removeprefix("short:")
            if not (r.startswith("short:") and n.isdigit() and 8 <= int(n) <= 65535):
                raise ValueError(f"--resize short:N takes the shorter side in pixels (8..65535), got {r!r}")
        elif r is not None and not (isinstance(r, int) and 16 <= r <= 4096 and r % 16 == 0):
            raise ValueError(f"--resize must be a multiple of 16 from 16 to 4096 (whole 4:2:0 blocks), got {r}")


def compress_tree(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    chooser: Chooser | QuantTables,
    settings: CompressSettings | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    **fields,
) -> CompressReport:
    """Encode every image under ``src`` (recursively) into the mirrored tree ``dst``; or one image
    file ``src`` into ``dst`` (a .jpg/.jpeg name, or a folder to hold it).

    Args:
        chooser: how each image's tables are decided (:mod:`dnnjpeg.choosers`: ``FixedTables``,
            ``RateChoice``, ``NetworkChoice``; :func:`~dnnjpeg.choosers.make_chooser` builds one);
            plain :class:`QuantTables` mean ``FixedTables(tables)`` at 4:2:0.
        settings: :class:`CompressSettings`; or give its fields as keywords (``workers=2``).
        progress: called with 1 per file done; ``on_total``: called once with the number of images.
    Raises:
        ValueError: ``dst`` overlaps ``src``; a bad scale; ``resume`` with ``overwrite``; DST made with
            other settings (and no ``overwrite``); a bit budget below what the family can reach
            (nothing is written then).
        FileNotFoundError: ``src`` does not exist.
        RuntimeError: worker processes could not start (a script without a main guard: the message
            says what to add).
        OSError: the destination is full, over quota or read-only (the batch stops; every
            output already written is whole).
    """
    st = replace(settings or CompressSettings(), **fields)
    s, d = Path(src).resolve(), Path(dst).resolve()
    if not s.exists():
        raise FileNotFoundError(f"{display(src)}: no such file or folder")
    if s.is_dir() and _overlap(s, d) or s == d:
        raise ValueError(f"destination {display(dst)} overlaps source {display(src)}: dnnjpeg never writes inside SRC")
    if s.is_dir() and d.exists() and not d.is_dir():
        raise ValueError(f"destination {display(dst)} exists and is not a folder")
    st.check()
    if getattr(chooser, "keep", None) is not None and st.resize is not None:
        raise ValueError(KEEP_RESIZE)
    folder = d if s.is_dir() else _single(s, d, st)[1]
    _make_folder(folder)
    with DstLock(folder):  # before the record and the first output: one run writes into a DST at a time
        run = _Run(s, d, FixedTables(chooser) if isinstance(chooser, QuantTables) else chooser, st, progress)
        if on_total is not None:
            on_total(len(run.jobs))
        run.copy_others()
        if run.chooser.target_bpp is None:
            return run.plain()
        lam = (run.record or {}).get("lam")
        if st.resume and lam is not None:  # the run resumed found the tree's λ: the rest is written at it
            return run.at_lam(float(lam))
        return run.to_budget()


def _make_folder(d: Path) -> None:
    """Create the destination folder, or say in one line why it cannot be (before any image is read)."""
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"destination {display(d)}: cannot create the folder ({e.strerror or e})") from None


def _workers(asked: int | None, n_files: int) -> int:
    """Processes for ``n_files``: as asked (default every core), never more than the files, nor 4× the cores."""
    cores = os.cpu_count() or 1
    return max(1, min(asked or cores, 4 * cores, max(1, n_files)))


def _single(s: Path, d: Path, st: CompressSettings) -> tuple[Path, Path]:
    """(output file, its folder) of a single-file SRC: DST itself when it names a .jpg/.jpeg file (or
    is an existing file), else the source's name (suffix .jpg unless a JPEG suffix) inside DST.

    Raises:
        ValueError: DST is a folder and the derived name is an existing file other than a resumed
            output: that folder holds the user's other files (pic.png's name pic.jpg may be another
            photo), so only an explicit output name replaces it.
    """
    if d.suffix.lower() in (".jpg", ".jpeg") and not d.is_dir() or d.is_file():
        return d, d.parent
    out = output_path(s.parent, d, s)
    if os.path.lexists(out) and not st.resume:
        raise ValueError(
            f"{display(out)} exists, in a folder of other files: it may be another picture, so compress does not "
            f"derive a name that replaces it; give the output's name to replace that file "
            f"(compress {display(s)} {display(out)} --overwrite), or another name"
        )
    return out, d


class _Run:
    """One compress run: its jobs (source, output) and where they run, its report as files finish."""

    def __init__(self, s: Path, d: Path, chooser, st: CompressSettings, progress) -> None:
        self.st, self.progress = st, progress
        self.chooser = chooser = chooser.scaled(st.scale)
        self.others: list[str] = []
        if s.is_dir():
            unopened: list[tuple[str, str]] = []
            # content decides, not the name
            files, problems = find_images(s, hidden=True, others=self.others, unopened=unopened)
            self.d = d
            self.record = self._record(d, chooser)
        else:  # one file: no settings record (a record describes a tree)
            files, problems = [str(s)], ()
            out, self.d = _single(s, d, st)
            self.record = None
        # a single file's "source root" is the file itself: DST may be any folder but never that file
        self.roots = (s, self.d)
        self.rep = CompressReport()
        self.rep.failures.extend((p, f"not read: {why}") for p, why in problems)
        if s.is_dir():
            self.rep.not_opened.extend(unopened)
        seen: dict[Path, Path] = {}
        rules = FileRules(st.resize, st.allow_larger, st.strip_metadata)
        self.jobs = []
        for f in map(Path, files):
            out = output_path(s, d, f) if s.is_dir() else out
            if out in seen:
                self.rep.failures.append((str(f), f"same output {display(out)} as {display(seen[out])}"))
                continue
            seen[out] = f
            self.jobs.append((str(f), str(out), st.resume, st.overwrite, self.roots, rules))
        self.engine = st.engine or LocalEngine(_workers(st.workers, len(self.jobs)))
        on_ray = self.engine.name == "ray"
        # Ray re-runs a killed worker's task: a job whose output did not exist at hand-out may find
        # the killed attempt's (whole) output, which is then this run's (see _one_shared)
        self.fresh = {j[1]: on_ray and not os.path.lexists(j[1]) for j in self.jobs}
        self.batched = _batchable(chooser) and not on_ray
        # the local search, many images per network pass (the same files as image by image)
        self.climbing = _batchable(chooser, "climb") and not on_ray
        if on_ray and _batchable(chooser, "climb") and chooser.target_bpp is not None:
            warnings.warn(
                "--choose climb --target-bpp on Ray measures every member of every image to find λ (the local "
                "search fits a budget on a local engine)", RuntimeWarning, stacklevel=3)  # fmt: skip
        self.eng = LocalEngine(1) if chooser.in_process and not on_ray and not self.batched else self.engine
        if self.batched or self.climbing:
            from dnnjpeg.models.fast import fast_model, needs_gradients

            fast = fast_model(
                chooser.model, st.batch_size, len(self.jobs), needs_gradients(chooser.family), st.accelerate
            )
            self.chooser = chooser = replace(chooser, model=fast)
        self.start = getattr(chooser, "pool_start", None)

    def _record(self, d: Path, chooser) -> dict:
        """The settings record, checked against an earlier run's and written now (before any output)."""
        st = self.st
        record = {"chooser": chooser.settings(), "scale": st.scale} | ({"resize": st.resize} if st.resize else {})
        record |= {k: True for k in ("allow_larger", "strip_metadata") if getattr(st, k)}
        dropped = drops(chooser, st.resize)
        if dropped:
            record["drops"] = dropped
        return claim_record(d, record, st.resume, st.overwrite)  # (compress_tree refused a DST not a folder)

    def copy_others(self) -> None:
        """Count the files that are not images by kind; with ``copy_other`` copy them byte for byte."""
        for f in self.others:
            self._count_other(f)
            if self.st.copy_other:
                self._copy(Path(f))

    def _count_other(self, f: str) -> None:
        kind = os.path.splitext(f)[1].lower() or "no extension"
        self.rep.other[kind] = self.rep.other.get(kind, 0) + 1

    def _other_after_all(self, f: str, msg: str) -> bool:
        """A file taken for an image by its first bytes alone (no image suffix) that no decoder reads:
        with ``copy_other`` it is data of another kind (a blob starting FF D8), copied as such."""
        from dnnjpeg.data import IMAGE_SUFFIXES

        return (self.st.copy_other and os.path.splitext(f)[1].lower() not in IMAGE_SUFFIXES
                and msg.startswith(_UNDECODABLE) and self.record is not None)  # fmt: skip

    def _copy(self, f: Path) -> None:
        from dnnjpeg._fs import open_regular, safe_output_path
        from dnnjpeg._io import atomic_write_bytes

        s, d = self.roots
        try:
            out = safe_output_path(d, d / f.relative_to(s), s)
            if os.path.lexists(out) and not self.st.overwrite:
                if self.st.resume and out.is_file() and out.stat().st_size == f.stat().st_size:
                    self.rep.already += 1
                    return
                raise ValueError(f"{display(out)} exists (use --resume to keep it, or --overwrite)")
            with open_regular(f) as source:  # streamed: an archive beside the images is never read whole
                atomic_write_bytes(out, None, fixed_part=True, source=source)
            self.rep.copied += 1
        except (OSError, ValueError) as e:
            if _fatal(e):  # a full or read-only destination stops the run, as for images
                raise
            self.rep.failures.append((str(f), f"not copied: {getattr(e, 'strerror', None) or e}"))

    def consume(self, results) -> None:
        for res, k in results:
            if res[1] == "failed" and self._other_after_all(res[0], res[4] or ""):
                self._count_other(res[0])
                self._copy(Path(res[0]))
            else:
                self.rep.add(res, k)
            if self.progress:
                self.progress(1)

    def run(self, js, members=None):
        members = members or [None] * len(js)
        items = [(j, k, self.fresh[j[1]]) for j, k in zip(js, members)]
        return self.eng.map(_one_shared, items, self.chooser, start=self.start, chunk=1 if self.eng.workers == 1 else 8)

    def plain(self) -> CompressReport:
        """Every image encoded by its chooser at the chooser's λ."""
        self.rep.lam = getattr(self.chooser, "lam", None)
        batch = self.st.batch_size
        if self.batched:
            self.consume(_batched_choice(self.jobs, self.chooser, self.engine, batch))
        elif self.climbing:
            from dnnjpeg.compress.climb import batched_climb

            self.consume(batched_climb(self.jobs, self.chooser, self.engine, batch))
        else:
            self.consume(self.run(self.jobs))
        return self.rep

    def at_lam(self, lam: float) -> CompressReport:
        """A resumed bit budget: the rest of the tree at the λ the first run found for the whole tree
        (recorded before its first file), so that the tree meets the target as one run would have."""
        self.rep.resumed_lam = True
        if self.climbing:  # the climb at a fixed λ writes the files the budget's climb wrote at it
            self.chooser = replace(self.chooser, lam=lam, target_bpp=None)
            rep = self.plain()
            rep.lam = lam
            return rep
        return self.to_budget(lam)

    def _found(self, lam: float) -> None:
        if self.record is not None and not self.rep.resumed_lam:
            record_lam(self.d, self.record, lam)

    def to_budget(self, lam: float | None = None) -> CompressReport:
        """Every member measured on every image, the λ that fits the bit target found (or ``lam``, a
        resumed run's), then the files written."""
        ch, rep = self.chooser, self.rep
        if self.climbing:
            return self._climb_to_budget()
        measured, todo = [], []
        if self.batched:
            results = _batched_choice(self.jobs, ch, self.engine, self.st.batch_size, measure_only=True)
        else:
            results = self.eng.map(_measure_shared, [(j,) for j in self.jobs], ch, start=self.start, chunk=8)
        for job, (done, m) in zip(self.jobs, results):
            if done is not None:
                self.consume([(done, None)])
            else:
                measured.append(m)
                todo.append(job)
        if not todo:
            return rep
        if lam is None:
            members, rep.lam, pixels = fit_budget(measured, ch.target_bpp)
            rep.budget_cause = budget_cause(measured, ch.target_bpp)
            self._found(rep.lam)
        else:
            from dnnjpeg.select import choose

            bits, kl = np.stack([m[0] for m in measured], 1), np.stack([m[1] for m in measured], 1)
            members, rep.lam = [int(k) for k in choose(bits, kl, lam)], lam
            pixels = float(sum(m[2] for m in measured))
        return self._write_members(todo, members, pixels)

    def _write_members(self, todo: list, members: list[int], pixels: float) -> CompressReport:
        """The second pass of a bit budget: each job's chosen member written; the report's bpp."""
        ch, rep = self.chooser, self.rep
        written_before = rep.bytes_after
        if self.batched or self.climbing:  # the second pass needs no network: every member's file in the pool
            items = [(j, k, False) for j, k in zip(todo, members)]
            sdq = "spawn" if any(p.sdq for p in ch.family.points) else None
            self.consume(self.engine.map(_one_shared, items, _Members(ch.family), start=sdq, chunk=8))
        else:
            self.consume(self.run(todo, members))
        rep.bpp = 8 * (rep.bytes_after - written_before) / pixels
        return rep

    def _climb_to_budget(self) -> CompressReport:
        """``--choose climb --target-bpp``: λ found over climbs that reuse their passes (:class:`BudgetClimb`)."""
        from dnnjpeg.compress.climb import BudgetClimb

        fit = BudgetClimb(self.jobs, self.chooser, self.engine, self.st.batch_size)
        idx, members, self.rep.lam = fit.fit(self.chooser.target_bpp)
        self._found(self.rep.lam)
        for _, done in sorted(fit.done, key=lambda d: d[0]):
            self.consume([(done, None)])
        self.rep.passes = fit.rows / max(1, len(idx))
        self.rep.incomplete = fit.incomplete
        if not idx:
            return self.rep
        return self._write_members([self.jobs[i] for i in idx], members, float(sum(fit.pixels[i] for i in idx)))
