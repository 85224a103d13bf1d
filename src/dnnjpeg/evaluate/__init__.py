"""Rate against accuracy, measured on real JPEG files.

``evaluate(dataset, model, curves)`` encodes every image with every codec
setting, classifies the decoded images, and returns a JSON-ready result with
per-point aggregates, per-image outcomes and comparisons against a reference
curve (BD-rate, bits at a target accuracy, gain at equal rate, bootstrap CIs).
``write_outputs`` writes ``results.json``, ``curves.png``, ``report.md``, ``report.html``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dnnjpeg._fs import read_regular
from dnnjpeg._io import atomic_write_text
from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB
from dnnjpeg.data import Dataset
from dnnjpeg.engine import Engine, LocalEngine
from dnnjpeg.evaluate.compare import CurveData, compare_curves, recompare
from dnnjpeg.evaluate.result import EvaluationResult
from dnnjpeg.evaluate.selection import selected_entry, with_selection
from dnnjpeg.evaluate.trial import Pristine, TrialResult, build_pristine, run_trial
from dnnjpeg.families import CodecSpec, TableFamily, parse_family
from dnnjpeg.models import Model

#: The evaluation names of the family type and its reader (one of each, in dnnjpeg.families).
CodecCurve = TableFamily
parse_codec = parse_family

__all__ = [
    "EvaluationResult",
    "evaluate",
    "write_outputs",
    "CodecCurve",
    "CodecSpec",
    "parse_codec",
    "build_pristine",
    "run_trial",
    "Pristine",
    "TrialResult",
    "point_summary",
    "versions",
    "recompare",
    "json_safe",
    "transfer_notes",
    "with_selection",
]


def versions() -> dict[str, str]:
    """Versions of everything that shapes a measurement."""
    import PIL
    import torch
    from PIL import features

    import dnnjpeg

    return {
        "dnnjpeg": dnnjpeg.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pillow": PIL.__version__,
        "libjpeg-turbo": str(features.version("libjpeg_turbo") or features.version("jpg")),
        "numpy": np.__version__,
        "simplejpeg": _version("simplejpeg"),
        "pyjpegli": _version("pyjpegli"),
    }


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def point_summary(trial: TrialResult, pristine: Pristine) -> dict:
    """Aggregates of one trial: bpp (total bits / total pixels), mean per-image bpp,
    compression ratio against 24-bit BMP, top-1/top-5/agreement in %, mean KL (nats)."""
    top1 = trial.top5[:, 0]
    labels = pristine.labels
    pristine_top1 = pristine.logits.argmax(1)
    return {
        "label": trial.spec.label,
        "quality": trial.spec.quality,
        "scale": trial.spec.scale,
        "subsampling": trial.spec.subsampling,
        "optimize": trial.spec.optimize,
        "bpp": float(trial.bits.sum() / pristine.pixels.sum()),
        "mean_image_bpp": float(np.mean(trial.bits / pristine.pixels)),
        "compression_ratio": float(pristine.bmp_bytes.sum() * 8 / trial.bits.sum()),
        "top1": float(100 * np.mean(top1 == labels)),
        "top5": float(100 * np.mean((trial.top5 == labels[:, None]).any(1))),
        "agreement": float(100 * np.mean(top1 == pristine_top1)),
        "kl": float(trial.kl.mean()),
    }


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
    """A digest of the model's parameters and buffers: a saved chunk is reused only by the same network."""
    import hashlib

    h = hashlib.sha256()
    for k, v in model.module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _curve_records(c: TableFamily, trials, pristine: Pristine):
    """One curve's points from its concatenated trials: (results.json curve record, CurveData)."""
    pts, bits, correct, kls = [], [], [], []
    for spec, (b, t5, kl, dt) in zip(c.points, trials):
        tr = TrialResult(spec, b, t5, kl)
        p = point_summary(tr, pristine)
        p["seconds"] = dt
        p["tables"] = spec.tables.to_dict()
        p["per_image"] = {"bits": tr.bits.tolist(), "top1": tr.top5[:, 0].tolist(), "kl": np.round(tr.kl, 6).tolist()}
        pts.append(p)
        bits.append(tr.bits)
        correct.append(tr.top5[:, 0] == pristine.labels)
        kls.append(tr.kl)
    cd = CurveData(c.name, np.array(bits), np.array(correct), pristine.pixels, np.array(kls))
    return {"name": c.name, "kind": c.kind, "points": pts}, cd


