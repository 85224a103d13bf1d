"""``train``: small networks with and without the JPEG layer, or on coefficients."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dnnjpeg.cli.common import _fail, err, progress_bar

_Data = Annotated[
    Path,
    typer.Argument(help="Folder with train/ and test/ ImageFolder trees (root/<class>/<image>), equal-size images."),
]
_Layer = Annotated[bool, typer.Option("--jpeg-layer", help="Put a trainable JPEG layer (JPEG-DL) in front.")]
_Compare = Annotated[bool, typer.Option("--compare", help="Train with and without the layer for every seed.")]
_Seeds = Annotated[str, typer.Option("--seeds", help="Comma-separated seeds, e.g. 0,1,2.")]
_Lr = Annotated[float, typer.Option("--lr", help="Network SGD peak learning rate (one-cycle).")]
_Width = Annotated[int, typer.Option("--width", help="ResNet width of the first stage.")]
_Blocks = Annotated[int, typer.Option("--blocks", help="Basic blocks per stage (1 → ResNet-8).")]
_LayerLr = Annotated[float, typer.Option("--layer-lr", help="Adam learning rate of the JPEG layer's steps.")]
_LayerInit = Annotated[str, typer.Option("--layer-init", help="mean_abs | standard.")]
_LayerQ = Annotated[int, typer.Option("--layer-quality", help="IJG quality of the layer's initial (mean) step.")]
_Limit = Annotated[int | None, typer.Option("--limit-per-class", help="Use at most N training images per class.")]
_Input = Annotated[
    str,
    typer.Option(
        "--input",
        help="pixels (decoded images, ResNet-8) or dct (the JPEG files' own coefficients, no decoding: a ResNet on "
        "the 8×8 block grid; every chroma layout brought to 4:2:0, gray as zero chroma).",
    ),
]
_Freqs = Annotated[
    int | None,
    typer.Option("--frequencies", help="With --input dct: keep the first N luma and N/4 chroma frequencies."),
]
_DctWidth = Annotated[int, typer.Option("--dct-width", help="With --input dct: channels of the first stage.")]
_Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace results in an --out dnnjpeg did not make.")]


def train(
    data: _Data,
    jpeg_layer: _Layer = False,
    compare: _Compare = False,
    seeds: _Seeds = "0",
    epochs: Annotated[int, typer.Option("--epochs")] = 6,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 128,
    lr: _Lr = 0.1,
    width: _Width = 16,
    blocks: _Blocks = 1,
    layer_lr: _LayerLr = 0.003,
    layer_init: _LayerInit = "mean_abs",
    layer_quality: _LayerQ = 50,
    limit_per_class: _Limit = None,
    input_kind: _Input = "pixels",
    frequencies: _Freqs = None,
    dct_width: _DctWidth = 64,
    out: Annotated[Path, typer.Option("--out")] = Path("train-out"),
    overwrite: _Overwrite = False,
) -> None:
    """Train a small ResNet on an ImageFolder dataset, optionally with the JPEG-DL layer, or a
    frequency network on the files' DCT coefficients (--input dct); writes OUT/results.json (and the
    learned tables per seed)."""
    from dnnjpeg._fs import prepare_output_folder
    from dnnjpeg.nn.train import TrainConfig

    try:
        if input_kind == "dct" and (jpeg_layer or compare):
            raise ValueError("--input dct trains a frequency network: --jpeg-layer and --compare are for pixels")
        seed_list = _train_checks(input_kind, frequencies, epochs, batch_size, seeds)
        prepare_output_folder(out, inputs=[data], names=["results.json"], overwrite=overwrite, create=False)
        tr, te = _load(data, input_kind, limit_per_class, batch_size)
        prepare_output_folder(out, inputs=[data], names=["results.json"], overwrite=overwrite)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise _fail(str(e)) from None
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, width=width, blocks=blocks, layer_lr=layer_lr,
                      layer_init=layer_init, layer_quality=layer_quality, input=input_kind, frequencies=frequencies,
                      dct_width=dct_width)  # fmt: skip
    runs = _run_all(tr, te, cfg, seed_list, [False, True] if compare else [jpeg_layer], out)
    _write_and_report(runs, data, tr, te, out)


def _load(data: Path, input_kind: str, limit_per_class: int | None, batch_size: int):
    """The train and test sets, every file that cannot be read named on its own line."""
    from dnnjpeg._fs import display
    from dnnjpeg.nn.train import load_image_folder

    def skip(p, msg) -> None:
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
    return tr, te


def _run_all(tr, te, cfg, seeds: list[int], variants: list[bool], out: Path) -> list[dict]:
    """One run per seed and variant (with / without the layer), a progress bar each; learned tables saved."""
    from dnnjpeg._io import atomic_write_text
    from dnnjpeg.nn.train import train_classifier

    runs = []
    with progress_bar("{task.description}", err, "{task.fields[msg]}") as bar:
        for s in seeds:
            for v in variants:
                name = f"seed {s} " + ("dct" if cfg.input == "dct" else f"{'with' if v else 'without'} layer")
                task = bar.add_task(name, total=cfg.epochs, msg="")

                def tick(e, n, rec, t=task):
                    bar.update(t, completed=e, msg=f"loss {rec['train_loss']:.3f} test {rec['test_top1']:.2f}%")

                r = train_classifier(tr[:2], te[:2], replace(cfg, seed=s, jpeg_layer=v), tick)
                runs.append(r)
                if v:
                    atomic_write_text(out / f"tables-seed{s}.json", json.dumps(r["tables"], indent=1))
    return runs


def _write_and_report(runs: list[dict], data: Path, tr, te, out: Path) -> None:
    from dnnjpeg._io import atomic_write_text
    from dnnjpeg.nn.train import summarize_runs

    summary = summarize_runs(runs)
    summary["data"] = {"root": str(data), "train_images": int(len(tr[0])), "test_images": int(len(te[0])),
                       "classes": tr[2]}  # fmt: skip
    atomic_write_text(out / "results.json", json.dumps({"summary": summary, "runs": runs}, indent=1))
    con = Console()
    for r in runs:
        c = r["config"]
        what = (
            "frequency network" if c.get("input") == "dct" else f"{'with   ' if c['jpeg_layer'] else 'without'} layer"
        )
        con.print(f"seed {c['seed']} {what}: test top-1 {r['test_top1']:.2f}% ({r['wall_seconds']:.0f} s)",
                  highlight=False)  # fmt: skip
    if "difference" in summary:
        d = summary["difference"]
        con.print(f"with − without: {d['mean']:+.2f} points, 95% t-interval [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}] "
                  f"over {d['n']} seeds", highlight=False)  # fmt: skip
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
