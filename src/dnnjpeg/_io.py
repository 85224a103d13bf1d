"""Atomic file output: every file dnnjpeg writes goes through here.

A reader (or a user pressing Ctrl-C) sees either the old file or the complete
new one, never half of one: the bytes go to a temporary file in the same
directory, are flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "file_mode", "part_name", "remove_part"]

_MODE: int | None = None


def file_mode() -> int:
    """0o666 less this process's umask (read once; reading it means setting it back)."""
    global _MODE
    if _MODE is None:
        mask = os.umask(0o022)
        os.umask(mask)
        _MODE = 0o666 & ~mask
    return _MODE


def part_name(path: Path | str) -> Path:
    """The fixed temporary name of ``path`` for writers that may be killed and run again
    (``compress``): a run removes a killed run's leftover by this exact name, never by pattern."""
    path = Path(path)
    return path.with_name(f".{path.name}.dnnjpeg-part")


def remove_part(path: Path | str) -> None:
    """Remove ``part_name(path)`` if a killed run left it (a regular file or a link, never followed)."""
    tmp = part_name(path)
    try:
        st = os.lstat(tmp)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        os.unlink(tmp)


def atomic_write_bytes(path: Path | str, data: bytes | None, *, fixed_part: bool = False, source=None) -> Path:
    """Write ``data`` to ``path`` atomically; creates parent folders. Returns the path.

    ``fixed_part``: write through :func:`part_name` (created exclusively, links not followed; a
    leftover of a killed run under that exact name is removed first) instead of a random
    temporary name, so that nothing but this output's own leftover is ever removed.
    ``source``: instead of ``data``, a binary file object copied in 1 MiB chunks.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fixed_part:
        remove_part(path)
        tmp = str(part_name(path))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, 0o600)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            if source is not None:
                shutil.copyfileobj(source, f, 1 << 20)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))
