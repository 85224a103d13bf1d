"""Walking trees, reading regular files, and placing outputs safely.

Every command that reads a user's tree or writes one goes through here, so that
the rules hold everywhere at once:

* a folder is never followed through a symbolic link (no loops, no escapes), and a
  folder that cannot be listed is reported, never silently skipped;
* only regular files are opened (a FIFO would block ``open()`` forever; a device or
  socket is no image);
* an output path never passes through a symbolic link or a non-folder below the
  destination root, is never a link itself, and never resolves inside the source;
* names that are not valid UTF-8 are kept losslessly (``os.fsencode``) and shown
  with backslash escapes, so one odd name cannot stop a batch or a print.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "NotRegularFileError",
    "UnsafeOutputError",
    "display",
    "walk",
    "walk_files",
    "read_regular",
    "open_regular",
    "safe_output_path",
    "inside",
    "read_json",
    "describe_error",
    "not_a_folder",
    "check_output_file",
    "prepare_output_folder",
    "OUTPUT_MARKER",
    "COMPRESS_RECORD",
    "COMPRESS_LOCK",
    "image_kind",
    "MAX_CONFIG_BYTES",
    "MAX_JSON_DEPTH",
]


class NotRegularFileError(OSError):
    """``path`` is a FIFO, socket, device or folder where a regular file was expected."""

    def __init__(self, path: object, kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({kind})")
        self.filename = os.fspath(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
        self.kind = kind

    def __str__(self) -> str:
        return f"{display(self.filename)}: {self.strerror}"


class UnsafeOutputError(OSError):
    """An output path would leave the destination (through a link) or land inside the source."""

    def __init__(self, path: object, cause: str) -> None:
        super().__init__(errno.EPERM, cause)
        self.filename = os.fspath(path)

    def __str__(self) -> str:
        return f"{display(self.filename)}: {self.strerror}"


#: control characters (C0, DEL, C1) as escapes: a name holding ESC could clear or recolour the terminal,
#: and one holding a newline would forge a line of the report
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(32), *range(127, 160))} | {10: "\\n", 13: "\\r", 9: "\\t"}


def display(path: object) -> str:
    """A printable form of a path: bytes that are not UTF-8 appear as ``\\xNN`` escapes, and so do
    control characters (``\\n``, ``\\x1b``...).

    Python keeps such bytes as lone surrogates (``surrogateescape``), which pyarrow,
    JSON and a strict stdout all refuse; this form is safe everywhere, a terminal included.
    """
    s = os.fspath(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    if isinstance(s, str):
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            s = s.encode("utf-8", "surrogateescape")
    if isinstance(s, bytes):
        s = s.decode("utf-8", "backslashreplace")
    if s.isprintable():
        return s  # the common case
    return s.translate(_CONTROLS)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


#: The record compress writes beside its outputs (its settings): dnnjpeg's own, never data to list.
COMPRESS_RECORD = ".dnnjpeg-compress.json"
#: The lock a compress run holds on its DST while it writes (its pid): dnnjpeg's own, never data.
COMPRESS_LOCK = ".dnnjpeg-compress.lock"


def walk(root: str | os.PathLike[str]) -> Iterator[tuple[str, str | None]]:
    """Yield ``(path, error)`` for every non-folder entry under ``root``, sorted per folder.

    ``error`` is None for an entry worth opening, else a short reason: a folder that
    cannot be listed (``(folder, reason)``), a link to a folder (not followed, so link
    loops cannot recurse), a FIFO/socket/device, or a link to one.  A broken link or
    link loop passes as None and fails when it is opened.  ``root`` itself may be a file.
    dnnjpeg's own records (:data:`COMPRESS_RECORD`, :data:`OUTPUT_MARKER` as regular files) are
    not listed: info, survey and discovery read a compressed tree as the user's data.
    """
    root = os.fspath(root)
    try:
        st = os.stat(root)
    except OSError as e:
        yield root, f"{e.strerror or e}"
        return
    if not stat.S_ISDIR(st.st_mode):
        yield root, None if stat.S_ISREG(st.st_mode) else f"not a regular file ({_kind(st.st_mode)})"
        return
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            yield d, f"cannot list folder: {e.strerror or e}"
            continue
        subdirs = []
        for e in entries:
            try:
                if e.name in (COMPRESS_RECORD, COMPRESS_LOCK, OUTPUT_MARKER) and e.is_file(follow_symlinks=False):
                    continue
                if e.is_dir(follow_symlinks=False):
                    subdirs.append(e.path)
                    continue
                if e.is_symlink():
                    try:
                        mode = os.stat(e.path).st_mode
                    except OSError:
                        mode = None  # broken link or loop: opening fails fast and is reported then
                    if mode is not None and stat.S_ISDIR(mode):
                        yield e.path, "symlink to a folder, not followed"
                        continue
                    if mode is not None and not stat.S_ISREG(mode):
                        yield e.path, f"symlink to something that is not a regular file ({_kind(mode)})"
                        continue
                elif not e.is_file(follow_symlinks=False):
                    yield e.path, f"not a regular file ({_kind(e.stat(follow_symlinks=False).st_mode)})"
                    continue
            except OSError:
                pass  # a broken entry is reported when it is read
            yield e.path, None
        stack.extend(reversed(subdirs))


def walk_files(
    root: str | os.PathLike[str], suffixes: set[str] | frozenset[str] | None = None, hidden: bool = True
) -> tuple[list[str], list[tuple[str, str]]]:
    """Files under ``root`` to open, and the entries that cannot be, with why.

    Args:
        suffixes: keep only names with one of these lower-case suffixes (``{".jpg", ...}``);
            problems are reported for entries that would have been kept, and for every folder
            that cannot be listed or is reached through a link (it may hold images).
        hidden: also keep names that start with a dot.
    Returns:
        ``(files, problems)``: sorted paths, and ``(path, reason)`` pairs.
    """
    files, problems = [], []
    for path, error in walk(root):
        name = os.path.basename(path)
        wanted = (suffixes is None or os.path.splitext(name)[1].lower() in suffixes) and (
            hidden or not name.startswith(".")
        )
        if error is None:
            if wanted:
                files.append(path)
        elif wanted or error.startswith(("cannot list folder", "symlink to a folder")):
            problems.append((path, error))
    return files, problems


def open_regular(path: str | os.PathLike[str]):
    """Open ``path`` for binary reading only if it is a regular file (links to one are fine).

    Opening with O_NONBLOCK returns at once on a FIFO, where a plain ``open()`` waits
    forever for a writer; the check is then made on the open descriptor (no race).

    Raises:
        NotRegularFileError: a FIFO, socket, device or folder.
        OSError: missing, unreadable, link loop...
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, _kind(mode))
        return os.fdopen(fd, "rb")  # O_NONBLOCK changes nothing for a regular file's reads
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], max_bytes: int | None = None, what: str = "file") -> bytes:
    """All bytes of a regular file (see :func:`open_regular` for what is refused).

    ``max_bytes``: a larger file is a ValueError naming it (``what`` it was meant to be), checked on
    the open descriptor before reading and again on what was read (a file growing meanwhile).
    """
    with open_regular(path) as f:
        if max_bytes is None:
            return f.read()
        size = os.fstat(f.fileno()).st_size
        data = f.read(max_bytes + 1) if size <= max_bytes else b""
    if size > max_bytes or len(data) > max_bytes:
        raise ValueError(f"{display(path)}: {max(size, len(data)):,} bytes is too large for a {what} "
                         f"(at most {max_bytes:,})")  # fmt: skip
    return data


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or below it (both already resolved)."""
    return path == root or root in path.parents


def safe_output_path(dst_root: Path, out: Path, src_root: Path | None = None) -> Path:
    """Check (and create the folders of) an output path below ``dst_root`` before writing.

    Every component between ``dst_root`` and the file must be a real folder (created
    here when missing, never a symbolic link), the file itself must be absent or a
    regular file (not a link), and the resolved result must lie in ``dst_root`` and
    outside ``src_root``.

    Args:
        dst_root: the destination root, already resolved.
        out: the output file, ``dst_root / relative``.
    Returns:
        ``out``, safe to write with a rename into its folder.
    Raises:
        UnsafeOutputError: a link or non-folder on the way, or the path would land in SRC.
    """
    rel = out.relative_to(dst_root)
    cur = dst_root
    for part in rel.parts[:-1]:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            try:
                os.mkdir(cur)
            except FileExistsError:
                pass
            st = os.lstat(cur)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeOutputError(out, f"{display(cur)} is a symbolic link in the destination: not followed")
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeOutputError(out, f"{display(cur)} is in the way and not a folder")
    try:
        st = os.lstat(out)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeOutputError(out, "the output is a symbolic link: not replaced, not followed")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeOutputError(out, f"the output exists and is a {_kind(st.st_mode)}")
    except FileNotFoundError:
        pass
    real = out.parent.resolve() / out.name
    if not inside(real, dst_root):
        raise UnsafeOutputError(out, f"resolves to {display(real)}, outside the destination")
    if src_root is not None and inside(real, src_root):
        raise UnsafeOutputError(out, f"resolves to {display(real)}, inside the source: dnnjpeg never writes there")
    return out


#: a configuration file (tables, QNet, κ, results.json) larger than this is refused before it is read
MAX_CONFIG_BYTES = 64 << 20
#: JSON nested deeper than this is refused before parsing (Python's parser recurses: 100,000 ``[`` is a
#: RecursionError, not a message)
MAX_JSON_DEPTH = 64


def _json_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings, in one linear scan."""
    import re

    # strings hold brackets that are not nesting: blank them first (escapes inside are kept whole)
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    import numpy as np

    b = np.frombuffer(bare.encode("utf-8", "surrogatepass"), np.uint8)
    step = ((b == 91) | (b == 123)).astype(np.int64) - ((b == 93) | (b == 125))
    return int(np.cumsum(step).max(initial=0))


