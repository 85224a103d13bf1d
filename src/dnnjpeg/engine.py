"""Where batch work runs: a local process pool (the default, nothing to start) or a Ray cluster.

``survey``, ``compress`` and ``evaluate`` hand their work to one :class:`Engine`:
``engine.map(fn, items, shared)`` yields ``fn(item, shared)`` for every item, in order, with a
bounded number of items in flight. ``shared`` (tables, a chooser, a model) travels to each
worker process once, not with every item. The guarantees of a run (SRC only read, atomic
writes, one error row per bad file, resume) live in the functions mapped, so they hold on
either engine; a worker killed mid-item has its items run again (Ray retries the task; every
output is written atomically, so a half-written file is never seen).

Ray core tasks are used rather than Ray Data's ``map_batches``: the items here are file
paths whose results must come back in order as small records (or be written by the worker
itself), and the model is held per worker process by :func:`_shared_value`'s cache, which is
what an actor pool would give, while a killed worker's task is simply retried.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from dnnjpeg._runtime import die_with_parent

__all__ = ["ENGINES", "Engine", "EngineUnavailableError", "LocalEngine", "RayEngine", "make_engine"]

ENGINES = ("local", "ray")


class EngineUnavailableError(RuntimeError):
    """The engine asked for cannot run here (Ray not installed, its cluster unreachable)."""


class Engine(Protocol):
    """Runs ``fn(item, shared)`` over items. ``workers``: how many run at once."""

    name: str
    workers: int

    def map(
        self, fn: Callable, items: Iterable, shared=None, *, start: str | None = None, chunk: int = 1,
        ordered: bool = True,
    ) -> Iterator:  # fmt: skip
        """``fn(item, shared)`` for each item, in order (``ordered=False``: as tasks finish, chunk by
        chunk; a slow chunk then holds nothing up). ``start``: a local pool's start method ("spawn"
        for work that runs torch); ``chunk``: items per task (amortizes the per-task cost)."""


_SHARED = None


def _set_shared(parent: int, shared) -> None:
    global _SHARED
    die_with_parent(parent)
    _SHARED = shared


def _call_shared(fn: Callable, items: list) -> list:
    return [fn(x, _SHARED) for x in items]


def unguarded_main() -> str | None:
    """The path of the script being run when its top level has no ``if __name__ == "__main__":``
    block (a spawned worker would run it all again on import), else None (a guarded script, the
    console command, an interpreter, a notebook)."""
    import ast
    import sys

    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path or not str(path).endswith(".py") or not os.path.isfile(path):
        return None
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
            return None
    return str(path)


class LocalEngine:
    """This machine: ``workers`` processes (1: in the calling process, no pool)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)

    def map(self, fn, items, shared=None, *, start=None, chunk=1, ordered=True):
        if self.workers == 1:
            for x in items:
                yield fn(x, shared)
            return
        script = unguarded_main() if start in ("spawn", "forkserver") else None
        if script is not None:
            warnings.warn(
                f'{script} calls dnnjpeg without `if __name__ == "__main__":`; worker processes start '
                "by importing that script, so this work runs in this one process instead. Put the call under "
                "that guard to use every core.",
                RuntimeWarning,
                stacklevel=3,
            )
            for x in items:
                yield fn(x, shared)
            return
        ctx = multiprocessing.get_context(start) if start else None
        pool = ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=_set_shared, initargs=(os.getpid(), shared)
        )
        try:
            first = None if ordered else lambda fs: next(iter(wait(fs, return_when=FIRST_COMPLETED)[0]))
            yield from _windowed(lambda xs: pool.submit(_call_shared, fn, xs), lambda f: f.result(), items, chunk,
                                 4 * self.workers, first)  # fmt: skip
        except BrokenProcessPool as e:
            raise RuntimeError(
                "a worker process died while the work ran (killed for memory, or it could not start: a script "
                'that calls dnnjpeg must do so under `if __name__ == "__main__":`, since new worker processes '
                "import it); run again with fewer --workers, or with workers=1 in the Python API"
            ) from e
        finally:  # on a fatal error (a full disk) the queued items are dropped, not tried one by one
            pool.shutdown(wait=True, cancel_futures=True)


