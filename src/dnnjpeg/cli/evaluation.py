"""``evaluate``: rate against accuracy, and the evaluation other commands run after theirs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dnnjpeg.cli.common import (
    _CLASSES_HELP,
    _DEVICE_HELP,
    _ENGINE_HELP,
    _EVAL_OUTPUTS,
    _PREPROCESS_HELP,
    _fail,
    _model_name,
    _on_device,
    engine_from,
    err,
)  # fmt: skip
from dnnjpeg.engine import EngineUnavailableError


@dataclass
class EvaluationSettings:
    """One ``evaluate`` run as the command line describes it (paths and codec texts; checked by
    :func:`_run_evaluation` before the model loads)."""

    data: Path
    codecs: list[str]
    out: Path
    model: str = "efficientnet-lite0"
    labels: Path | None = None
    scales: str | None = None
    subsampling: str = "4:2:0"
    at: str = "input"
    split: str = "all"
    limit: int | None = None
    n_boot: int = 1000
    seed: int = 0
    batch_size: int = 32
    workers: int | None = None
    optimize: bool = True
    reference: str | None = None
    target_drop: float = 1.0
    select: list[float] | None = None
    engine: str = "local"
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False


#: evaluate's finished chunks inside --out, kept until the outputs are written (what --resume reads)
EVAL_CHUNKS = ".dnnjpeg-chunks"


def _run_evaluation(settings: EvaluationSettings) -> dict:
    """Check the settings, evaluate, write the outputs, and print what a person needs."""
    import shutil
    import time

    from dnnjpeg._fs import display, prepare_output_folder
    from dnnjpeg.evaluate import evaluate, write_outputs
    from dnnjpeg.models import load_model
    from dnnjpeg.pipeline import resolve_device

    t0 = time.monotonic()
    st = settings
    curves, ds = _checked(st)  # everything that can be checked is checked before the model loads
    resolve_device(st.device)
    engine = engine_from(st.engine)
    model = _on_device(load_model(st.model), st.device, engine)
    ds = ds.for_model(model)  # a model with its own class order: labels follow it
    prepare_output_folder(st.out, inputs=[st.data, st.labels], names=_EVAL_OUTPUTS, overwrite=st.overwrite)
    cache = _chunk_folder(st.out, st.resume)
    err.print(
        f"{len(ds)} images ({ds.layout}, split {st.split}) · {model.name} · JPEG at {st.at} · "
        f"{sum(len(c.points) for c in curves)} codec settings"
    )
    result = evaluate(ds, model, curves, at=st.at, reference=st.reference, target_drop=st.target_drop,
                      n_boot=st.n_boot, seed=st.seed, batch_size=st.batch_size, workers=st.workers, split=st.split,
                      select=st.select, engine=engine, cache=cache)  # fmt: skip
    paths = write_outputs(result, st.out)
    shutil.rmtree(cache, ignore_errors=True)  # the outputs hold everything now
    for f in result["failures"]:
        err.print(f"[yellow]skipped[/yellow] {escape(display(f[0]))}: {escape(f[1])}", highlight=False)
    for n in result.get("notes", []):
        err.print(f"[yellow]note[/yellow] {escape(n)}", highlight=False)
    _print_summary(result)
    err.print(f"wrote {', '.join(display(p) for p in paths.values())} ({time.monotonic() - t0:.0f} s)", highlight=False)
    return result


def _checked(st: EvaluationSettings):
    """(curves, dataset) after every check that needs no model: numbers, --out (prepared), scales,
    codecs, images found. ValueError: the command line prints it as one line."""
    from dnnjpeg._fs import display, prepare_output_folder
    from dnnjpeg.data import discover
    from dnnjpeg.evaluate import parse_codec
    from dnnjpeg.evaluate.spec import DEFAULT_SCALES

    if st.batch_size < 1:
        raise ValueError(f"--batch-size must be ≥ 1, got {st.batch_size}")
    if st.n_boot < 0:
        raise ValueError(f"--bootstrap must be ≥ 0 resamples (0 = no intervals), got {st.n_boot}")
    if st.limit is not None and st.limit < 1:
        raise ValueError(f"--limit must be ≥ 1, got {st.limit}")
    if st.workers is not None and st.workers < 0:
        raise ValueError(f"--workers must be ≥ 0, got {st.workers}")
    if not (math.isfinite(st.target_drop) and st.target_drop >= 0):
        raise ValueError(f"--target-drop must be a finite number of points ≥ 0, got {st.target_drop}")
    try:
        prepare_output_folder(st.out, inputs=[st.data, st.labels], names=_EVAL_OUTPUTS, overwrite=st.overwrite,
                              create=False)  # fmt: skip
    except OSError as e:
        raise ValueError(str(e)) from None
    try:
        sc = [float(x) for x in st.scales.split(",")] if st.scales else list(DEFAULT_SCALES)
    except ValueError:
        raise ValueError(f"--scales {st.scales!r}: give comma-separated numbers, e.g. 0.5,1,2") from None
    if any(not (0 < x < float("inf")) for x in sc):
        raise ValueError(f"--scales {st.scales!r}: every scale must be a finite number > 0")
    curves = [parse_codec(c, st.subsampling, sc, st.optimize) for c in st.codecs]
    from dnnjpeg.evaluate import reference_index

    reference_index(curves, st.reference)  # an unknown --reference is refused now, not after the work
    if st.at != "original" and any(c.qnet is not None for c in curves):
        raise ValueError("--codec qnet:…: a QNet chooses among JPEGs of the stored image; use --at original")
    ds = discover(st.data, st.labels).subset(st.split, st.limit)
    if len(ds) == 0:
        raise ValueError(f"{display(st.data)}: no images in split {st.split!r}")
    return curves, ds


def _chunk_folder(out: Path, resume: bool) -> Path:
    """evaluate's own folder of finished chunks inside --out: emptied unless resuming; never a link."""
    import shutil

    from dnnjpeg._fs import display

    cache = out / EVAL_CHUNKS
    if cache.is_symlink() or (cache.exists() and not cache.is_dir()):
        raise ValueError(f"{display(cache)}: expected evaluate's own folder of finished chunks, found something else")
    if cache.exists() and not resume:
        shutil.rmtree(cache)  # a fresh run: an earlier run's chunks are not reused
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _print_summary(result: dict) -> None:
    from rich.table import Table

    metric = result["settings"]["accuracy_metric"]
    t = Table(title=f"pristine {metric} {result['pristine'][metric]:.1f}%")
    for col in ("curve", "setting", "bpp", metric, "KL"):
        t.add_column(col)
    pr = result["pristine"]
    if pr.get("stored_bpp"):
        t.add_row("files as stored", "", f"{pr['stored_bpp']:.3f}", f"{pr[metric]:.1f}", "0")
    for c in result["curves"]:
        for p in c["points"]:
            t.add_row(c["name"], p["label"], f"{p['bpp']:.3f}", f"{p[metric]:.1f}", f"{p['kl']:.4f}")
    Console().print(t)
    from dnnjpeg.evaluate.report import NO_OVERLAP, fmt_ci, fmt_value

    for k in result["comparisons"]:
        bd = fmt_value(k["bd_rate"], "{:+.1f}%", NO_OVERLAP) + " " + fmt_ci(k["bd_rate_ci"], "{:+.1f}")
        kl = k.get("bd_rate_kl", float("nan"))
        kl_txt = "" if kl != kl else f"; on KL {kl:+.1f}% {fmt_ci(k['bd_rate_kl_ci'], '{:+.1f}')}"
        Console(soft_wrap=True).print(f"{k['test']} vs {k['reference']}: BD-rate {bd}{kl_txt}", highlight=False)