def read_json(path: str | os.PathLike[str], max_bytes: int = MAX_CONFIG_BYTES):
    """Parse a regular file as UTF-8 JSON, refusing files over ``max_bytes`` (checked on the open
    descriptor, before reading) or nested deeper than :data:`MAX_JSON_DEPTH`.

    Raises:
        NotRegularFileError, OSError: as :func:`read_regular`.
        ValueError: too large, too deep, not UTF-8 or not JSON (the message names the file).
    """
    import json

    data = read_regular(path, max_bytes, "configuration file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{display(path)}: not a JSON file: not UTF-8 ({e.reason} at byte {e.start})") from None
    if _json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"{display(path)}: not a JSON file dnnjpeg reads: nested deeper than {MAX_JSON_DEPTH}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{display(path)}: not a JSON file: {e}") from None


#: the file that marks a folder as a dnnjpeg command's output (evaluate, survey, train, demo):
#: its reports may be replaced by the next run, and image discovery never reads it as data
OUTPUT_MARKER = ".dnnjpeg-output"


def _refuse_inputs(real: Path, inputs, flag: str, shown: object) -> None:
    for inp in inputs:
        if inp is None:
            continue
        r = Path(inp).resolve()
        if inside(real, r):
            what = "is" if real == r else "lies inside"
            raise UnsafeOutputError(
                shown, f"{flag} {what} the input {display(inp)}: dnnjpeg never writes into its inputs"
            )


