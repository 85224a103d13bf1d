"""Measuring a dataset chunk by chunk: what a worker holds at once, what a resumed run reuses."""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dnnjpeg._fs import read_regular
from dnnjpeg.data import Dataset
from dnnjpeg.engine import LocalEngine
from dnnjpeg.evaluate.trial import Pristine, build_pristine, run_trial

__all__ = ["CHUNK", "measure_chunks"]


#: Images per unit of work: what a worker holds at once (their sources, inputs and candidates)
#: and what is cached for a resumed run. A multiple of the default batch size, so that a
#: chunked run puts the same images in each inference batch as one pass over all of them.
CHUNK = 256


@dataclass
class _Chunk:
    """One chunk's measurements: the pristine summary (``paths``, ``labels``, ``logits`` (n, C),
    ``pixels``, ``bmp``), ``failures``, per curve and point (bits (n,), top5 (n, 5), kl (n,),
    seconds), and per QNet curve its (quantization errors, probe statistics) on these images."""

    paths: list[str]
    labels: np.ndarray
    logits: np.ndarray
    pixels: np.ndarray
    bmp: np.ndarray
    failures: list[tuple[str, str]]
    trials: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]]
    qnet: list[tuple[np.ndarray, np.ndarray] | None]
    #: SHA-256 of each record's bytes when measured (None: unreadable), in record order
    digests: list[str | None] = field(default_factory=list)

    def check(self, records, n_classes: int, curves) -> None:
        """Raise ValueError unless this saved chunk is whole and was measured from exactly these
        files as they are now (their bytes, not only their size and time) for these curves."""
        given = [str(r.path) for r in records]
        named = [str(p) for p in self.paths] + [str(f[0]) for f in self.failures]
        if sorted(named) != sorted(given):  # an extra, missing or repeated path
            raise ValueError("it names other files than this chunk's")
        if self.digests != _digests(records):
            raise ValueError("a file changed since it was measured")
        n = len(self.paths)
        shapes = {"labels": (self.labels, (n,)), "logits": (self.logits, (n, n_classes)),
                  "pixels": (self.pixels, (n,)), "bmp": (self.bmp, (n,))}  # fmt: skip
        if len(self.trials) != len(curves) or any(len(t) != len(c.points) for t, c in zip(self.trials, curves)):
            raise ValueError("it holds other curves")
        for i, pts in enumerate(self.trials):
            for j, (b, t5, kl, _) in enumerate(pts):
                shapes |= {f"bits {i}.{j}": (b, (n,)), f"top5 {i}.{j}": (t5, (n, 5)), f"kl {i}.{j}": (kl, (n,))}
        for name, (a, shape) in shapes.items():
            a = np.asarray(a)
            if a.shape != shape:
                raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise ValueError(f"{name} holds values that are not finite numbers")
        if any((np.asarray(t[2]) < -1e-6).any() for pts in self.trials for t in pts):
            raise ValueError("a negative KL")

    def to_bytes(self) -> bytes:
        import io

        arrays = {"labels": self.labels, "logits": self.logits, "pixels": self.pixels, "bmp": self.bmp}
        seconds = []
        for i, pts in enumerate(self.trials):
            seconds.append([t[3] for t in pts])
            for j, (b, t5, kl, _) in enumerate(pts):
                arrays |= {f"b{i}_{j}": b, f"t{i}_{j}": t5, f"k{i}_{j}": kl}
        for i, q in enumerate(self.qnet):
            if q is not None:
                arrays |= {f"dq{i}": q[0], f"st{i}": q[1]}
        meta = {
            "paths": self.paths,
            "failures": self.failures,
            "seconds": seconds,
            "qnet": [q is not None for q in self.qnet],
            "digests": self.digests,
        }
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        return buf.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> _Chunk:
        import io

        z = np.load(io.BytesIO(data), allow_pickle=False)
        meta = json.loads(z["meta"].tobytes())
        trials = [[(z[f"b{i}_{j}"], z[f"t{i}_{j}"], z[f"k{i}_{j}"], sec) for j, sec in enumerate(secs)]
                  for i, secs in enumerate(meta["seconds"])]  # fmt: skip
        qnet = [(z[f"dq{i}"], z[f"st{i}"]) if has else None for i, has in enumerate(meta["qnet"])]
        return _Chunk(meta["paths"], z["labels"], z["logits"], z["pixels"], z["bmp"],
                      [tuple(f) for f in meta["failures"]], trials, qnet, list(meta.get("digests", [])))  # fmt: skip