#: survey names at most this many unreadable or non-JPEG files on the terminal (all are in its outputs)


_AT_HELP = (
    "input: JPEG the model-input crop (camera sends what the net sees); "
    "original: JPEG the stored image, then preprocess."
)


_MODEL_HELP = (
    "efficientnet-lite0/1/2; your own: FILE.pt (TorchScript: torch.jit.trace then .save) or FILE.onnx, with "
    "--preprocess; torchvision:NAME, timm:NAME; dct:FILE (a stem from 'dnnjpeg dct distill') or "
    "dct:efficientnet-lite0 (shipped): lite0 reading each encoded file's own coefficients, no decode (pristine "
    "images through their exact DCT; --at original: the DCT-domain ½/¼ down-scale and a block-grid centre crop)."
)
_CODEC_HELP = (
    "standard[:Q,...], tables:FILE.json, sweep:FILE.json or preset:NAME, optionally @4:4:4; jpegli[:Q,...]; "
    "qnet:FILE or qnet:preset:NAME (its family and its own per-image choice, --at original). Repeatable."
)
_WORKERS_HELP = "JPEG threads overlapping inference (0 = inline; default: inline on 2 cores, else spare cores)."
_SELECT_HELP = (
    "Also measure each curve's per-image choice by the network (least KL + λ·KiB per image; what compress "
    "--choose network writes), one point per λ."
)
_LAMBDAS_HELP = "λ values for --select in nats per KiB, e.g. 0.001,0.01,0.1 (default 16 from 1e-5 to 1)."
_O = typer.Option


