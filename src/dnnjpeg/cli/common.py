"""What every command shares: the app, the error console, output rules, option help."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="dnnjpeg: JPEG made for neural networks. Survey, design, compress, evaluate.",
)
err = Console(stderr=True, soft_wrap=True)  # error lines name files: never wrap them


def _expand(paths: list[Path]) -> list[tuple[str, str | None]]:
    """(path, None) for each file to read and (path, reason) for each entry that cannot be, in
    the order given; folders are walked recursively (sorted per folder, links to folders not
    followed, unreadable folders reported)."""
    from dnnjpeg._fs import walk

    # a path given by name is read as such: a missing or unreadable one fails with its own error
    return [item for p in paths for item in (walk(p) if p.is_dir() else [(str(p), None)])]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


_OVERWRITE_HELP = "Replace an existing --out (never one of the inputs)."


def _out_file(out: Path, inputs, overwrite: bool, flag: str = "--out") -> Path:
    """The one rule for a single-file output, checked before any long work (exit 2 with the reason):
    not a link, not an input nor inside one, not an existing file unless --overwrite."""
    from dnnjpeg._fs import UnsafeOutputError, check_output_file

    try:
        return check_output_file(out, inputs=inputs, overwrite=overwrite, flag=flag)
    except UnsafeOutputError as e:
        raise _fail(str(e)) from None


#: the files evaluate writes into its --out
_EVAL_OUTPUTS = ("results.json", "curves.png", "report.md", "report.html")


def _out_folder(out: Path, inputs, names, overwrite: bool, flag: str = "--out", create: bool = True) -> Path:
    """The one rule for an output folder (:func:`dnnjpeg._fs.prepare_output_folder`), exit 2 with the
    reason; ``create=False`` checks only."""
    from dnnjpeg._fs import UnsafeOutputError, prepare_output_folder

    try:
        return prepare_output_folder(out, inputs=inputs, names=names, overwrite=overwrite, flag=flag, create=create)
    except UnsafeOutputError as e:
        raise _fail(str(e)) from None


def _checkpoint(ck: Path, inputs, keys: tuple[str, ...]) -> Path:
    """A checkpoint beside --out: an existing one is this command's own (it resumes from it), but a
    link, anything other than a regular file, or a file that is no readable checkpoint is refused
    here, before the images are read (its recipe is checked when training starts)."""
    from dnnjpeg._checkpoint import read_checkpoint

    real = _out_file(ck, inputs, overwrite=True, flag="checkpoint")
    try:
        read_checkpoint(ck, keys)
    except ValueError as e:
        raise _fail(str(e)) from None
    return real


_ENGINE_HELP = (
    "Where the work runs: local (a process pool on this machine, the default), ray (a Ray cluster started "
    "here) or ray:HOST:PORT (the head of a running cluster; ray:auto finds it); pip install 'dnnjpeg\\[ray]'."
)


def engine_from(text: str, workers: int | None = None):
    """The engine ``--engine local|ray|ray:ADDRESS`` names (:func:`dnnjpeg.engine.make_engine`)."""
    from dnnjpeg.engine import make_engine

    name, _, address = text.partition(":")
    return make_engine(name, address or None, workers)


_DEVICE_HELP = "Where the classifier runs: auto (CUDA, else MPS, else CPU), cpu, cuda[:N] or mps."


def _on_device(model, device: str, engine) -> object:
    from dnnjpeg.pipeline import resolve_device

    d = resolve_device(device)
    if getattr(model, "reads_coefficients", False) and d.type != "cpu":
        # (its planes loader and DCT-domain stem are tested on the CPU only)
        if device != "auto":
            raise ValueError(f"--device {device}: a model reading JPEG coefficients runs on the CPU")
        return model
    if engine.name != "local" and d.type != "cpu":
        if device != "auto":
            raise ValueError(f"--device {device}: with --engine ray each worker runs the model on its CPU")
        return model
    return model.to(d)


def _read_images(records, read) -> tuple[list, list[str]]:
    """``read(path)`` of every record: (what it returned, the names read); each file that fails is named
    on its own line and the rest go on."""
    from dnnjpeg._fs import display

    out, names = [], []
    for r in records:
        try:
            out.append(read(r.path))
            names.append(str(r.path.name))
        except Exception as e:  # noqa: BLE001 — a bad file is named and skipped, the rest go on
            err.print(f"[yellow]skipped[/yellow] {escape(display(r.path))}: {type(e).__name__}: {escape(str(e))}",
                      highlight=False)  # fmt: skip
    return out, names


_PREPROCESS_HELP = (
    "The model's preprocessing as key=value pairs, e.g. size=224,resize=256,interpolation=bilinear,"
    "mean=0.5/0.5/0.5,std=0.5/0.5/0.5; keys left out keep the model's own (for a --model FILE, ImageNet's: "
    "224 from a 256 resize, bilinear, mean 0.485/0.456/0.406, std 0.229/0.224/0.225)."
)
_CLASSES_HELP = (
    "A class-index file for a model whose outputs are not ImageNet's 1000 classes: one class name per line in "
    'output order (or a JSON list, or {"0": name}); the data\'s class folder names are matched to it.'
)


def _model_name(model: str, preprocess: str | None = None, classes: Path | None = None) -> str:
    """--model with --preprocess and --classes folded into one name every worker can load again."""
    from dnnjpeg.models import is_model_file
    from dnnjpeg.models.files import model_spec

    if preprocess is None and classes is None and not is_model_file(model):
        return model
    return model_spec(model, preprocess, classes)


def progress_bar(label: str, console, extra: str | None = None):
    """A rich progress bar on ``console``: done/total, %, rate per second, elapsed and time left (the
    total may be set later; until then the bar pulses). ``label`` and ``extra`` are rich text columns
    (``{task.description}``, ``{task.fields[NAME]}`` allowed). Use as ``with progress_bar(...) as bar:``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        """Items per second since the start (steadier than a moving estimate when items come in bursts)."""

        def render(self, task) -> Text:
            t = task.finished_time or task.elapsed
            return Text(f"{task.completed / t:.1f}/s" if t and t > 0.5 and task.completed else "",
                        style="progress.data.speed")  # fmt: skip

    cols = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(), Rate()]
    cols += [TextColumn(extra)] if extra else []
    return Progress(*cols, TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
