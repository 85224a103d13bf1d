"""``dct distill``: classifiers that read JPEG coefficients."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from dnnjpeg.cli.common import (
    _OVERWRITE_HELP,
    _checkpoint,
    _fail,
    _out_file,
    _read_images,
    err,
    progress_bar,
)  # fmt: skip

dct_app = typer.Typer(no_args_is_help=True, help="Classifiers that read JPEG coefficients instead of pixels.")


_O = typer.Option


@dct_app.command("distill")
def dct_distill(
    data: Annotated[list[Path], _O("--data", help="Image folder (repeatable); only the design split of each is used.")],
    out: Annotated[Path, _O("--out", help="Where the trained stem goes.")] = Path("dct-stem.pt"),
    model: Annotated[str, _O("--model", help="The pixel classifier to teach the stem from.")] = "efficientnet-lite0",
    steps: Annotated[int, _O("--steps", help="Batches of augmented samples.")] = 1000,
    batch_size: Annotated[int, _O("--batch-size")] = 32,
    lr: Annotated[float, _O("--lr")] = 2e-3,
    kl: Annotated[float, _O("--kl", help="Weight of the output KL besides the feature MSE (slower).")] = 0.0,
    limit: Annotated[int | None, _O("--limit", help="At most this many design images per folder.")] = None,
    split: Annotated[str, _O("--split", help="design, eval or all of each folder.")] = "design",
    seed: Annotated[int, _O("--seed")] = 0,
    overwrite: Annotated[bool, _O("--overwrite", help=_OVERWRITE_HELP)] = False,
) -> None:
    """Teach a DCT-domain stem to reproduce a pretrained classifier's stride-8 features (distillation:
    the frozen pixel model gives the targets). The result is a model: ``--model dct:OUT`` in evaluate.
    A run killed and started again with the same --out resumes (OUT + '.ckpt')."""

    from dnnjpeg._fs import display
    from dnnjpeg.codec import load_image
    from dnnjpeg.dct.distill import CHECKPOINT_KEYS, DistillConfig, distill
    from dnnjpeg.dct.stem import save_stem

    _distill_checks(steps, batch_size, limit, lr, kl, model)
    _out_file(out, data, overwrite)
    ck = _checkpoint(out.with_name(out.name + ".ckpt"), data, CHECKPOINT_KEYS)
    records, m = _records_and_model(data, split, limit, model)
    images, names = _read_images(records, lambda p: load_image(p, "RGB"))
    if not images:
        raise _fail("no readable images to distill from")
    cfg = DistillConfig(steps=steps, batch_size=batch_size, lr=lr, kl_weight=kl, seed=seed)
    try:
        with progress_bar("{task.description}", err) as bar:
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


def _distill_checks(steps: int, batch_size: int, limit, lr: float, kl: float, model: str) -> None:
    from dnnjpeg.dct.stem import SPLITS

    if steps < 1 or batch_size < 2 or (limit is not None and limit < 1) or not (math.isfinite(lr) and lr > 0):
        raise _fail("--steps ≥ 1, --batch-size ≥ 2, --limit ≥ 1 and --lr > 0, please")
    if not (math.isfinite(kl) and kl >= 0):
        raise _fail("--kl must be a number ≥ 0")
    if model not in SPLITS:
        raise _fail(f"--model {model}: no DCT stem split is known for it (known: {', '.join(SPLITS)})")


def _records_and_model(data: list[Path], split: str, limit, model: str):
    """The chosen split of every --data folder, and the teacher loaded."""
    from dnnjpeg._fs import display
    from dnnjpeg.data import discover
    from dnnjpeg.models import ModelUnavailableError, load_model

    try:
        records = []
        for d in data:
            ds = discover(d).subset(split, limit)
            if len(ds) == 0:
                raise ValueError(f"{display(d)}: no images in the {split} split")
            records.extend(ds.records)
        return records, load_model(model)
    except (ValueError, FileNotFoundError, ModelUnavailableError) as e:
        raise _fail(str(e)) from None
