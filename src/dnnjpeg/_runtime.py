"""Process-start settings for fast PyTorch CPU work.

glibc's malloc returns large freed blocks to the OS (mmap threshold, trim), so
every inference batch page-faults its activations back in; measured here that
makes CPU inference about 3x slower.  Raising both thresholds keeps the memory
mapped between batches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["tune_malloc", "MALLOC_ENV", "die_with_parent"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # 1 GiB: above any single activation tensor we allocate

#: Environment for child processes (glibc reads these at their start).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(_THRESHOLD), "MALLOC_TRIM_THRESHOLD_": str(_THRESHOLD)}


def tune_malloc() -> bool:
    """Apply the thresholds to this process (mallopt) and to future children (env).

    Returns True when mallopt succeeded (glibc), False elsewhere (no effect).
    Set ``DNNJPEG_NO_MALLOC_TUNING=1`` to skip, e.g. to measure the difference.
    """
    if os.environ.get("DNNJPEG_NO_MALLOC_TUNING"):
        return False
    for k, v in MALLOC_ENV.items():
        os.environ.setdefault(k, v)
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok1 = libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)
        ok2 = libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)
    except (OSError, AttributeError):
        return False
    return bool(ok1 and ok2)


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Process-pool initializer: end this worker when the process that started it dies.

    A pool's workers wait on a queue; when the main process is killed hard (SIGKILL,
    the OOM killer) nothing tells them, and they would run on forever. Linux's
    PR_SET_PDEATHSIG sends them SIGTERM instead. Elsewhere this does nothing.
    """
    import signal

    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


_ONE_THREAD: list = []


def one_torch_thread_in_pool_workers() -> None:
    """In one of a process pool's workers (one per core), torch runs on one thread: no threads
    fighting for the cores the other workers use. Does nothing in the main process; once per process."""
    if not _ONE_THREAD:
        import multiprocessing

        import torch

        if multiprocessing.parent_process() is not None:
            torch.set_num_threads(1)
        _ONE_THREAD.append(True)