def _selection_curves(families: list[dict], pristine: Pristine, lambdas, selector: str) -> list:
    """Each measured curve of ≥ 2 points chosen per image, and with several curves the choice
    among all their settings: [(curve record, CurveData)]."""
    top1 = pristine.logits.argmax(1)
    args = (pristine.labels, top1, pristine.pixels, lambdas, selector)
    out = [selected_entry([c], *args) for c in families if len(c["points"]) >= 2]
    if len(families) >= 2:  # every setting measured, chosen per image (subsampling included)
        out.append(selected_entry(families, *args, name="all settings per-image"))
    return out


def _qnet_curve(c: TableFamily, entry: dict, pristine: Pristine, lambdas, dq: np.ndarray, stats: np.ndarray):
    """A QNet's own per-image choice among its family's measured members, one point per λ: the
    chosen file's bits and prediction are the member's (encoding is deterministic). ``dq``,
    ``stats``: the QNet's quantization errors and probe statistics of every image."""
    q = c.qnet
    bits = np.array([p["per_image"]["bits"] for p in entry["points"]], np.int64)
    pred = q.predict_kl(bits.T, pristine.pixels, dq, stats).T
    top1 = pristine.logits.argmax(1)
    lambdas = DEFAULT_LAMBDAS_NATS_PER_KIB if lambdas is None else lambdas
    name = entry["name"].removesuffix(" members")
    sel, cd = selected_entry([entry], pristine.labels, top1, pristine.pixels, lambdas, "qnet", pred, name=name)
    sel["selector"] = f"qnet {q.model_name} {q.digest()} (probe {q.probe_name})"
    return sel, cd


