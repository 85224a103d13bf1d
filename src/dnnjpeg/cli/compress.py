"""``compress``: re-encode a tree, as two decisions: which tables each image gets (``--choose``) and
how each block's levels are chosen in them (``--levels``), with one budget (``--lam`` / ``--target-bpp``)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from dnnjpeg.choosers.build import CHOOSE_KINDS, DEFAULT_FAMILY, LEVELS
from dnnjpeg.cli.common import (
    _DEVICE_HELP,
    _ENGINE_HELP,
    _PREPROCESS_HELP,
    _fail,
    _model_name,
    _on_device,
    engine_from,
    err,
    progress_bar,
)  # fmt: skip
from dnnjpeg.engine import EngineUnavailableError

_CHOOSE_HELP = "Which tables each image gets: " + "; ".join(f"{k}: {v}" for k, v in CHOOSE_KINDS.items()) + "."
_LEVELS_HELP = (
    f"How each block's levels are chosen in those tables: {', '.join(LEVELS)}. round: as libjpeg does; sdq:W: "
    "soft-decision quantization for the network (fisher: lite0's per-model weights; crop: the same, zero outside "
    "lite0's centre crop; gradient: each image's own weights, one backward pass; mse: for PSNR, the control), "
    "optionally sdq:W:ALPHA. With --choose fixed and no --tables: the shipped lite0 table."
)
_FAMILY_HELP = (
    "The tables a per-image --choose picks from, as a --codec value: standard[:Q,...], preset:NAME, sweep:FILE.json, "
    f"tables:FILE.json (swept by scale), optionally @4:4:4; repeatable (their union). Default {DEFAULT_FAMILY}."
)
_LAM_HELP = (
    "The budget as λ: nats of KL per KiB for a family choice (default 0.002: with lite0 choosing from the "
    "original-sweep preset on ImageNet-size photos ~0.84 bpp, top-1 within 1 point; BENCHMARKS.md); per bit for "
    "--levels sdq (default a fraction of the table's step error); per bit per pixel for tablenet."
)
_TABLES_HELP = "The table of --choose fixed: a table JSON (from design), preset:NAME or standard:Q (libjpeg's at Q)."
_TOLERANCE_HELP = (
    "With --target-bpp: how far (percent) the files written may land from the target; further, the miss is said "
    "and the exit status is 1 (inf: accept any)."
)
_TARGET_HELP = (
    "The budget as the average bits per pixel over the files written, in every mode: each file's members are "
    "measured first (a family's tables, or SDQ at a ladder of λ) and one λ for the tree is found, so a textured "
    "image gets more bits than a flat one. Files more than 1% from the target are said, and exit 1 "
    "(--bpp-tolerance PCT widens that; inf accepts any)."
)
_FILE_BPP_HELP = "--choose fixed --levels sdq: a cap per file instead: each file the smallest λ that fits B bpp."
_KEEP_HELP = (
    "--choose network: instead of a price (--lam), a guarantee: each image gets the smallest member whose top-1 "
    "answer is the stored image's (exact for that network, no labels); a JPEG source no member keeps is kept as is."
)
_CHECK_HELP = (
    "At the end, check N random files against their sources (dnnjpeg check: agreement of the top-1 prediction, "
    "KL, bytes) and print the verdict. Default: 100 when the network already runs (--choose network or climb), "
    "else 0 (off)."
)
_LARGER_HELP = "Write every re-encode, even one not smaller than its JPEG source (default: keep the source's bytes)."
_METADATA_HELP = "Drop EXIF (orientation included), XMP, ICC and comments (default: copied from a JPEG source)."
_OTHER_HELP = "Copy the files under SRC that are not images, byte for byte, so that DST holds the whole dataset."
_DEVICE_COMPRESS_HELP = _DEVICE_HELP + (
    " (--choose network, climb; on the CPU from 32 images the network runs in onnxruntime, exported in "
    "memory: 2.6x faster for lite0, logits within 1e-5)"
)
_RESIZE_HELP = (
    "Store every image smaller first, with every --choose: short:N brings the shorter side down to N (the "
    "classifier's resolution: short:256 for lite0, whose own resize then reads the same pixels; never enlarged); "
    "S (a multiple of 16) stores the classifier's S×S centre crop (shorter side to S/0.875), so that a model "
    "reading coefficients needs no resizing. --target-bpp counts bits per source pixel."
)


def compress(
    src: Path = typer.Argument(..., help="Source tree (only read), or one image file."),
    dst: Path = typer.Argument(
        ..., help="Destination tree (mirrors SRC; must not overlap it); for a file SRC, a .jpg name or a folder."
    ),
    choose: str = typer.Option("fixed", "--choose", help=_CHOOSE_HELP),
    levels: str = typer.Option("round", "--levels", help=_LEVELS_HELP),
    tables: Path | None = typer.Option(None, "--tables", help=_TABLES_HELP),
    family: list[str] | None = typer.Option(None, "--family", help=_FAMILY_HELP),
    lam: float | None = typer.Option(None, "--lam", help=_LAM_HELP),
    target_bpp: float | None = typer.Option(None, "--target-bpp", help=_TARGET_HELP),
    bpp_tolerance: float = typer.Option(1.0, "--bpp-tolerance", help=_TOLERANCE_HELP, hidden=True),
    file_bpp: float | None = typer.Option(None, "--file-bpp", help=_FILE_BPP_HELP),
    scale: float = typer.Option(1.0, "--scale", help="Multiply every table entry (clamped to 1..255)."),
    subsampling: str = typer.Option("4:2:0", "--subsampling", help="Chroma subsampling: 4:2:0 (or 420), 4:4:4, 4:2:2."),
    optimize: bool = typer.Option(True, "--optimize/--no-optimize", help="Optimized Huffman tables."),
    resize: str | None = typer.Option(None, "--resize", help=_RESIZE_HELP),
    keep_prediction: bool = typer.Option(False, "--keep-prediction", help=_KEEP_HELP),
    max_kl: float | None = typer.Option(None, "--max-kl", help="With --keep-prediction: also keep each KL ≤ X nats."),
    check: int | None = typer.Option(None, "--check", help=_CHECK_HELP),
    allow_larger: bool = typer.Option(False, "--allow-larger", help=_LARGER_HELP),
    strip_metadata: bool = typer.Option(False, "--strip-metadata", help=_METADATA_HELP),
    copy_other: bool = typer.Option(False, "--copy-other", help=_OTHER_HELP),
    preprocess: str | None = typer.Option(None, "--preprocess", help="--choose network:FILE: " + _PREPROCESS_HELP),
    resume: bool = typer.Option(False, "--resume", help="Keep outputs that already exist and decode."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    workers: int | None = typer.Option(None, "--workers", help="Processes (default: every core)."),
    engine: str = typer.Option("local", "--engine", help=_ENGINE_HELP),
    device: str = typer.Option("auto", "--device", help=_DEVICE_COMPRESS_HELP),
    batch_size: int = typer.Option(
        32, "--batch-size", help="--choose network: candidates per forward pass, from as many images as fit."
    ),
) -> None:
    """Re-encode a tree as standard baseline JPEG files: one designed table for every image, or each
    image's own choice (by rate, a QNet or the network in the loop), its blocks' levels rounded or
    chosen for the network (SDQ)."""
    from dnnjpeg._fs import display
    from dnnjpeg.choosers.build import chooser_from_decisions
    from dnnjpeg.models import ModelUnavailableError

    start = time.monotonic()
    try:
        settings = _settings(check, scale, workers, resume, overwrite, resize, batch_size, allow_larger,
                             strip_metadata, copy_other, device, engine, bpp_tolerance)  # fmt: skip
        chooser = chooser_from_decisions(
            _with_preprocess(choose, preprocess), levels, tables=tables, family=family, lam=lam,
            target_bpp=target_bpp, subsampling=subsampling, optimize=optimize, file_bpp=file_bpp,
            keep=_keep(keep_prediction, max_kl, settings.resize))  # fmt: skip
        rep = _with_progress(src, dst, _placed(chooser, device, settings.engine), settings)
    except (ValueError, FileNotFoundError, ModelUnavailableError, EngineUnavailableError) as e:
        raise _fail(str(e)) from None
    except OSError as e:  # e.g. a full disk: every output already written is complete (atomic writes)
        raise _fail(f"writing to {display(dst)}: {e.strerror or e}; the outputs already written are whole: "
                    "free space and run again with --resume to go on") from None  # fmt: skip
    missed = _print_report(rep, chooser, target_bpp, time.monotonic() - start, settings.resize, bpp_tolerance / 100)
    _check(src, dst, chooser, check, device, rep)
    if rep.failures or missed:
        raise typer.Exit(1)


def _settings(check, scale, workers, resume, overwrite, resize, batch_size, larger, strip, other, device, engine,
              tolerance=1.0):  # fmt: skip
    """Every option that needs no model checked (ValueError), before a model loads or a file is read."""
    if not (tolerance >= 0):  # inf accepts any miss; NaN is refused
        raise ValueError(f"--bpp-tolerance must be a percentage ≥ 0 (inf: accept any), got {tolerance}")
    from dnnjpeg.compress import CompressSettings
    from dnnjpeg.pipeline import resolve_device

    if check is not None and check < 0:
        raise ValueError(f"--check must be ≥ 0 files, got {check}")
    settings = CompressSettings(scale, workers, resume, overwrite, _resize(resize), None, batch_size, larger, strip,
                                other)  # fmt: skip
    settings.check()
    resolve_device(device)
    return replace(settings, engine=engine_from(engine, workers))


def _keep(keep_prediction: bool, max_kl: float | None, resize) -> float | None:
    """--keep-prediction [--max-kl X] as the chooser's KL cap (inf: the top-1 answer only), else None;
    refused with --resize before any model loads."""
    if keep_prediction and resize is not None:
        from dnnjpeg.compress.run import KEEP_RESIZE

        raise ValueError(KEEP_RESIZE)
    if max_kl is not None and not keep_prediction:
        raise ValueError("--max-kl bounds the KL of --keep-prediction: give both")
    return (float("inf") if max_kl is None else max_kl) if keep_prediction else None


def _with_preprocess(choose: str, preprocess: str | None) -> str:
    """--choose network:MODEL with --preprocess folded into the model's name."""
    if preprocess is None:
        return choose
    kind, _, arg = choose.partition(":")
    if kind not in ("network", "climb"):
        raise ValueError("--preprocess describes the classifier of --choose network:MODEL or climb:MODEL")
    return f"{kind}:{_model_name(arg or 'efficientnet-lite0', preprocess)}"