def _digests(records) -> list[str | None]:
    """SHA-256 of each record's file (None where it cannot be read as a regular file)."""
    import hashlib

    out = []
    for r in records:
        try:
            out.append(hashlib.sha256(read_regular(r.path)).hexdigest())
        except OSError:
            out.append(None)
    return out


def _evaluate_chunk(records, shared) -> _Chunk:
    """Every curve's trials on one chunk of a dataset (run by an engine: here, or a Ray worker
    holding the model). ``shared`` = (dataset without records, model, curves, at, batch size, JPEG
    workers). Its sources are dropped when it returns: memory is one chunk's, not the dataset's."""
    import time

    ds, model, curves, at, batch_size, workers = shared
    part = replace(ds, records=tuple(records), problems=())
    pristine = build_pristine(part, model, at, batch_size=batch_size)
    trials = []
    for c in curves:
        pts = []
        for spec in c.points:
            t0 = time.perf_counter()
            tr = run_trial(spec, pristine, model, batch_size=batch_size, workers=workers)
            pts.append((tr.bits, tr.top5, tr.kl, time.perf_counter() - t0))
        trials.append(pts)
    qnet = []
    for c in curves:
        if c.qnet is None or not len(pristine):  # (chunks without images are left out when merged)
            qnet.append(None)
            continue
        from dnnjpeg.qnet import probe_stats, quantization_error

        probe = c.qnet.get_probe()
        src = pristine.sources
        dq = np.stack([quantization_error(x, c.qnet.family) for x in src])
        stats = np.concatenate([probe_stats(src[i : i + 32], probe) for i in range(0, len(src), 32)])
        qnet.append((dq, stats))
    return _Chunk(pristine.paths, pristine.labels, pristine.logits, pristine.pixels, pristine.bmp_bytes,
                  [tuple(f) for f in pristine.failures], trials, qnet, _digests(records))  # fmt: skip


def _chunk_key(settings: dict, records) -> str:
    """What a saved chunk was measured from: the settings, and each file's path, size and
    modification time (a file changed since is measured again)."""
    import hashlib
    import os

    def ident(path):
        try:
            st = os.stat(path)
            return [str(path), st.st_size, st.st_mtime_ns]
        except OSError:
            return [str(path), None, None]

    body = json.dumps([settings, [ident(r.path) for r in records]], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _weights_digest(model) -> str:
    """A digest of the model's weights: a saved chunk is reused only by the same network. Its
    parameters and buffers for a torch module; the file's bytes for one without them (an ONNX
    session); every member's for a committee."""
    import hashlib

    h = hashlib.sha256()
    _digest_into(h, model)
    return h.hexdigest()[:16]


def _digest_into(h, model) -> None:
    module = model.module
    if hasattr(module, "state_dict"):
        for k, v in module.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().numpy().tobytes())
    elif hasattr(module, "members"):
        for m in module.members:
            _digest_into(h, m)
    elif model.info.get("file"):
        from dnnjpeg._fs import open_regular

        with open_regular(model.info["file"]) as f:  # streamed: a model file may be hundreds of MB
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    else:
        raise ValueError(f"{model.name}: no weights to tell this network from another (saved chunks could not be "
                         "checked): give it as a file or a torch module")  # fmt: skip


