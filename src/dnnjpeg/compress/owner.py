"""A compress run owns its DST: a lock file while it writes, and the settings record written before
its first output.

Two runs into one DST would mix settings (and race on each other's temporary files), and a run
killed between its first output and its record would leave outputs that no record describes, which a
``--resume`` with other settings would then accept. So a run first takes the lock (created with
O_EXCL, holding its pid; a lock whose process is gone is a killed run's and is taken over), then
writes the record (atomically, through one fixed temporary name that the next run removes), and only
then its outputs. A budget's λ, once found, is added to the record, so that a resume writes the rest
of the tree at the same price instead of refitting it on what is left.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path

from dnnjpeg._fs import COMPRESS_LOCK, COMPRESS_RECORD, display, read_json, walk
from dnnjpeg._io import atomic_write_bytes

__all__ = ["DstLock", "claim_record", "record_lam"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _holder(path: Path) -> int | None:
    """The pid written in a lock file, or None when it is unreadable or not one of ours."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        text = path.read_text()[:32].strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class DstLock:
    """The lock of one destination folder ``d`` (``with DstLock(d):``).

    Raises (on entering):
        ValueError: another live run holds it (names its pid), or ``d`` cannot be written at all
            (read-only, no permission: said before any image is read).
    """

    def __init__(self, d: Path) -> None:
        self.path = d / COMPRESS_LOCK
        self.d = d
        self.held = False

    def __enter__(self) -> DstLock:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        for _ in range(3):
            try:
                fd = os.open(self.path, flags, 0o644)
            except FileExistsError:
                pid = _holder(self.path)
                if pid is not None and _alive(pid):
                    raise ValueError(
                        f"another dnnjpeg run (pid {pid}) is writing into {display(self.d)}: wait for it to end "
                        f"(if there is no such process, remove {COMPRESS_LOCK} there)"
                    ) from None
                if pid is None and not stat.S_ISREG(os.lstat(self.path).st_mode) and not os.path.islink(self.path):
                    raise ValueError(
                        f"{display(self.path)}: expected dnnjpeg's lock file, found something else"
                    ) from None
                os.unlink(self.path)  # a killed run's lock (its process is gone): taken over
                continue
            except OSError as e:
                raise ValueError(f"destination {display(self.d)}: cannot write there ({e.strerror or e})") from None
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self.held = True
            return self
        raise ValueError(f"destination {display(self.d)}: its lock file keeps coming back; is another run starting?")

    def __exit__(self, *exc) -> None:
        if self.held and _holder(self.path) == os.getpid():
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        self.held = False


def _holds_outputs(d: Path) -> bool:
    """Whether ``d`` holds anything but dnnjpeg's own record, lock and part files."""
    for path, _ in walk(d):
        if not os.path.basename(path).endswith(".dnnjpeg-part"):
            return True
    return False


def claim_record(d: Path, settings: dict, resume: bool, overwrite: bool) -> dict:
    """Refuse to add to a DST made with other settings (unless overwriting), then write this run's
    record now, before any output (kept as it is when the same settings are recorded already).

    Returns:
        the record as it stands (``"lam"`` in it: the λ a bit budget found in the run being resumed).
    Raises:
        ValueError: outputs of other settings are there (and no ``overwrite``), or the record's name
            is taken by something that is not a record.
    """
    rec = d / COMPRESS_RECORD
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    old: dict = {}
    try:
        st = os.lstat(rec)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{display(rec)}: expected the settings record of an earlier run, found something else")
        try:
            old = read_json(rec)
            old = old if isinstance(old, dict) else {}
        except (OSError, ValueError):
            old = {}
        if old.get("digest") == digest:
            return old
        # a run that wrote nothing (every file failed) leaves a record but no outputs: not refused
        if not overwrite and _holds_outputs(d):
            raise ValueError(
                f"{display(d)} holds outputs of a run with other settings (recorded in {COMPRESS_RECORD})"
                + (", which --resume would keep" if resume else "")
                + ": use the same settings, --overwrite to replace those outputs, or another destination"
            )
    new = {"digest": digest, "settings": settings}
    _write(rec, new)
    return new


def record_lam(d: Path, record: dict, lam: float) -> None:
    """Add the λ a bit budget found to the record (before the files it prices are written)."""
    _write(d / COMPRESS_RECORD, record | {"lam": float(lam)})


def _write(rec: Path, doc: dict) -> None:
    try:
        atomic_write_bytes(rec, json.dumps(doc, indent=1).encode(), fixed_part=True)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        raise ValueError(f"{display(rec)}: cannot write the settings record ({e.strerror or e})") from None