def _check(src: Path, dst: Path, chooser, n: int | None, device: str, rep) -> None:
    """The check of ``n`` random outputs against their sources, as one verdict line (the chooser's own
    classifier when it has one, else lite0); by default (None) 100 when the network ran anyway."""
    from dnnjpeg.choosers import NetworkChoice

    network = isinstance(chooser, NetworkChoice)
    n = n if n is not None else (100 if network else 0)
    if not n or not rep.written + rep.skipped:
        return
    from dnnjpeg.cli.check import checked
    from dnnjpeg.models import load_model

    if not src.is_dir():  # check pairs trees: a single file's folder holds other, unrelated images
        err.print("[yellow]note[/yellow] one file is not checked: run dnnjpeg check on folders", highlight=False)
        return
    model = chooser.model if network else load_model("efficientnet-lite0")
    if model.labels == "committee":  # a committee has no classes of its own: its first member checks
        model = model.module.members[0]
    res = checked(src, dst, model, device, limit=n)
    Console(soft_wrap=True).print(escape(res.verdict()), highlight=False)


def _with_progress(src, dst, chooser, settings):
    """compress_tree with a progress bar on stderr (done/total, rate, elapsed, ETA)."""
    from dnnjpeg.compress import compress_tree

    with progress_bar("compressing", err) as bar:
        task = bar.add_task("", total=None)
        return compress_tree(src, dst, chooser, settings, progress=lambda k: bar.advance(task, k),
                             on_total=lambda n: bar.update(task, total=n))  # fmt: skip