def measure_chunks(dataset, model, curves, at, batch_size, workers, engine, cache, chunk, progress):
    """Every curve's trials on every chunk of ``chunk`` images: saved chunks that pass their check are
    reused, the rest are measured on ``engine`` (and saved to ``cache``). Returns (chunks in order,
    one note per saved chunk not reused)."""
    import rich.progress as rp

    total = len(dataset) + sum(len(c.points) for c in curves) * len(dataset)
    cols = [rp.TextColumn("{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(),
            rp.TextColumn("{task.fields[rate]}"), rp.TimeElapsedColumn(), rp.TextColumn("ETA"),
            rp.TimeRemainingColumn()]  # fmt: skip
    if chunk < 1:
        raise ValueError(f"chunk must be ≥ 1 image, got {chunk}")
    if engine is None or engine.name == "local":
        engine = LocalEngine(1)  # the model runs here, JPEG work in threads beside it (``workers``)
    base = replace(dataset, records=(), problems=())
    shared = (base, model, list(curves), at, batch_size, workers)
    key_settings = {"model": model.name, "at": at, "batch_size": batch_size,
                    "weights": _weights_digest(model) if cache is not None else None,
                    "curves": [[c.name, [p.to_dict() if hasattr(p, "to_dict") else repr(p) for p in c.points],
                                c.qnet.digest() if c.qnet is not None else None] for c in curves]}  # fmt: skip
    recs = list(dataset.records)
    chunks = [recs[i : i + chunk] for i in range(0, len(recs), chunk)]
    folder = Path(cache) if cache is not None else None
    parts: list[_Chunk] = []
    with rp.Progress(*cols, disable=not progress, transient=False) as bar:
        task = bar.add_task(f"measuring {len(curves)} curve(s) on {engine.name}", total=total, rate="")
        per_image = 1 + sum(len(c.points) for c in curves)
        todo, stale = [], []
        for i, ch in enumerate(chunks):
            f = folder / f"chunk-{_chunk_key(key_settings, ch)}.npz" if folder is not None else None
            if f is not None and os.path.lexists(f):
                try:  # regular files only: a FIFO put there is never opened (dnnjpeg._fs.read_regular)
                    saved = _Chunk.from_bytes(read_regular(f))
                    saved.check(ch, model.num_classes, curves)
                    parts.append(saved)
                    bar.advance(task, per_image * len(ch))
                    continue
                except Exception as e:  # noqa: BLE001 — damaged or stale: the chunk is measured again
                    stale.append(
                        f"saved chunk {f.name} not reused ({str(e)[:120] or type(e).__name__}): measured again"
                    )
            parts.append(None)
            todo.append((i, ch, f))
        t0 = datetime.datetime.now()
        done_images = 0
        for (i, ch, f), res in zip(todo, engine.map(_evaluate_chunk, [t[1] for t in todo], shared)):
            if f is not None:
                from dnnjpeg._io import atomic_write_bytes

                atomic_write_bytes(f, res.to_bytes())
            parts[i] = res
            done_images += len(ch)
            bar.advance(task, per_image * len(ch))
            dt = (datetime.datetime.now() - t0).total_seconds()
            bar.update(task, rate=f"{done_images / max(dt, 1e-9):.1f} img/s")
    return parts, stale


def _merged_pristine(parts: list[_Chunk], at: str, dataset: Dataset) -> Pristine:
    """The pristine summary of all chunks (no pixels kept)."""
    failures = [(p, f"not read: {why}") for p, why in dataset.problems] + [f for p in parts for f in p.failures]
    live = [p for p in parts if p.paths]
    if not live:
        z = np.zeros(0, np.int64)
        return Pristine(at, [], z, [], None, np.zeros((0, 0), np.float32), failures, dataset.labeled, z, z)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in live])

    paths = [x for p in live for x in p.paths]
    return Pristine(at, paths, cat("labels"), [], None, cat("logits"), failures, dataset.labeled,
                    pixels=cat("pixels"), bmp_bytes=cat("bmp"))  # fmt: skip