def evaluate(
    data: Annotated[Path, _O("--data", help="Image folder: class sub-folders, wnid-named files, or unlabeled.")],
    model: Annotated[str, _O("--model", help=_MODEL_HELP)] = "efficientnet-lite0",
    preprocess: Annotated[str | None, _O("--preprocess", help=_PREPROCESS_HELP)] = None,
    classes: Annotated[Path | None, _O("--classes", help=_CLASSES_HELP)] = None,
    codec: Annotated[list[str] | None, _O("--codec", help=_CODEC_HELP + " Default: standard.")] = None,
    out: Annotated[Path, _O("--out", help="Output folder for results.json, curves.png, report.*")] = Path("eval-out"),
    at: Annotated[str, _O("--at", help=_AT_HELP)] = "input",
    split: Annotated[str, _O("--split", help="design | eval | all (deterministic hash of the file name).")] = "all",
    labels: Annotated[Path | None, _O("--labels", help="Labels CSV with columns path,label.")] = None,
    scales: Annotated[str | None, _O("--scales", help="Comma-separated scales that sweep a tables: codec.")] = None,
    subsampling: Annotated[str, _O("--subsampling", help="Default chroma subsampling for codecs without @.")] = "4:2:0",
    limit: Annotated[int | None, _O("--limit", help="Use at most this many images (first by path).")] = None,
    n_boot: Annotated[int, _O("--bootstrap", help="Paired bootstrap resamples for intervals (0 = none).")] = 1000,
    seed: Annotated[int, _O("--seed")] = 0,
    batch_size: Annotated[int, _O("--batch-size")] = 32,
    workers: Annotated[int | None, _O("--workers", help=_WORKERS_HELP)] = None,
    optimize: Annotated[bool, _O("--optimize/--no-optimize", help="Optimized Huffman tables (default on).")] = True,
    reference: Annotated[
        str | None, _O("--reference", help="Curve to compare against (default: 1st standard).")
    ] = None,
    target_drop: Annotated[
        float, _O("--target-drop", help="Target accuracy for 'bits needed' = pristine − this.")
    ] = 1.0,
    select: Annotated[bool, _O("--select", help=_SELECT_HELP)] = False,
    select_lambdas: Annotated[str | None, _O("--select-lambdas", help=_LAMBDAS_HELP)] = None,
    engine: Annotated[str, _O("--engine", help=_ENGINE_HELP)] = "local",
    device: Annotated[str, _O("--device", help=_DEVICE_HELP)] = "auto",
    resume: Annotated[bool, _O("--resume", help="Reuse the chunks a killed run into the same --out finished.")] = False,
    overwrite: Annotated[bool, _O("--overwrite", help="Replace reports in an --out dnnjpeg did not make.")] = False,
) -> None:
    """Rate against accuracy: encode every image with every codec setting, classify, compare.
    Measured chunk by chunk (256 images): memory holds one chunk, whatever the dataset's size."""
    from dnnjpeg.models import ModelUnavailableError

    if at not in ("input", "original"):
        raise typer.BadParameter("--at must be input or original")
    try:
        _run_evaluation(
            EvaluationSettings(
                data=data, codecs=codec or ["standard"], out=out, model=_model_name(model, preprocess, classes),
                labels=labels, scales=scales, subsampling=subsampling, at=at, split=split, limit=limit,
                n_boot=n_boot, seed=seed,
                batch_size=batch_size, workers=workers, optimize=optimize, reference=reference,
                target_drop=target_drop, select=_lambdas(select, select_lambdas), engine=engine, device=device,
                resume=resume, overwrite=overwrite,
            )
        )  # fmt: skip
    except (ValueError, FileNotFoundError, ModelUnavailableError, EngineUnavailableError) as e:
        raise _fail(str(e)) from None
    except OSError as e:  # e.g. a full disk: each output is written whole or not at all
        raise _fail(f"writing outputs to {out}: {e.strerror or e}; the outputs already complete are in place") from None


def _lambdas(select: bool, text: str | None) -> list[float] | None:
    """--select's λ values (nats per KiB): the given ones, the default sweep, or None without --select."""
    from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB

    if not (select or text):
        return None
    try:
        lams = [float(x) for x in text.split(",") if x.strip()] if text else list(DEFAULT_LAMBDAS_NATS_PER_KIB)
    except ValueError:
        raise typer.BadParameter(f"--select-lambdas {text!r}: comma-separated numbers, e.g. 0.001,0.01") from None
    if not lams or not all(math.isfinite(x) and x >= 0 for x in lams):
        raise typer.BadParameter("--select-lambdas: give finite λ ≥ 0")
    return lams