def _placed(chooser, device: str, engine):
    """The chooser with its network on ``device``; what it does said on stderr (all but fixed tables)."""
    from dataclasses import replace

    from dnnjpeg.choosers import FixedTables, NetworkChoice

    if isinstance(chooser, NetworkChoice):
        chooser = replace(chooser, model=_on_device(chooser.model, device, engine))
    if not isinstance(chooser, FixedTables):
        err.print(chooser.describe(), highlight=False)
    return chooser


def _print_report(rep, chooser, target_bpp: float | None, seconds: float, resize=None, tolerance=0.01) -> bool:
    """The run in numbers on stdout; λ found for a bit target, members chosen and failures on stderr.
    Returns whether the files missed the bit target by more than ``tolerance`` (a fraction; said)."""
    from dnnjpeg._fs import display

    if rep.resumed_lam:
        err.print(f"target {target_bpp:g} bpp: {_slope(chooser)} = {rep.lam:.3g}, found for the whole tree by the run "
                  "this one resumes (recorded in DST), prices the files written now", highlight=False)  # fmt: skip
    elif rep.bpp is not None:
        err.print(
            f"target {target_bpp:g} bpp: {_slope(chooser)} = {rep.lam:.3g} gives {rep.bpp:.3f} bpp over the "
            f"{rep.written:,} files written",
            highlight=False,
        )
    if rep.passes is not None:
        cut = f"; {rep.incomplete:,} climbs cut short (their best measured member)" if rep.incomplete else ""
        k = len(chooser.family)
        err.print(f"local search: {rep.passes:.1f} network passes per image to fit it (every member: {k + 1}){cut}",
                  highlight=False)  # fmt: skip
    if rep.members:
        err.print(
            "tables chosen: " + ", ".join(f"{chooser.member_label(k)} ×{n}" for k, n in sorted(rep.members.items())),
            highlight=False,
        )
    ratio = f" ({rep.bytes_before / rep.bytes_after:.2f}x smaller)" if rep.bytes_after else ""
    kept = f"; {rep.kept:,} of the written are their source's own bytes (re-encoded, not smaller)" if rep.kept else ""
    if rep.larger:
        kept += f"; {rep.larger:,} resized files are not smaller than their source (written at the size asked for)"
    Console(soft_wrap=True).print(
        f"{rep.written:,} written, {rep.skipped:,} skipped (already valid), {len(rep.failures):,} failed; "
        f"bytes {rep.bytes_before:,} → {rep.bytes_after:,}{ratio}{kept}; {_elapsed(seconds)}",
        highlight=False,
    )
    if rep.other:
        kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(rep.other.items(), key=lambda kv: -kv[1]))
        done = [f"{rep.copied:,} copied"] * bool(rep.copied) + [f"{rep.already:,} already there"] * bool(rep.already)
        what = ", ".join(done) if done else "not copied (--copy-other copies them)"
        err.print(f"{sum(rep.other.values()):,} files are not images ({escape(kinds)}): {what}", highlight=False)
    from dnnjpeg.compress import drops

    dropped = drops(chooser, resize)  # what the mode leaves out, said where the user reads it
    if dropped:
        err.print(f"[yellow]note[/yellow] {escape(dropped)}", highlight=False)
    for f, why in rep.not_opened:  # in a copy of the tree they are missing: said, never opened
        err.print(f"[yellow]not copied[/yellow] {escape(display(f))}: {escape(why)}; never opened", highlight=False)
    from dnnjpeg.compress.files import EXISTS

    there = [msg.removesuffix(EXISTS) for _, msg in rep.failures if msg.endswith(EXISTS)]
    if there:  # a rerun into its own DST: one line, not one per file
        more = f" and {len(there) - 1:,} more" if len(there) > 1 else ""
        err.print(f"[red]failed[/red] {escape(there[0])}{more} exist already: give --resume to keep the valid ones and "
                  "write the rest, or --overwrite to replace them", highlight=False)  # fmt: skip
    for f, msg in rep.failures:
        if not msg.endswith(EXISTS):
            err.print(f"[red]failed[/red] {escape(display(f))}: {escape(msg)}", highlight=False)
    missed = rep.budget_miss(target_bpp, tolerance)
    if missed:  # every file is whole and valid; the tree's total is not what was asked for
        err.print(f"[red]{escape(missed)}[/red] (--bpp-tolerance sets how far is accepted)", highlight=False)
    return missed is not None


def _slope(chooser) -> str:
    """What the λ found for a bit target measures: KL per KiB for a family choice, SDQ's weighted error per KiB."""
    from dnnjpeg.choosers import SDQChoice

    if isinstance(chooser, SDQChoice):
        units = "squared levels" if chooser.weights == "mse" else "nats of weighted error"
        return f"slope ({units} per KiB)"
    return "λ (nats/KiB)"


def _resize(text: str | None) -> int | str | None:
    """--resize as CompressSettings takes it: S (the crop's side) as an int, short:N as given."""
    if text is None or text.startswith("short:"):
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--resize {text!r}: give S (a multiple of 16: the centre crop) or short:N") from None


def _elapsed(seconds: float) -> str:
    m, sec = divmod(round(seconds), 60)
    return f"{m} min {sec} s" if m else f"{seconds:.1f} s"
