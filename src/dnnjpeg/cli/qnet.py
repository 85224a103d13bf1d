"""``qnet train`` and ``qnet train-tables``: choosers that run without the classifier."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dnnjpeg.cli.common import (
    _DEVICE_HELP,
    _OVERWRITE_HELP,
    _PREPROCESS_HELP,
    _checkpoint,
    _fail,
    _model_name,
    _out_file,
    _out_folder,
    _read_images,
    err,
    progress_bar,
)  # fmt: skip

qnet_app = typer.Typer(
    no_args_is_help=True, help="The task-aware quantization network: choose tables without the classifier."
)


_O = typer.Option
_WORK_HELP = (
    "Keep each image's measured samples here as they finish; a run killed and started again with the same folder "
    "resumes where it stopped (default: OUT's name + '.samples')."
)
_AUGMENT_HELP = "Augmented copies per design image besides the image itself (crops, flips, re-encodes)."
_SWEEP = "preset:efficientnet-lite0-420-original-sweep"


@qnet_app.command("train")
def qnet_train(
    data: Annotated[Path, _O("--data", help="Image folder; only its design split is used (no labels needed).")],
    out: Annotated[Path, _O("--out", help="Where the trained QNet goes (a small JSON file).")] = Path("qnet.json"),
    model: Annotated[str, _O("--model", help="The classifier whose KL the QNet predicts.")] = "efficientnet-lite0",
    preprocess: Annotated[str | None, _O("--preprocess", help=_PREPROCESS_HELP)] = None,
    family: Annotated[str, _O("--family", help="The tables to choose among (a --codec value).")] = _SWEEP,
    probe: Annotated[str, _O("--probe", help="The small network it runs on each image (NAME or NAME@S).")] = (
        "efficientnet-lite0@128"
    ),
    augment: Annotated[int, _O("--augment", help=_AUGMENT_HELP)] = 4,
    limit: Annotated[int | None, _O("--limit", help="At most this many design images.")] = None,
    alpha: Annotated[float, _O("--alpha", help="Ridge penalty of the predictor (in samples).")] = 10.0,
    seed: Annotated[int, _O("--seed", help="Seed of the augmentations and of training.")] = 0,
    work: Annotated[Path | None, _O("--work", help=_WORK_HELP)] = None,
    device: Annotated[str, _O("--device", help=_DEVICE_HELP + " (the classifier measuring the targets)")] = "auto",
    overwrite: Annotated[bool, _O("--overwrite", help=_OVERWRITE_HELP)] = False,
) -> None:
    """Train a QNet: the classifier's own KL on every family member of augmented design images is the
    target; the QNet predicts it from one pass of a small probe network, each member's quantization
    error and file size (JPEG of the stored image). Measuring the targets is the slow part (K + 1
    classifier passes per sample): it is kept in --work and resumes."""
    from dnnjpeg._fs import display
    from dnnjpeg.qnet import save_qnet, train_qnet

    if augment < 0 or (limit is not None and limit < 1) or not (math.isfinite(alpha) and alpha > 0):
        raise _fail("--augment must be ≥ 0, --limit ≥ 1 and --alpha a number > 0")
    if augment > 1000:
        raise _fail(f"--augment {augment}: at most 1000 copies per image")
    work = work if work is not None else out.with_name(out.name + ".samples")
    _out_file(out, [data], overwrite)
    _out_folder(work, [data], (), True, "--work", create=False)  # kept for resuming: made when measuring starts
    model = _model_name(model, preprocess)
    fam, ds, m, p = _qnet_inputs(data, family, limit, augment, model, probe, device, seed, work)
    samples, skipped = _measure(ds, fam, m, p, augment, seed, work)
    try:
        q = train_qnet(samples, fam, m.name, p.name, alpha=alpha)
        q.info.update({"n_images": len(ds) - len(skipped), "augment": augment, "seed": seed})
        save_qnet(q, out)
    except ValueError as e:  # e.g. too few samples left after unreadable images
        raise _fail(str(e)) from None
    except OSError as e:
        raise _fail(f"writing {display(out)}: {e.strerror or e}") from None
    err.print(f"{len(samples)} samples from {len(ds) - len(skipped)} design images; wrote {display(out)} "
              f"(samples kept in {display(work)})", highlight=False)  # fmt: skip


def _qnet_inputs(data, family, limit, augment, model, probe, device, seed, work):
    """(family, design images, classifier, probe), and --work's recipe written or checked: a resumed run
    must have made its samples the same way."""
    from dnnjpeg._fs import display, read_json
    from dnnjpeg._io import atomic_write_text
    from dnnjpeg.data import discover
    from dnnjpeg.families import parse_family
    from dnnjpeg.models import ModelUnavailableError, load_model
    from dnnjpeg.pipeline import resolve_device

    try:
        fam = parse_family(family)
        ds = discover(data).subset("design", limit)
        if len(ds) == 0:
            raise ValueError(f"{display(data)}: no images in the design split")
        if len(ds) * (1 + augment) < 2:
            raise ValueError(
                f"{len(ds)} design image × {1 + augment} sample: a QNet needs at least 2 samples (raise --augment)"
            )
        m, p = load_model(model).to(resolve_device(device)), load_model(probe)
        recipe = {"format": "dnnjpeg.qnet-samples/1", "model": m.name, "probe": p.name,
                  "family": [t.to_dict() for t in fam.members], "subsamplings": list(fam.subsamplings),
                  "augment": augment, "seed": seed, "images": [str(r.path.name) for r in ds.records]}  # fmt: skip
        work.mkdir(parents=True, exist_ok=True)
        if not work.is_dir() or work.is_symlink():
            raise ValueError(f"--work {display(work)}: not a folder")
        manifest = work / "recipe.json"
        if not manifest.exists():
            atomic_write_text(manifest, json.dumps(recipe))
        elif read_json(manifest) != recipe:
            raise ValueError(
                f"--work {display(work)} holds samples made another way (model, probe, family, augment, seed "
                "or images differ): give another --work folder"
            )
    except (ValueError, FileNotFoundError, ModelUnavailableError) as e:
        raise _fail(str(e)) from None
    except OSError as e:
        raise _fail(f"--work {display(work)}: {e.strerror or e}") from None
    return fam, ds, m, p


def _measure(ds, fam, m, p, augment: int, seed: int, work: Path):
    """Every design image's samples (kept in --work as they finish), with a progress bar; the images
    that could not be read are named and skipped."""
    from dnnjpeg._fs import display
    from dnnjpeg.qnet import make_samples

    skipped = []
    try:
        with progress_bar("{task.description}", err) as bar:
            t = bar.add_task("measuring members", total=len(ds))
            samples = make_samples(
                [r.path for r in ds.records], fam, m, p, augment, seed, progress=lambda k: bar.advance(t, k),
                cache=work, on_error=lambda f, e: skipped.append((str(f), f"{type(e).__name__}: {e}")),
                on_note=lambda msg: err.print(f"[yellow]note[/yellow] {escape(msg)}", highlight=False),
            )  # fmt: skip
    except ValueError as e:
        raise _fail(str(e)) from None
    except OSError as e:
        raise _fail(f"--work {display(work)}: {e.strerror or e}") from None
    for f, msg in skipped:
        err.print(f"[yellow]skipped[/yellow] {escape(display(f))}: {escape(msg)}", highlight=False)
    return samples, skipped


@qnet_app.command("train-tables")
def qnet_train_tables(
    data: Annotated[Path, _O("--data", help="Image folder; only its design split is used (no labels needed).")],
    out: Annotated[Path, _O("--out", help="Where the table generator goes.")] = Path("tablenet.pt"),
    model: Annotated[str, _O("--model", help="The classifier (frozen) it is trained against.")] = "efficientnet-lite0",
    preprocess: Annotated[str | None, _O("--preprocess", help=_PREPROCESS_HELP)] = None,
    epochs: Annotated[int, _O("--epochs", help="Passes over the design images.")] = 6,
    limit: Annotated[int | None, _O("--limit", help="At most this many design images.")] = None,
    seed: Annotated[int, _O("--seed", help="Seed of the augmentations and of training.")] = 0,
    per_image: Annotated[bool, _O("--per-image/--global", help="--global: only the λ-indexed sweep (control).")] = True,
    overwrite: Annotated[bool, _O("--overwrite", help=_OVERWRITE_HELP)] = False,
) -> None:
    """Train a network that gives each image its own quantization tables (the seed's literal form):
    thumbnail + λ → 128 steps, end to end through the differentiable codec and the rate model, the
    classifier frozen, at its input geometry. A run killed and started again with the same --out
    resumes after its last finished epoch (OUT + '.ckpt')."""
    import numpy as np

    from dnnjpeg._fs import display
    from dnnjpeg.codec import load_image
    from dnnjpeg.data import discover
    from dnnjpeg.models import ModelUnavailableError, load_model
    from dnnjpeg.tablenet import CHECKPOINT_KEYS, save_tablenet, train_tablenet

    if epochs < 1 or (limit is not None and limit < 1):
        raise _fail("--epochs and --limit must be ≥ 1")
    _out_file(out, [data], overwrite)
    ck = _checkpoint(out.with_name(out.name + ".ckpt"), [data], CHECKPOINT_KEYS)
    try:
        ds = discover(data).subset("design", limit)
        if len(ds) == 0:
            raise ValueError(f"{display(data)}: no images in the design split")
        m = load_model(_model_name(model, preprocess))
    except (ValueError, FileNotFoundError, ModelUnavailableError) as e:
        raise _fail(str(e)) from None
    crops, _ = _read_images(ds.records, lambda p: m.preprocess.geometry(load_image(p, "RGB")))
    if not crops:
        raise _fail(f"{display(data)}: no readable design images")
    try:
        with progress_bar("{task.description}", err) as bar:
            t = bar.add_task("training", total=epochs)
            tn = train_tablenet(
                np.stack(crops), m, epochs=epochs, seed=seed, per_image=per_image, checkpoint=ck,
                progress=lambda e, loss: bar.update(t, completed=e, description=f"training (loss {loss:.4f})"),
            )  # fmt: skip
        save_tablenet(tn, out)
    except OSError as e:
        raise _fail(f"writing {display(out)}: {e.strerror or e}") from None
    h = tn.history[-1]
    err.print(f"{len(crops)} design images, {epochs} epochs: loss {h['loss']:.4f} (KL {h['kl']:.4f} nats, "
              f"≈{h['est_bpp']:.2f} bpp); wrote {display(out)}", highlight=False)  # fmt: skip