def check_output_file(
    path: str | os.PathLike[str],
    *,
    inputs=(),
    overwrite: bool = False,
    flag: str = "--out",
) -> Path:
    """Check a file a command will write (``--out FILE``, a checkpoint) before any long work.

    The one rule for single-file outputs: the path is not a symbolic link, its folder resolves,
    it is not one of the ``inputs`` nor inside one (``--data`` folders, source files), and it is
    not an existing file unless ``overwrite`` (nothing the user had is replaced by accident).

    Args:
        inputs: paths (files or folders) the command reads.
        flag: the option's name for messages.
    Returns:
        The path, with its folder resolved (write it atomically: :func:`dnnjpeg._io.atomic_write_bytes`).
    Raises:
        UnsafeOutputError: a link, inside an input, or an existing file without ``overwrite``;
            also an existing folder, FIFO or device in its place.
    """
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeOutputError(p, f"{flag} is a symbolic link: not replaced, not followed")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeOutputError(p, f"{flag} exists and is a {_kind(st.st_mode)}")
    real = p.parent.resolve() / p.name
    _refuse_inputs(real, inputs, flag, p)
    if st is not None and not overwrite:
        raise UnsafeOutputError(p, f"{flag} exists: give --overwrite to replace it, or another path")
    return real


def prepare_output_folder(
    path: str | os.PathLike[str],
    *,
    inputs=(),
    names=(),
    overwrite: bool = False,
    flag: str = "--out",
    create: bool = True,
) -> Path:
    """Check, create and mark a folder a command writes its reports into, before any long work.

    A folder this tool made earlier (it holds :data:`OUTPUT_MARKER`) may have its reports replaced.
    Any other existing folder is the user's: none of ``names`` may exist there unless ``overwrite``.
    The folder is never a link, never an input nor inside one.

    Args:
        inputs: paths the command reads (``--data`` folders, trees).
        names: the files the command will write inside (``results.json``, ...).
        create: False checks only (call again with True when the outputs are about to be written:
            a run refused on its other arguments leaves no folder behind).
    Returns:
        The resolved folder, created and marked (with ``create``).
    Raises:
        UnsafeOutputError: as above, naming the first file in the way.
    """
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise UnsafeOutputError(p, f"{flag} is a symbolic link: not followed")
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise UnsafeOutputError(p, f"{flag} exists and is not a folder")
    real = p.parent.resolve() / p.name
    _refuse_inputs(real, inputs, flag, p)
    if st is not None and not overwrite and not os.path.lexists(real / OUTPUT_MARKER):
        for n in names:
            if os.path.lexists(real / n):
                raise UnsafeOutputError(
                    real / n, f"exists in {display(p)}, a folder dnnjpeg did not make: give --overwrite to replace it"
                )
    if not create:
        return real
    try:
        real.mkdir(parents=True, exist_ok=True)
        marker = real / OUTPUT_MARKER
        if not os.path.lexists(marker):
            from dnnjpeg._io import atomic_write_text

            atomic_write_text(marker, "This folder holds dnnjpeg's outputs; image discovery skips it.\n")
        elif not stat.S_ISREG(os.lstat(marker).st_mode):
            raise UnsafeOutputError(marker, "expected dnnjpeg's marker file, found something else")
    except UnsafeOutputError:
        raise
    except OSError as e:
        raise UnsafeOutputError(p, f"{flag}: cannot create the folder: {e.strerror or e}") from None
    return real


