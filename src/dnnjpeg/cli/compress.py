"""``compress``: re-encode a tree, as two decisions: which tables each image gets (``--choose``) and
how each block's levels are chosen in them (``--levels``), with one budget (``--lam`` / ``--target-bpp``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from dnnjpeg.choosers.build import CHOOSE_KINDS, DEFAULT_FAMILY, LEVELS
from dnnjpeg.cli.common import _DEVICE_HELP, _ENGINE_HELP, _fail, _on_device, engine_from, err
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
_TARGET_HELP = (
    "The budget as the average bits per pixel over the files written, in every mode: each file's members are "
    "measured first (a family's tables, or SDQ at a ladder of λ) and one λ for the tree is found, so a textured "
    "image gets more bits than a flat one."
)
_FILE_BPP_HELP = "--choose fixed --levels sdq: a cap per file instead: each file the smallest λ that fits B bpp."
_RESIZE_HELP = (
    "Store every image smaller first, with every --choose: short:N brings the shorter side down to N (the "
    "classifier's resolution: short:256 for lite0, whose own resize then reads the same pixels; never enlarged); "
    "S (a multiple of 16) stores the classifier's S×S centre crop (shorter side to S/0.875), so that a model "
    "reading coefficients needs no resizing. --target-bpp counts bits per source pixel."
)


def compress(
    src: Path = typer.Argument(..., help="Source tree (only read)."),
    dst: Path = typer.Argument(..., help="Destination tree (mirrors SRC; must not overlap it)."),
    choose: str = typer.Option("fixed", "--choose", help=_CHOOSE_HELP),
    levels: str = typer.Option("round", "--levels", help=_LEVELS_HELP),
    tables: Path | None = typer.Option(
        None, "--tables", help="The table of --choose fixed: a table JSON (from design) or preset:NAME."
    ),
    family: list[str] | None = typer.Option(None, "--family", help=_FAMILY_HELP),
    lam: float | None = typer.Option(None, "--lam", help=_LAM_HELP),
    target_bpp: float | None = typer.Option(None, "--target-bpp", help=_TARGET_HELP),
    file_bpp: float | None = typer.Option(None, "--file-bpp", help=_FILE_BPP_HELP),
    scale: float = typer.Option(1.0, "--scale", help="Multiply every table entry (clamped to 1..255)."),
    subsampling: str = typer.Option("4:2:0", "--subsampling"),
    optimize: bool = typer.Option(True, "--optimize/--no-optimize", help="Optimized Huffman tables."),
    resize: str | None = typer.Option(None, "--resize", help=_RESIZE_HELP),
    resume: bool = typer.Option(False, "--resume", help="Keep outputs that already exist and decode."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    workers: int | None = typer.Option(None, "--workers", help="Processes (default: every core)."),
    engine: str = typer.Option("local", "--engine", help=_ENGINE_HELP),
    device: str = typer.Option("auto", "--device", help=_DEVICE_HELP + " (--choose network, climb)"),
    batch_size: int = typer.Option(
        32, "--batch-size", help="--choose network: candidates per forward pass, from as many images as fit."
    ),
) -> None:
    """Re-encode a tree as standard baseline JPEG files: one designed table for every image, or each
    image's own choice (by rate, a QNet or the network in the loop), its blocks' levels rounded or
    chosen for the network (SDQ)."""

    from dnnjpeg._fs import display
    from dnnjpeg.choosers.build import chooser_from_decisions
    from dnnjpeg.compress import CompressSettings
    from dnnjpeg.models import ModelUnavailableError

    try:
        settings = CompressSettings(scale, workers, resume, overwrite, _resize(resize), None, batch_size)
        settings.check()  # before a model loads
        from dnnjpeg.pipeline import resolve_device

        resolve_device(device)
        settings = replace(settings, engine=engine_from(engine, workers))
        chooser = chooser_from_decisions(
            choose, levels, tables=tables, family=family, lam=lam, target_bpp=target_bpp, subsampling=subsampling,
            optimize=optimize, file_bpp=file_bpp,
        )  # fmt: skip
        chooser = _placed(chooser, device, settings.engine)
        rep = _with_progress(src, dst, chooser, settings)
    except (ValueError, FileNotFoundError, ModelUnavailableError, EngineUnavailableError) as e:
        raise _fail(str(e)) from None
    except OSError as e:  # e.g. a full disk: every output already written is complete (atomic writes)
        raise _fail(
            f"writing to {display(dst)}: {e.strerror or e}; the outputs already written are whole: free space "
            "and run again with --resume to go on"
        ) from None
    _print_report(rep, chooser, target_bpp)
    if rep.failures:
        raise typer.Exit(1)


def _with_progress(src, dst, chooser, settings):
    """compress_tree with a progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dnnjpeg.compress import compress_tree

    with Progress(
        TextColumn("compressing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    ) as bar:
        task = bar.add_task("", total=None)
        return compress_tree(src, dst, chooser, settings, progress=lambda k: bar.advance(task, k))


def _placed(chooser, device: str, engine):
    """The chooser with its network on ``device``; what it does said on stderr (all but fixed tables)."""
    from dataclasses import replace

    from dnnjpeg.choosers import FixedTables, NetworkChoice

    if isinstance(chooser, NetworkChoice):
        chooser = replace(chooser, model=_on_device(chooser.model, device, engine))
    if not isinstance(chooser, FixedTables):
        err.print(chooser.describe(), highlight=False)
    return chooser


def _print_report(rep, chooser, target_bpp: float | None) -> None:
    """The run in numbers on stdout; λ found for a bit target, members chosen and failures on stderr."""
    from dnnjpeg._fs import display

    if rep.bpp is not None:
        err.print(
            f"target {target_bpp:g} bpp: {_slope(chooser)} = {rep.lam:.3g} gives {rep.bpp:.3f} bpp over the "
            f"{rep.written:,} files written",
            highlight=False,
        )
    if rep.members:
        err.print(
            "tables chosen: " + ", ".join(f"{chooser.member_label(k)} ×{n}" for k, n in sorted(rep.members.items())),
            highlight=False,
        )
    ratio = f" ({rep.bytes_before / rep.bytes_after:.2f}x smaller)" if rep.bytes_after else ""
    Console().print(
        f"{rep.written:,} written, {rep.skipped:,} skipped (already valid), {len(rep.failures):,} failed; "
        f"bytes {rep.bytes_before:,} → {rep.bytes_after:,}{ratio}",
        highlight=False,
    )
    for f, msg in rep.failures:
        err.print(f"[red]failed[/red] {escape(display(f))}: {escape(msg)}", highlight=False)


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
