"""``compress``: re-encode a tree with designed or per-image tables."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from dnnjpeg.cli.common import (
    _ADDRESS_HELP,
    _DEVICE_HELP,
    _ENGINE_HELP,
    _fail,
    _on_device,
    err,
)  # fmt: skip
from dnnjpeg.engine import EngineUnavailableError, make_engine


def compress(
    src: Path = typer.Argument(..., help="Source tree (only read)."),
    dst: Path = typer.Argument(..., help="Destination tree (mirrors SRC; must not overlap it)."),
    tables: Path | None = typer.Option(
        None, "--tables", help="Table JSON (from `dnnjpeg design` or QuantTables.save)."
    ),
    scale: float = typer.Option(1.0, "--scale", help="Multiply every table entry (clamped to 1..255)."),
    subsampling: str = typer.Option("4:2:0", "--subsampling"),
    optimize: bool = typer.Option(True, "--optimize/--no-optimize"),
    workers: int | None = typer.Option(None, "--workers"),
    resume: bool = typer.Option(False, "--resume", help="Skip outputs that already exist and decode."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    select_model: str | None = typer.Option(
        None,
        "--select-model",
        help="Choose each image's tables with this network: "
        "the --family member with least KL + λ·KiB (the network runs here).",
    ),
    family: list[str] | None = typer.Option(
        None,
        "--family",
        help="With --select-model or --kappa: the tables to choose from, as a "
        "--codec value: standard[:Q,...], sweep:FILE.json, preset:NAME, tables:FILE.json (swept by "
        "scale), optionally @4:4:4. Repeatable: the members of all, subsampling chosen per image too.",
    ),
    lam: float | None = typer.Option(
        None,
        "--lam",
        help="With a --family chooser: λ in nats of KL per KiB (larger → smaller files; default 0.002). "
        "0.002 with lite0 choosing from the original-sweep preset on ImageNet-size photos: ~0.84 bpp, "
        "top-1 within 1 point of pristine (BENCHMARKS.md).",
    ),
    kappa: Path | None = typer.Option(
        None,
        "--kappa",
        help="Instead of --select-model: choose by rate alone, each member's KL "
        "taken from this evaluation of the same --family (results.json or its folder, e.g. --split design).",
    ),
    target_bpp: float | None = typer.Option(
        None,
        "--target-bpp",
        help="With a --family chooser, instead of --lam: the λ whose "
        "choice fits this many bits per pixel over the files written (all members measured first).",
    ),
    by_rate: bool = typer.Option(
        False,
        "--by-rate",
        help="Like --kappa, with the members' mean KL recorded in the --family itself "
        "(e.g. preset:efficientnet-lite0-420-original-sweep): no network, no other file.",
    ),
    qnet: str | None = typer.Option(
        None,
        "--qnet",
        help="Choose each image's tables with this trained QNet (a file from dnnjpeg qnet train, or "
        "preset:efficientnet-lite0-qnet): predicted KL + λ·KiB, the classifier does not run; its own family "
        "unless --family is given (then they must match).",
    ),
    search: str = typer.Option(
        "all",
        "--search",
        help="With --select-model: 'all' runs the network on every member (K + 1 passes per image); 'climb' "
        "walks from the choice by rate (or the middle member) to the cheaper neighbour until none is "
        "cheaper: about 4 passes, nearly the same choice (BENCHMARKS.md).",
    ),
    tablenet: Path | None = typer.Option(
        None,
        "--tablenet",
        help="Give each image its own tables from this table generator (dnnjpeg qnet train-tables) at --lam "
        "(nats per bit per pixel at the model input). Trained at the model input: for data stored near that size.",
    ),
    sdq: str | None = typer.Option(
        None,
        "--sdq",
        help="Soft-decision quantization: each block's levels chosen for the network, in --tables (default: the "
        "shipped lite0 table). fisher: lite0's per-model weights; crop: the same, zero outside lite0's centre crop; "
        "gradient: each image's own weights (one backward pass of lite0); mse: for PSNR (the control). --lam in "
        "nats per bit (default: a fraction of the table's step error) or --target-bpp per image. To choose a "
        "table per image too: --family sdq:WEIGHTS --select-model efficientnet-lite0 (BENCHMARKS.md).",
    ),
    resize: int | None = typer.Option(
        None,
        "--resize",
        help="Store every image at a classifier's input size S first: shorter side to S/0.875, centre crop S×S "
        "(S a multiple of 16: whole 4:2:0 blocks), so that a model reading coefficients (--model dct:…) needs no "
        "resizing. Every mode; the choosers then see the stored image.",
    ),
    engine: str = typer.Option("local", "--engine", help=_ENGINE_HELP),
    address: str | None = typer.Option(None, "--address", help=_ADDRESS_HELP),
    device: str = typer.Option("auto", "--device", help=_DEVICE_HELP + " (--select-model)"),
    batch_size: int = typer.Option(
        32, "--batch-size", help="--select-model: candidates per forward pass, from as many images as fit."
    ),
) -> None:
    """Re-encode a whole tree with designed tables as standard baseline JPEG files, or with each
    image's choice among a family of tables by a network (--select-model)."""

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dnnjpeg._fs import display
    from dnnjpeg.choosers import FixedTables, NetworkChoice, make_chooser
    from dnnjpeg.compress import check_run, compress_tree
    from dnnjpeg.models import ModelUnavailableError

    try:
        check_run(scale, resume, overwrite)  # before a model loads
        if resize is not None and (resize < 16 or resize > 4096 or resize % 16):
            raise ValueError(f"--resize must be a multiple of 16 from 16 to 4096 (whole 4:2:0 blocks), got {resize}")
        if batch_size < 1:
            raise ValueError(f"--batch-size must be ≥ 1, got {batch_size}")
        from dnnjpeg.pipeline import resolve_device

        resolve_device(device)
        eng = make_engine(engine, address, workers)
        chooser = make_chooser(
            tables=tables, family=family, model=select_model, kappa_from=kappa, by_rate=by_rate, qnet=qnet, lam=lam,
            target_bpp=target_bpp, subsampling=subsampling, optimize=optimize, search=search, tablenet=tablenet,
            sdq=sdq,
        )  # fmt: skip
        if isinstance(chooser, NetworkChoice):
            from dataclasses import replace

            chooser = replace(chooser, model=_on_device(chooser.model, device, eng))
        if not isinstance(chooser, FixedTables):
            err.print(chooser.describe(), highlight=False)
        with Progress(
            TextColumn("compressing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
        ) as bar:
            task = bar.add_task("", total=None)
            rep = compress_tree(
                src, dst, chooser, scale=scale, workers=workers, resume=resume, overwrite=overwrite,
                progress=lambda k: bar.advance(task, k), resize=resize, engine=eng, batch_size=batch_size,
            )  # fmt: skip
    except (ValueError, FileNotFoundError, ModelUnavailableError, EngineUnavailableError) as e:
        raise _fail(str(e)) from None
    except OSError as e:  # e.g. a full disk: every output already written is complete (atomic writes)
        raise _fail(
            f"writing to {display(dst)}: {e.strerror or e}; the outputs already written are whole: free space "
            "and run again with --resume to go on"
        ) from None
    if rep.bpp is not None:
        err.print(
            f"target {target_bpp:g} bpp: λ = {rep.lam:.3g} nats/KiB gives {rep.bpp:.3f} bpp over the "
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
    if rep.failures:
        raise typer.Exit(1)
