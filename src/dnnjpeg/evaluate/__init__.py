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
import platform
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dnnjpeg._io import atomic_write_text
from dnnjpeg.data import Dataset
from dnnjpeg.evaluate.compare import CurveData, compare_curves
from dnnjpeg.evaluate.trial import Pristine, TrialResult, build_pristine, run_trial
from dnnjpeg.families import CodecSpec, TableFamily, parse_family
from dnnjpeg.models import Model

#: The evaluation names of the family type and its reader (one of each, in dnnjpeg.families).
CodecCurve = TableFamily
parse_codec = parse_family

__all__ = [
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
) -> dict:
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
    Returns:
        A JSON-ready dict (see ``results.json``).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    total = len(dataset) + sum(len(c.points) for c in curves) * len(dataset)
    cols = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*cols, disable=not progress, transient=False) as bar:
        task = bar.add_task("decoding pristine images", total=total, rate="")
        pristine = build_pristine(dataset, model, at, progress=lambda k: bar.advance(task, k), batch_size=batch_size)
        if len(pristine) == 0:
            raise ValueError(f"{dataset.root}: no readable images (of {len(dataset)})")
        out_curves, curve_data = [], []
        for c in curves:
            pts, bits, correct, kls = [], [], [], []
            for spec in c.points:
                bar.update(task, description=f"{c.name} {spec.label}")
                t0 = datetime.datetime.now()
                tr = run_trial(
                    spec,
                    pristine,
                    model,
                    batch_size=batch_size,
                    workers=workers,
                    progress=lambda k: bar.advance(task, k),
                )
                dt = (datetime.datetime.now() - t0).total_seconds()
                p = point_summary(tr, pristine)
                p["seconds"] = dt
                p["tables"] = spec.tables.to_dict()
                p["per_image"] = {
                    "bits": tr.bits.tolist(),
                    "top1": tr.top5[:, 0].tolist(),
                    "kl": np.round(tr.kl, 6).tolist(),
                }
                pts.append(p)
                bits.append(tr.bits)
                correct.append(tr.top5[:, 0] == pristine.labels)
                kls.append(tr.kl)
                bar.update(task, rate=f"{len(pristine) / max(dt, 1e-9):.0f} img/s")
            out_curves.append({"name": c.name, "kind": c.kind, "points": pts})
            curve_data.append(CurveData(c.name, np.array(bits), np.array(correct), pristine.pixels, np.array(kls)))
    if select is not None:
        pristine_top1 = pristine.logits.argmax(1)
        families = list(out_curves)
        for c in families:
            if len(c["points"]) >= 2:
                entry, cd = _selected_entry([c], pristine.labels, pristine_top1, pristine.pixels, select, model.name)
                out_curves.append(entry)
                curve_data.append(cd)
        if len(families) >= 2:  # every setting measured, chosen per image (subsampling included)
            entry, cd = _selected_entry(
                families,
                pristine.labels,
                pristine_top1,
                pristine.pixels,
                select,
                model.name,
                name="all settings per-image",
            )
            out_curves.append(entry)
            curve_data.append(cd)
        curves = list(curves) + [TableFamily(e["name"], (), "selected") for e in out_curves[len(curves) :]]

    ref_i = _reference_index(curves, reference)
    notes = transfer_notes(curves, model.name, at)
    pristine_correct = pristine.logits.argmax(1) == pristine.labels
    comparisons = []
    for i, cd in enumerate(curve_data):
        if i != ref_i:
            comparisons.append(
                compare_curves(curve_data[ref_i], cd, pristine_correct, target_drop, n_boot, seed).to_dict()
            )
    p_top5 = np.argsort(-pristine.logits, 1)[:, :5]
    metric = "top1" if pristine.labeled else "agreement"
    return {
        "settings": {
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
        "versions": versions(),
        "pristine": {
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
        "curves": out_curves,
        "comparisons": comparisons,
        "notes": notes,
        "failures": [list(f) for f in pristine.failures],
    }


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


def recompare(result: dict, reference: str | None = None, n_boot: int | None = None, seed: int | None = None) -> dict:
    """Recompute a saved result's comparisons from its per-image records (no images, no model).

    For results written before a comparison metric existed (BD-rate on KL), or to
    compare against another reference curve. ``result`` is a loaded
    ``results.json``; returns a copy with new ``comparisons`` (and settings
    ``reference``/``n_boot``/``seed`` updated). Raises ValueError naming what is
    missing when the result holds no per-image records.
    """
    s = result["settings"]
    n_boot = s["n_boot"] if n_boot is None else n_boot
    seed = s["seed"] if seed is None else seed
    try:
        label = np.asarray(result["pristine"]["per_image"]["label"])
        pixels = np.asarray(result["pristine"]["per_image"]["pixels"])
        data = []
        for c in result["curves"]:
            per = [p["per_image"] for p in c["points"]]
            data.append(
                CurveData(
                    c["name"],
                    np.array([q["bits"] for q in per]),
                    np.array([q["top1"] for q in per]) == label,
                    pixels,
                    np.array([q["kl"] for q in per], dtype=np.float64),
                )
            )
    except KeyError as e:
        raise ValueError(f"result has no per-image record {e} (written with an older dnnjpeg?)") from None
    names = [c["name"] for c in result["curves"]]
    ref = reference or s.get("reference") or names[0]
    if ref not in names:
        raise ValueError(f"reference curve {ref!r} not among {names}")
    ref_i = names.index(ref)
    pristine_correct = np.asarray(result["pristine"]["per_image"]["top1"]) == label
    comparisons = [
        compare_curves(data[ref_i], d, pristine_correct, s.get("target_drop", 1.0), n_boot, seed).to_dict()
        for i, d in enumerate(data)
        if i != ref_i
    ]
    return {**result, "settings": {**s, "reference": ref, "n_boot": n_boot, "seed": seed}, "comparisons": comparisons}


def _selected_entry(
    curves: Sequence[dict],
    labels: np.ndarray,
    pristine_top1: np.ndarray,
    pixels: np.ndarray,
    lambdas: Sequence[float],
    selector: str,
    selector_kl: np.ndarray | None = None,
    name: str | None = None,
) -> tuple[dict, CurveData]:
    """The per-image choice among the members of one or more measured curves (results.json curve
    entry and its CurveData).

    ``curves``: results.json curves with per-image records, their points together the family
    (several: e.g. the ladder at 4:2:0 and 4:4:4, so subsampling is chosen per image too);
    ``selector_kl`` (K, N): the choosing model's KL when it is not the measuring one (a transfer).
    """
    from dnnjpeg.select import selected_curve

    members = [(c, p) for c in curves for p in c["points"]]
    per = [p["per_image"] for _, p in members]
    bits = np.array([q["bits"] for q in per], np.int64)
    pred = np.array([q["top1"] for q in per], np.int64)
    kl = np.array([q["kl"] for q in per], np.float64)
    lams, b, _, k, ch = selected_curve(bits, pred == labels, kl, lambdas, selector_kl)
    cols = np.arange(bits.shape[1])
    subs = {p.get("subsampling") for _, p in members}
    opts = {p.get("optimize") for _, p in members}
    sub, opt = (subs.pop() if len(subs) == 1 else None), (opts.pop() if len(opts) == 1 else None)  # None: mixed
    pts = []
    for i, lam in enumerate(lams):
        p_sel = pred[ch[i], cols]
        pts.append(
            {
                "label": f"λ={lam:.2g}",
                "lam": lam,
                "quality": None,
                "scale": None,
                "subsampling": sub,
                "optimize": opt,
                "bpp": float(b[i].sum() / pixels.sum()),
                "mean_image_bpp": float(np.mean(b[i] / pixels)),
                "compression_ratio": None,
                "top1": float(100 * np.mean(p_sel == labels)),
                "top5": None,
                "agreement": float(100 * np.mean(p_sel == pristine_top1)),
                "kl": float(k[i].mean()),
                "seconds": 0.0,
                "tables": None,
                "members": np.bincount(ch[i], minlength=len(bits)).tolist(),
                "per_image": {
                    "bits": b[i].tolist(),
                    "top1": p_sel.tolist(),
                    "kl": np.round(k[i], 6).tolist(),
                    "choice": ch[i].tolist(),
                },
            }
        )
    one = len(curves) == 1
    name = name or f"{curves[0]['name'] if one else ' + '.join(c['name'] for c in curves)} per-image"
    entry = {
        "name": name,
        "kind": "selected",
        "family": curves[0]["name"] if one else [c["name"] for c in curves],
        "selector": selector,
        "family_labels": [p["label"] if one else f"{c['name']} {p['label']}" for c, p in members],
        "points": pts,
    }
    return entry, CurveData(name, b, pred[ch, cols] == labels, pixels, k)


def with_selection(
    result: dict,
    lambdas: Sequence[float] | None = None,
    selector: dict | None = None,
    curves: Sequence[str] | None = None,
    kappa: dict[str, Sequence[float]] | None = None,
    union: bool = False,
) -> dict:
    """Add per-image choice curves to a saved result, from its per-image records (no images, no model).

    Args:
        result: a loaded ``results.json`` (the measuring model's).
        lambdas: λ in nats per KiB (default :data:`dnnjpeg.conventions.DEFAULT_LAMBDAS_NATS_PER_KIB`).
        selector: another model's ``results.json`` on the same images and curves: that model
            chooses, ``result``'s model is measured (how well the choice transfers).
        curves: names of the family curves (default every curve of ≥ 2 points that is not itself a choice).
        kappa: curve name → each member's mean KL measured elsewhere (K,) (e.g. on the design
            split): the choice by rate alone, least κ_k + λ·KiB per image, no network per image
            (curves named "NAME per-image by rate"); replaces ``selector``.
        union: also the choice among the members of all ``curves`` together ("A + B per-image").
    Returns:
        A copy with the new curves (named "NAME per-image", or "NAME per-image by MODEL") and
        every comparison recomputed. Raises ValueError when images or curves do not match.
    """
    from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB

    lambdas = DEFAULT_LAMBDAS_NATS_PER_KIB if lambdas is None else lambdas
    pr = result["pristine"]["per_image"]
    labels, pixels, ptop1 = np.asarray(pr["label"]), np.asarray(pr["pixels"]), np.asarray(pr["top1"])
    by_name = {c["name"]: c for c in result["curves"]}
    names = (
        list(curves)
        if curves is not None
        else list(kappa)
        if kappa is not None
        else [c["name"] for c in result["curves"] if c.get("kind") != "selected" and len(c["points"]) >= 2]
    )
    sel_curves = {}
    if selector is not None:
        if selector["pristine"]["per_image"]["path"] != pr["path"]:
            raise ValueError("selector result was measured on other images (paths differ)")
        sel_curves = {c["name"]: c for c in selector["curves"]}
    chooser = []  # (curve, the chooser's KL (K, N) or None)
    who = (
        "rate"
        if kappa is not None
        else selector["settings"]["model"]
        if selector is not None
        else result["settings"]["model"]
    )
    for n in names:
        if n not in by_name:
            raise ValueError(f"curve {n!r} not among {list(by_name)}")
        skl = None
        if kappa is not None:
            k = np.asarray(kappa.get(n, ()), np.float64)
            if k.shape != (len(by_name[n]["points"]),):
                raise ValueError(f"kappa for {n!r} needs {len(by_name[n]['points'])} values, got {k.shape}")
            skl = np.broadcast_to(k[:, None], (len(k), len(labels)))
        elif selector is not None:
            if n not in sel_curves or len(sel_curves[n]["points"]) != len(by_name[n]["points"]):
                raise ValueError(f"selector result has no curve {n!r} with the same {len(by_name[n]['points'])} points")
            skl = np.array([p["per_image"]["kl"] for p in sel_curves[n]["points"]], np.float64)
        chooser.append((by_name[n], skl))
    groups = [[c] for c in chooser] + ([chooser] if union and len(chooser) >= 2 else [])
    new = []
    for g in groups:
        skl = None if g[0][1] is None else np.concatenate([k for _, k in g])
        entry, _ = _selected_entry([c for c, _ in g], labels, ptop1, pixels, lambdas, who, skl)
        if selector is not None or kappa is not None:
            entry["name"] = f"{entry['name']} by {who}"
        new.append(entry)
    fresh = {e["name"] for e in new}  # a choice computed again replaces the earlier one of the same name
    return recompare({**result, "curves": [c for c in result["curves"] if c["name"] not in fresh] + new})


def _reference_index(curves: Sequence[CodecCurve], name: str | None) -> int:
    if name is not None:
        for i, c in enumerate(curves):
            if c.name == name:
                return i
        raise ValueError(f"reference curve {name!r} not among {[c.name for c in curves]}")
    return next((i for i, c in enumerate(curves) if c.kind == "standard"), 0)


def write_outputs(result: dict, out: str | Path) -> dict[str, Path]:
    """Write results.json, curves.png, report.md and report.html into ``out`` (atomically each)."""
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
