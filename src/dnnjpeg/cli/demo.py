"""``demo``: the ladder and a designed table against accuracy on bundled photographs."""

from __future__ import annotations

from pathlib import Path

import typer

from dnnjpeg.cli.common import (
    _EVAL_OUTPUTS,
    _out_folder,
    err,
)  # fmt: skip
from dnnjpeg.cli.evaluation import EvaluationSettings, _run_evaluation


def demo(
    data: Path | None = typer.Option(None, "--data", help="Your own image folder instead of the built-in photographs."),
    out: Path = typer.Option(Path("demo-out"), "--out", help="Output folder."),
    model: str = typer.Option("efficientnet-lite0", "--model", help="The classifier (a name or FILE.pt/.onnx)."),
    limit: int | None = typer.Option(None, "--limit", help="Use at most this many images (first by path)."),
) -> None:
    """The standard libjpeg ladder (4:2:0 and 4:4:4) and a DeepN-JPEG table against accuracy, each
    also chosen per image by the network (least KL + λ·KiB), on scikit-image's bundled
    photographs (scored by agreement with the pristine prediction) or on ``--data`` (held-out
    eval split when it has 50+ images); report in ``--out``."""
    from dnnjpeg.data import discover
    from dnnjpeg.demo import materialize_samples
    from dnnjpeg.design import DesignProblem
    from dnnjpeg.design import design as run_design
    from dnnjpeg.models import load_model

    _out_folder(out, [data] if data is not None else [], ("deepn.json", "compressed", *_EVAL_OUTPUTS), False)
    src = data if data is not None else materialize_samples(out / "images")
    ds = discover(src)
    # DeepN needs only DCT statistics of the design split (no model, no trials).
    table = run_design("deepn", DesignProblem(ds, load_model(model), "input", "4:2:0")).save(out / "deepn.json")
    n_design, n_eval = len(ds.subset("design")), len(ds.subset("eval"))
    split = "eval" if n_eval >= 50 else "all"
    if split == "all":
        err.print(
            f"[yellow]note:[/yellow] only {n_eval} eval-split images: the demo reports on all {len(ds)} images, "
            f"including the {n_design} whose statistics built the deepn table. For held-out numbers use --data "
            "with a larger folder (or benchmarks/bench_design.py).",
            highlight=False,
        )
    from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB

    result = _run_evaluation(
        EvaluationSettings(
            data=src, codecs=["standard@4:2:0", "standard@4:4:4", f"tables:{table}@4:2:0"], out=out, model=model,
            split=split, limit=limit, select=list(DEFAULT_LAMBDAS_NATS_PER_KIB),
        )
    )  # fmt: skip
    _conclude(result, src, out, model)


def _conclude(result: dict, src: Path, out: Path, model: str) -> None:
    """What the numbers can say; then the photographs compressed by the network's choice and checked,
    and the two commands to run on one's own folder."""
    from rich.console import Console
    from rich.markup import escape

    from dnnjpeg.check import check_tree
    from dnnjpeg.choosers import make_chooser
    from dnnjpeg.compress import compress_tree
    from dnnjpeg.demo import conclusions
    from dnnjpeg.models import load_model

    con = Console(soft_wrap=True)
    for line in conclusions(result):
        con.print(escape(line), highlight=False)
    dst = out / "compressed"
    m = load_model(model)
    ch = make_chooser(family=["preset:efficientnet-lite0-420-original-sweep"], model=m, lam=0.002, search="climb")
    rep = compress_tree(src, dst, ch, workers=1, overwrite=True)
    con.print(
        f"compress --choose climb: {rep.written} files, {rep.bytes_before:,} → {rep.bytes_after:,} bytes "
        f"into {escape(str(dst))} (from lossless PNGs: the ratio is against PNG, not JPEG)",
        highlight=False,
    )
    con.print(escape(check_tree(src, dst, m, n_boot=200).verdict()), highlight=False)
    con.print(
        "On your own folder (every file stays an ordinary JPEG; nothing in SRC is changed):\n"
        "  .venv/bin/dnnjpeg compress YOUR_FOLDER YOUR_FOLDER-small --choose climb\n"
        "  .venv/bin/dnnjpeg check YOUR_FOLDER YOUR_FOLDER-small",
        highlight=False,
    )
