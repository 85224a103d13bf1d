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
from pathlib import Path

import numpy as np

from dnnjpeg._io import atomic_write_text
from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB
from dnnjpeg.data import Dataset
from dnnjpeg.engine import Engine
from dnnjpeg.evaluate.chunks import CHUNK, _merged_pristine, measure_chunks
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
    if at != "original" and any(c.qnet is not None for c in curves):
        raise ValueError("a QNet chooses among JPEGs of the stored image: evaluate qnet: codecs with --at original")
    parts, stale = measure_chunks(dataset, model, curves, at, batch_size, workers, engine, cache, chunk, progress)
    pristine = _merged_pristine(parts, at, dataset)
    if len(pristine) == 0:
        raise ValueError(f"{dataset.root}: no readable images (of {len(dataset)})")
    curves, out_curves, curve_data = _assemble_curves(list(curves), parts, pristine, select, model.name)
    ref_i = reference_index(curves, reference)
    notes = stale + transfer_notes(curves, model.name, at)
    correct = pristine.logits.argmax(1) == pristine.labels
    comparisons = [compare_curves(curve_data[ref_i], cd, correct, target_drop, n_boot, seed).to_dict()
                   for i, cd in enumerate(curve_data) if i != ref_i]  # fmt: skip
    settings = {"data": str(dataset.root), "layout": dataset.layout, "split": split, "model": model.name, "at": at,
                "input_size": model.preprocess.size, "n_images": len(pristine), "labeled": pristine.labeled,
                "accuracy_metric": "top1" if pristine.labeled else "agreement", "reference": curves[ref_i].name,
                "target_drop": target_drop, "n_boot": n_boot, "seed": seed, "batch_size": batch_size,
                "workers": workers,
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}  # fmt: skip
    return EvaluationResult(settings=settings, versions=versions(), pristine=_pristine_summary(pristine),
                            curves=out_curves, comparisons=comparisons, notes=notes,
                            failures=[list(f) for f in pristine.failures])  # fmt: skip


def _stored_bpp(pristine: Pristine) -> float | None:
    """Bits per pixel of the image files as stored (None when a file is gone since it was read)."""
    try:
        size = sum(os.path.getsize(p) for p in pristine.paths)
    except OSError:
        return None
    pix = float(np.sum(pristine.pixels))
    return 8 * size / pix if pix else None


def _pristine_summary(pristine: Pristine) -> dict:
    """results.json's ``pristine``: top-1, top-5 and per-image records of the uncompressed images."""
    correct = pristine.logits.argmax(1) == pristine.labels
    p_top5 = np.argsort(-pristine.logits, 1)[:, :5]
    return {
        "top1": float(100 * correct.mean()),
        "top5": float(100 * (p_top5 == pristine.labels[:, None]).any(1).mean()),
        "agreement": 100.0,
        # the files as they are stored: a point on the curves (their bits per stored pixel, the
        # pristine accuracy), where every codec setting starts from
        "stored_bpp": _stored_bpp(pristine),
        "per_image": {
            "path": pristine.paths,
            "label": pristine.labels.tolist(),
            "top1": pristine.logits.argmax(1).tolist(),
            "pixels": pristine.pixels.tolist(),
        },
    }


def _assemble_curves(curves: list, parts, pristine: Pristine, select, model_name: str):
    """Each curve's record from its chunks' trials, then the QNet and per-image selection curves:
    (curves with the added ones, results.json records, CurveData for the comparisons)."""
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
        new = _selection_curves([e for e in out_curves if e["kind"] != "selected"], pristine, select, model_name)
        out_curves += [e for e, _ in new]
        curve_data += [cd for _, cd in new]
        curves = list(curves) + [TableFamily(e["name"], (), "selected") for e, _ in new]
    return curves, out_curves, curve_data


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


def reference_index(curves: Sequence[CodecCurve], name: str | None) -> int:
    if name is not None:
        for i, c in enumerate(curves):
            if c.name == name:
                return i
        raise ValueError(f"--reference {name!r}: no such curve among {[c.name for c in curves]}")
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