def evaluate(
    dataset: Dataset,
    model: Model,
    curves: Sequence[CodecCurve],
    at: str = "input",
    reference: str | None = None,
    target_drop: float = 1.0,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 32,
    workers: int | None = None,
    split: str = "all",
    progress: bool = True,
    select: Sequence[float] | None = None,
    engine: Engine | None = None,
    cache: str | Path | None = None,
    chunk: int = CHUNK,
) -> EvaluationResult:
    """Measure every curve on ``dataset`` with ``model``.

    Args:
        curves: codec curves; the reference for comparisons is the curve named
            ``reference`` or else the first standard ladder (else the first curve).
        at: "input" (JPEG the model-input crop) or "original" (JPEG the stored image).
        target_drop: accuracy target for "bits needed" = pristine − this many points.
        n_boot: paired bootstrap resamples for the intervals (0 disables them).
        select: λ values (nats per KiB): for every curve of ≥ 2 points also measure the
            per-image choice among its members by this model (:mod:`dnnjpeg.select`), one
            point per λ, as a curve named "NAME per-image"; with several curves also the choice
            among all their settings ("all settings per-image").
        engine: where chunks of ``chunk`` images are measured (:mod:`dnnjpeg.engine`): default
            here, JPEG work beside inference as ``workers`` says; a Ray engine sends each chunk
            to a worker that holds the model. Memory holds one chunk's images, whatever the
            dataset's size (``--at original`` included): per image only its results are kept.
        cache: a folder where each finished chunk is saved (atomically) and found again by a
            later run with the same settings: a killed run resumes where it stopped.
    Returns:
        An :class:`EvaluationResult` (``to_dict()`` is what ``results.json`` holds).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if at != "original" and any(c.qnet is not None for c in curves):
        raise ValueError("a QNet chooses among JPEGs of the stored image: evaluate qnet: codecs with --at original")
    total = len(dataset) + sum(len(c.points) for c in curves) * len(dataset)
    cols = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    ]
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
    with Progress(*cols, disable=not progress, transient=False) as bar:
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
    pristine = _merged_pristine(parts, at, dataset)
    if len(pristine) == 0:
        raise ValueError(f"{dataset.root}: no readable images (of {len(dataset)})")
    out_curves, curve_data = [], []
    for ci, c in enumerate(curves):
        trials = [
            (np.concatenate([p.trials[ci][j][0] for p in parts]), np.concatenate([p.trials[ci][j][1] for p in parts]),
             np.concatenate([p.trials[ci][j][2] for p in parts]), float(sum(p.trials[ci][j][3] for p in parts)))
            for j in range(len(c.points))
        ]  # fmt: skip
        entry, cd = _curve_records(c, trials, pristine)
        out_curves.append(entry)
        curve_data.append(cd)
    qnets = [(ci, c, e) for ci, (c, e) in enumerate(zip(curves, out_curves)) if c.qnet is not None]
    if qnets:
        new = []
        for ci, c, e in qnets:
            feats = [p.qnet[ci] for p in parts if p.paths]
            new.append(_qnet_curve(c, e, pristine, select, np.concatenate([q[0] for q in feats]),
                                   np.concatenate([q[1] for q in feats])))  # fmt: skip
        out_curves += [e for e, _ in new]
        curve_data += [cd for _, cd in new]
        curves = list(curves) + [TableFamily(e["name"], (), "selected") for e, _ in new]
    if select is not None:
        new = _selection_curves([e for e in out_curves if e["kind"] != "selected"], pristine, select, model.name)
        out_curves += [e for e, _ in new]
        curve_data += [cd for _, cd in new]
        curves = list(curves) + [TableFamily(e["name"], (), "selected") for e, _ in new]

    ref_i = _reference_index(curves, reference)
    notes = stale + transfer_notes(curves, model.name, at)
    pristine_correct = pristine.logits.argmax(1) == pristine.labels
    comparisons = []
    for i, cd in enumerate(curve_data):
        if i != ref_i:
            comparisons.append(
                compare_curves(curve_data[ref_i], cd, pristine_correct, target_drop, n_boot, seed).to_dict()
            )
    p_top5 = np.argsort(-pristine.logits, 1)[:, :5]
    metric = "top1" if pristine.labeled else "agreement"
    return EvaluationResult(
        settings={
            "data": str(dataset.root),
            "layout": dataset.layout,
            "split": split,
            "model": model.name,
            "at": at,
            "input_size": model.preprocess.size,
            "n_images": len(pristine),
            "labeled": pristine.labeled,
            "accuracy_metric": metric,
            "reference": curves[ref_i].name,
            "target_drop": target_drop,
            "n_boot": n_boot,
            "seed": seed,
            "batch_size": batch_size,
            "workers": workers,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        versions=versions(),
        pristine={
            "top1": float(100 * pristine_correct.mean()),
            "top5": float(100 * (p_top5 == pristine.labels[:, None]).any(1).mean()),
            "agreement": 100.0,
            "per_image": {
                "path": pristine.paths,
                "label": pristine.labels.tolist(),
                "top1": pristine.logits.argmax(1).tolist(),
                "pixels": pristine.pixels.tolist(),
            },
        },
        curves=out_curves,
        comparisons=comparisons,
        notes=notes,
        failures=[list(f) for f in pristine.failures],
    )


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


def transfer_notes(curves: Sequence[CodecCurve], model_name: str, at: str) -> list[str]:
    """One sentence per designed curve measured away from what it was designed for: another
    model (a transfer, worth knowing) or another place of the codec (``--at``; tables designed
    for a 224-pixel crop and for a stored image before resizing want very different high
    frequencies)."""
    out = []
    for c in curves:
        if c.designed_for is None:
            continue
        m, a = c.designed_for
        if a and a != at:
            out.append(f"{c.name}: designed for JPEG at {a}, measured at {at}")
        if m and m != model_name:
            out.append(f"{c.name}: designed for {m}, measured on {model_name} (a transfer)")
    return out


def _reference_index(curves: Sequence[CodecCurve], name: str | None) -> int:
    if name is not None:
        for i, c in enumerate(curves):
            if c.name == name:
                return i
        raise ValueError(f"reference curve {name!r} not among {[c.name for c in curves]}")
    return next((i for i, c in enumerate(curves) if c.kind == "standard"), 0)


def write_outputs(result: EvaluationResult | dict, out: str | Path) -> dict[str, Path]:
    """Write results.json, curves.png, report.md and report.html into ``out`` (atomically each)."""
    result = EvaluationResult.from_dict(result)
    from dnnjpeg.evaluate.report import html_report, markdown_report, plot_curves

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "results": atomic_write_text(
            out / "results.json", json.dumps(json_safe(result), indent=1, default=_jsonable, allow_nan=False)
        ),
        "curves": plot_curves(result, out / "curves.png"),
        "markdown": markdown_report(result, out / "report.md"),
        "html": html_report(result, out / "report.html"),
    }


def json_safe(x):
    """A copy of ``x`` (dicts, lists, floats) with every NaN as None, for strict JSON."""
    # Strict JSON has no NaN: an undefined comparison (no overlap, target never reached) is null.
    if isinstance(x, EvaluationResult):
        return json_safe(x.to_dict())
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-serializable: {type(x)}")
