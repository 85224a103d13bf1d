"""``dct distill``: classifiers that read JPEG coefficients."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.markup import escape

from dnnjpeg.cli.common import (
    _OVERWRITE_HELP,
    _checkpoint,
    _fail,
    _out_file,
    err,
)  # fmt: skip

dct_app = typer.Typer(no_args_is_help=True, help="Classifiers that read JPEG coefficients instead of pixels.")


@dct_app.command("distill")
def dct_distill(
    data: list[Path] = typer.Option(
        ..., "--data", help="Image folder (repeatable); only the design split of each is used (no labels needed)."
    ),
    out: Path = typer.Option(Path("dct-stem.pt"), "--out", help="Where the trained stem goes."),
    model: str = typer.Option("efficientnet-lite0", "--model", help="The pixel classifier to teach the stem from."),
    steps: int = typer.Option(1000, "--steps", help="Batches of augmented samples."),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(2e-3, "--lr"),
    kl: float = typer.Option(0.0, "--kl", help="Weight of the output KL besides the feature MSE (slower)."),
    limit: int | None = typer.Option(None, "--limit", help="At most this many design images per folder."),
    split: str = typer.Option("design", "--split", help="design, eval or all of each folder."),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """Teach a DCT-domain stem to reproduce a pretrained classifier's stride-8 features (distillation:
    the frozen pixel model gives the targets). The result is a model: ``--model dct:OUT`` in evaluate.
    A run killed and started again with the same --out resumes (OUT + '.ckpt')."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dnnjpeg._fs import display
    from dnnjpeg.codec import load_image
    from dnnjpeg.data import discover
    from dnnjpeg.dct.distill import DistillConfig, distill
    from dnnjpeg.dct.stem import SPLITS, save_stem
    from dnnjpeg.models import ModelUnavailableError, load_model

    if steps < 1 or batch_size < 2 or (limit is not None and limit < 1) or not (math.isfinite(lr) and lr > 0):
        raise _fail("--steps ≥ 1, --batch-size ≥ 2, --limit ≥ 1 and --lr > 0, please")
    if not (math.isfinite(kl) and kl >= 0):
        raise _fail("--kl must be a number ≥ 0")
    if model not in SPLITS:
        raise _fail(f"--model {model}: no DCT stem split is known for it (known: {', '.join(SPLITS)})")
    from dnnjpeg.dct.distill import CHECKPOINT_KEYS

    _out_file(out, data, overwrite)
    ck = _checkpoint(out.with_name(out.name + ".ckpt"), data, CHECKPOINT_KEYS)
    try:
        records = []
        for d in data:
            ds = discover(d).subset(split, limit)
            if len(ds) == 0:
                raise ValueError(f"{display(d)}: no images in the {split} split")
            records.extend(ds.records)
        m = load_model(model)
    except (ValueError, FileNotFoundError, ModelUnavailableError) as e:
        raise _fail(str(e)) from None
    images, names, skipped = [], [], []
    for r in records:
        try:
            images.append(load_image(r.path, "RGB"))
            names.append(str(r.path.name))
        except Exception as e:  # noqa: BLE001 — a bad file is named and skipped, the rest go on
            skipped.append((str(r.path), f"{type(e).__name__}: {e}"))
    for f, msg in skipped:
        err.print(f"[yellow]skipped[/yellow] {escape(display(f))}: {escape(msg)}", highlight=False)
    if not images:
        raise _fail("no readable images to distill from")
    cfg = DistillConfig(steps=steps, batch_size=batch_size, lr=lr, kl_weight=kl, seed=seed)
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    try:
        with Progress(*cols, console=err) as bar:
            t = bar.add_task("distilling", total=steps)
            res = distill(
                images, m, cfg, names=names, checkpoint=ck,
                progress=lambda s, n, loss: bar.update(t, completed=s, description=f"distilling (loss {loss:.3f})"),
            )  # fmt: skip
        meta = {"images": len(images), "steps": steps, "kl_weight": kl, "history": res.history}
        save_stem(res.stem, m.name, out, meta)
    except ValueError as e:
        raise _fail(str(e)) from None
    except OSError as e:
        raise _fail(f"writing {display(out)}: {e.strerror or e}") from None
    ck.unlink(missing_ok=True)
    h = res.history[-1] if res.history else {"feature_loss": float("nan")}
    err.print(f"{len(images)} images, {steps} steps: feature loss {h['feature_loss']:.4f} (relative MSE); "
              f"wrote {display(out)} — use it as --model dct:{display(out)}", highlight=False)  # fmt: skip
