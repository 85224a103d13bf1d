"""``check``: a compressed tree against its source, as the classifier sees them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dnnjpeg.cli.common import _CLASSES_HELP, _DEVICE_HELP, _PREPROCESS_HELP, _fail, _model_name, err, progress_bar

_O = typer.Option


def check(
    src: Annotated[Path, typer.Argument(help="The source tree compress read.")],
    dst: Annotated[Path, typer.Argument(help="The tree compress wrote from it.")],
    model: Annotated[str, _O("--model", help="The classifier: a name or FILE.pt / FILE.onnx.")] = "efficientnet-lite0",
    preprocess: Annotated[str | None, _O("--preprocess", help=_PREPROCESS_HELP)] = None,
    classes: Annotated[Path | None, _O("--classes", help=_CLASSES_HELP)] = None,
    limit: Annotated[int | None, _O("--limit", help="Measure this many pairs, drawn at random (--seed).")] = None,
    seed: Annotated[int, _O("--seed", help="Seed of the draw and of the bootstrap.")] = 0,
    as_json: Annotated[bool, _O("--json", help="Print one JSON object on stdout instead of the summary.")] = False,
    batch_size: Annotated[int, _O("--batch-size", help="Images per forward pass.")] = 32,
    device: Annotated[str, _O("--device", help=_DEVICE_HELP)] = "auto",
) -> None:
    """What the compressed files still hold: each output paired with its source, both classified as
    stored; agreement of the top-1 prediction, top-1 against labels (where the tree has them) and the
    KL of the output's class distribution, with 95% intervals; bytes before and after; the worst files.
    Exit 1 when a source has no output, or an output cannot be read (counted in the verdict)."""
    from dnnjpeg.models import ModelUnavailableError, load_model

    if limit is not None and limit < 1:
        raise _fail(f"--limit must be ≥ 1, got {limit}")
    if batch_size < 1:
        raise _fail(f"--batch-size must be ≥ 1, got {batch_size}")
    if not 0 <= seed < 2**32:
        raise _fail(f"--seed must be an integer in 0..2^32-1, got {seed}")
    try:
        from dnnjpeg._fs import display, not_a_folder

        for p, what in ((src, "SRC"), (dst, "DST")):
            if not p.is_dir():
                raise FileNotFoundError(f"{what} {display(p)}: {not_a_folder(p)}")
        if src.resolve() == dst.resolve():
            raise ValueError(f"DST {display(dst)} is SRC itself: give the tree compress wrote from it")
        res = checked(src, dst, load_model(_model_name(model, preprocess, classes)), device, limit=limit, seed=seed,
                      batch_size=batch_size)  # fmt: skip
    except (ValueError, FileNotFoundError, ModelUnavailableError) as e:
        raise _fail(str(e)) from None
    if as_json:
        print(json.dumps(res.to_dict(), indent=1))
    else:
        print_check(res)
    if res.files == 0 or not res.complete:  # a missing or unreadable output is a failed check
        raise typer.Exit(1)


def checked(src: Path, dst: Path, model, device: str, **kw):
    """:func:`dnnjpeg.check.check_tree` with ``model`` on ``device`` and a progress bar on stderr (what
    ``check`` and ``compress --check`` run); ``kw``: check_tree's keywords."""
    from dnnjpeg.check import check_tree
    from dnnjpeg.pipeline import resolve_device

    with progress_bar("checking", err) as bar:
        task = bar.add_task("", total=None)
        return check_tree(src, dst, model.to(resolve_device(device)),
                          progress=lambda i, n: bar.update(task, completed=i, total=n), **kw)  # fmt: skip


def print_check(res) -> None:
    """The check in a few lines: the verdict on stdout; missing, unread and the worst files on stderr."""
    from dnnjpeg._fs import display

    out = Console(soft_wrap=True)
    out.print(escape(res.verdict()), highlight=False)
    if res.sampled_from > res.files + len(res.failures):
        out.print(f"({res.files:,} pairs drawn at random from {res.sampled_from:,})", highlight=False)
    if res.kept:
        out.print(f"{res.kept:,} outputs are their source's own bytes (compress could not make them smaller)")
    if res.worst and res.worst[0]["kl"] > 0:
        out.print("largest change (KL nats, prediction kept?, bytes source → output):", highlight=False)
        for w in res.worst[:5]:
            out.print(f"  {w['kl']:.4f}  {'kept' if w['agree'] else 'CHANGED'}  {w['bytes_source']:,} → "
                      f"{w['bytes_output']:,}  {escape(display(w['output']))}", highlight=False)  # fmt: skip
    if res.missing:
        err.print(
            f"[yellow]{len(res.missing):,} sources have no output[/yellow] (e.g. {escape(display(res.missing[0]))})"
        )
    for f, why in res.failures:
        err.print(f"[yellow]not measured[/yellow] {escape(display(f))}: {escape(why)}", highlight=False)
