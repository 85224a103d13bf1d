"""``train``: small networks with and without the JPEG layer, or on coefficients."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from dnnjpeg.cli.common import (
    _fail,
    err,
)  # fmt: skip


def train(
    data: Path = typer.Argument(
        ..., help="Folder with train/ and test/ ImageFolder trees (root/<class>/<image>), equal-size images."
    ),
    jpeg_layer: bool = typer.Option(
        False, "--jpeg-layer", help="Put a trainable JPEG layer (JPEG-DL) in front of the network."
    ),
    compare: bool = typer.Option(
        False, "--compare", help="Train with and without the layer for every seed and compare."
    ),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds, e.g. 0,1,2."),
    epochs: int = typer.Option(6, "--epochs"),
    batch_size: int = typer.Option(128, "--batch-size"),
    lr: float = typer.Option(0.1, "--lr", help="Network SGD peak learning rate (one-cycle)."),
    width: int = typer.Option(16, "--width", help="ResNet width of the first stage."),
    blocks: int = typer.Option(1, "--blocks", help="Basic blocks per stage (1 → ResNet-8)."),
    layer_lr: float = typer.Option(0.003, "--layer-lr", help="Adam learning rate of the JPEG layer's steps."),
    layer_init: str = typer.Option("mean_abs", "--layer-init", help="mean_abs | standard."),
    layer_quality: int = typer.Option(50, "--layer-quality", help="IJG quality of the layer's initial (mean) step."),
    limit_per_class: int | None = typer.Option(
        None, "--limit-per-class", help="Use at most N training images per class."
    ),
    input_kind: str = typer.Option(
        "pixels",
        "--input",
        help="pixels (decoded images, ResNet-8) or dct (the JPEG files' own coefficients, no "
        "decoding: a ResNet on the 8×8 block grid; 4:2:0 and 4:4:4 files, gray as zero chroma).",
    ),
    frequencies: int | None = typer.Option(
        None, "--frequencies", help="With --input dct: keep the first N luma and N/4 chroma frequencies (zig-zag)."
    ),
    dct_width: int = typer.Option(64, "--dct-width", help="With --input dct: channels of the first stage."),
    out: Path = typer.Option(Path("train-out"), "--out"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace results in an --out dnnjpeg did not make."),
) -> None:
    """Train a small ResNet on an ImageFolder dataset, optionally with the JPEG-DL layer, or a
    frequency network on the files' DCT coefficients (--input dct); writes OUT/results.json (and the
    learned tables per seed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from dnnjpeg._fs import display, prepare_output_folder
    from dnnjpeg._io import atomic_write_text
    from dnnjpeg.nn.train import TrainConfig, load_image_folder, summarize_runs, train_classifier

    try:
        if input_kind == "dct" and (jpeg_layer or compare):
            raise ValueError("--input dct trains a frequency network: --jpeg-layer and --compare are for pixels")
        seed_list = _train_checks(input_kind, frequencies, epochs, batch_size, seeds)
        prepare_output_folder(out, inputs=[data], names=["results.json"], overwrite=overwrite)
        skipped = []

        def skip(p, msg) -> None:
            skipped.append(p)
            err.print(f"[yellow]skipped[/yellow] {escape(display(p))}: {escape(msg)}", highlight=False)

        if input_kind == "dct":
            from dnnjpeg.dct.nets import load_dct_folder

            tr = load_dct_folder(data / "train", limit_per_class=limit_per_class, on_error=skip)
            te = load_dct_folder(data / "test", on_error=skip)
        else:
            tr = load_image_folder(data / "train", limit_per_class, on_error=skip)
            te = load_image_folder(data / "test", on_error=skip)
        if len(tr[0]) < batch_size:
            raise ValueError(
                f"{display(data / 'train')}: {len(tr[0])} readable training images, fewer than --batch-size "
                f"{batch_size}: lower --batch-size"
            )
    except (ValueError, FileNotFoundError, OSError) as e:
        raise _fail(str(e)) from None
    variants = [False, True] if compare else [jpeg_layer]
    runs = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[msg]}"),
        console=err,
    ) as bar:
        for s in seed_list:
            for v in variants:
                name = f"seed {s} " + ("dct" if input_kind == "dct" else f"{'with' if v else 'without'} layer")
                task = bar.add_task(name, total=epochs, msg="")
                cfg = TrainConfig(
                    epochs=epochs,
                    batch_size=batch_size,
                    lr=lr,
                    width=width,
                    blocks=blocks,
                    seed=s,
                    jpeg_layer=v,
                    layer_lr=layer_lr,
                    layer_init=layer_init,
                    layer_quality=layer_quality,
                    input=input_kind,
                    frequencies=frequencies,
                    dct_width=dct_width,
                )
                r = train_classifier(
                    tr[:2],
                    te[:2],
                    cfg,
                    lambda e, n, rec, t=task: bar.update(
                        t, completed=e, msg=f"loss {rec['train_loss']:.3f} test {rec['test_top1']:.2f}%"
                    ),
                )
                runs.append(r)
                if v:
                    atomic_write_text(out / f"tables-seed{s}.json", json.dumps(r["tables"], indent=1))
    summary = summarize_runs(runs)
    summary["data"] = {
        "root": str(data),
        "train_images": int(len(tr[0])),
        "test_images": int(len(te[0])),
        "classes": tr[2],
    }
    atomic_write_text(out / "results.json", json.dumps({"summary": summary, "runs": runs}, indent=1))
    con = Console()
    for r in runs:
        c = r["config"]
        what = (
            "frequency network" if c.get("input") == "dct" else f"{'with   ' if c['jpeg_layer'] else 'without'} layer"
        )
        con.print(
            f"seed {c['seed']} {what}: test top-1 {r['test_top1']:.2f}% ({r['wall_seconds']:.0f} s)", highlight=False
        )
    if "difference" in summary:
        d = summary["difference"]
        con.print(
            f"with − without: {d['mean']:+.2f} points, 95% t-interval [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}] over "
            f"{d['n']} seeds",
            highlight=False,
        )
    err.print(f"wrote {out / 'results.json'}")


def _train_checks(input_kind: str, frequencies: int | None, epochs: int, batch_size: int, seeds: str) -> list[int]:
    """The seeds of ``train``, after refusing settings that cannot train (ValueError, before any reading)."""
    if input_kind not in ("pixels", "dct"):
        raise ValueError(f"--input must be pixels or dct, got {input_kind!r}")
    if frequencies is not None and input_kind != "dct":
        raise ValueError("--frequencies selects coefficient channels: it is for --input dct")
    if frequencies is not None and not 1 <= frequencies <= 64:
        raise ValueError(f"--frequencies must be 1..64 (luma frequencies kept, zig-zag), got {frequencies}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"--epochs and --batch-size must be ≥ 1, got {epochs} and {batch_size}")
    try:
        return [int(x) for x in seeds.split(",") if x.strip()] or [0]
    except ValueError:
        raise ValueError(f"--seeds {seeds!r}: comma-separated integers, e.g. 0,1,2") from None