def _windowed(submit, result, items, chunk: int, window: int, first=None) -> Iterator:
    """Submit chunks of ``chunk`` items with at most ``window`` chunks in flight; yield each item's
    result in order, or with ``first`` (pending handles → one that has finished) chunk by chunk as
    they finish."""
    pending: deque = deque()
    buf: list = []

    def take():
        h = pending[0] if first is None else first(pending)
        pending.remove(h)
        return result(h)

    for x in items:
        buf.append(x)
        if len(buf) >= chunk:
            pending.append(submit(buf))
            buf = []
            if len(pending) >= window:
                yield from take()
    if buf:
        pending.append(submit(buf))
    while pending:
        yield from take()


#: per Ray worker process: shared values already fetched, by object id
_RAY_CACHE: dict[str, object] = {}


def _shared_value(boxed: list):
    """The shared value behind ``boxed[0]`` (an ObjectRef), fetched once per worker process."""
    import ray

    ref = boxed[0]
    key = ref.hex()
    if key not in _RAY_CACHE:
        _RAY_CACHE.clear()  # one run's value at a time: a model is large
        _RAY_CACHE[key] = ray.get(ref)
    return _RAY_CACHE[key]


def _ray_call(fn: Callable, items: list, boxed: list) -> list:
    # (torch in a Ray worker runs one thread: Ray sets OMP_NUM_THREADS=1 for a one-CPU task)
    shared = _shared_value(boxed)
    return [fn(x, shared) for x in items]


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the address, when nothing listens there (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise EngineUnavailableError(f"--address {address!r}: expected HOST:PORT (a Ray head node), or 'auto'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise EngineUnavailableError(
            f"cannot reach a Ray cluster at {address}: {e.strerror or e} "
            "(start one with `ray start --head`, or drop --address for a local cluster)"
        ) from None


class RayEngine:
    """A Ray cluster: the one at ``address`` (HOST:PORT of its head, or "auto"), else a local one
    started here with ``workers`` CPUs. Tasks take one CPU each; one torch thread per worker."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, retries: int = 3) -> None:
        try:
            import ray
        except ImportError:
            raise EngineUnavailableError(
                "--engine ray needs Ray: pip install 'dnnjpeg[ray]' (or the pinned ray==2.60.0)"
            ) from None
        self._ray = ray
        self.retries = retries
        if not ray.is_initialized():
            if address and address != "auto":
                _reachable(address)
            kw = {} if address else {"num_cpus": workers or os.cpu_count() or 1, "object_store_memory": 256 << 20}
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, **kw)
            except (ConnectionError, RuntimeError) as e:
                raise EngineUnavailableError(
                    f"could not start or join a Ray cluster at {address or 'local'}: {e}"
                ) from e
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map(self, fn, items, shared=None, *, start=None, chunk=1, ordered=True):
        ray = self._ray
        boxed = [ray.put(shared)]  # in a list: the task fetches it (and caches it) itself
        task = ray.remote(num_cpus=1, max_retries=self.retries)(_ray_call)

        def get(ref):
            try:
                return ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                # the function's own error, as the worker raised it (a full disk keeps its errno)
                cause = getattr(e, "cause", None)
                if isinstance(cause, BaseException):
                    raise cause from None
                raise
            except ray.exceptions.RayError as e:  # workers or nodes lost beyond the retries
                raise EngineUnavailableError(
                    f"the Ray cluster lost a task {self.retries + 1} times ({type(e).__name__}); the outputs "
                    "already written are whole: run again with --resume"
                ) from e

        first = None if ordered else lambda refs: ray.wait(list(refs), num_returns=1)[0][0]
        yield from _windowed(lambda xs: task.remote(fn, xs, boxed), get, items, chunk, 2 * self.workers, first)


def make_engine(name: str = "local", address: str | None = None, workers: int | None = None) -> Engine:
    """The engine ``--engine NAME [--address ADDR] [--workers N]`` asks for.

    Raises:
        ValueError: an unknown name, ``workers`` < 1, or ``address`` without ``ray``.
        EngineUnavailableError: Ray missing or its cluster unreachable.
    """
    if name not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {name!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be ≥ 1 (or left out: every core), got {workers}")
    if name == "local":
        if address is not None:
            raise ValueError("an address names a Ray cluster: give it as --engine ray:ADDRESS")
        return LocalEngine(workers)
    return RayEngine(address, workers)