#: magic numbers of the image formats the decoding commands read (content decides, not the name)
_MAGIC = (
    (b"\xff\xd8", "JPEG"),  # SOI: what libjpeg itself checks
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"P5", "PGM"),
    (b"P6", "PPM"),
)


def image_kind(path: str | os.PathLike[str]) -> str | None:
    """The image format a file's first bytes announce (``"JPEG"``, ``"PNG"``, ``"WEBP"``, ...), else None.

    Reads at most 16 bytes of a regular file; anything that cannot be opened is None (the
    commands that read it report why).
    """
    try:
        with open_regular(path) as f:
            head = f.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def not_a_folder(path: str | os.PathLike[str]) -> str:
    """Why ``path`` cannot be read as a folder, in a few words: "no such folder", "is a file, not a
    folder" or "is a FIFO, not a folder"."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "no such folder"
    return "is a file, not a folder" if stat.S_ISREG(mode) else f"is a {_kind(mode)}, not a folder"


def describe_error(e: BaseException) -> str:
    """``"Type: cause"`` for a per-file failure, without repeating the file's name (the report
    line names it already)."""
    cause = getattr(e, "cause", None)  # dnnjpeg.codec's JpegError
    if cause is None and isinstance(e, OSError) and e.strerror:
        cause = e.strerror
    return f"{type(e).__name__}: {cause if cause is not None else e}"
