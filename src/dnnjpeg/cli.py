"""The ``dnnjpeg`` command line: argument parsing only; the work lives in the library."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from dnnjpeg._runtime import tune_malloc
from dnnjpeg.engine import EngineUnavailableError, make_engine

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


def _out_folder(out: Path, inputs, names, overwrite: bool, flag: str = "--out", mark: bool = True) -> Path:
    """The one rule for an output folder (:func:`dnnjpeg._fs.prepare_output_folder`), exit 2 with the
    reason; ``mark=False`` checks only (a folder kept for resuming, such as qnet's --work)."""
    from dnnjpeg._fs import UnsafeOutputError, check_output_file, prepare_output_folder

    try:
        if not mark:
            if out.is_dir() and not out.is_symlink():
                return check_output_file(out / "x", inputs=inputs, overwrite=True, flag=flag).parent
            return check_output_file(out, inputs=inputs, overwrite=False, flag=flag)
        return prepare_output_folder(out, inputs=inputs, names=names, overwrite=overwrite, flag=flag)
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


@app.command()
def info(
    files: list[Path] = typer.Argument(..., help="JPEG files or folders (walked recursively)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line instead of text."),
    tables: bool = typer.Option(False, "--tables", help="Also print the quantization tables (text mode)."),
) -> None:
    """Read JPEG headers (no decoding): size, subsampling, IJG quality, coding, color, EXIF.

    One line per file. Files that fail are reported on stderr and the rest go on;
    the exit code is 1 when any file failed.
    """
    from dnnjpeg._fs import display
    from dnnjpeg.codec import JpegError, estimate_quality, parse_header

    failed = 0

    def report(path: str, name: str, msg: str) -> None:
        if as_json:
            print(json.dumps({"path": display(path), "error": name, "message": msg}))
        else:
            err.print(f"[red]{name}[/red] {escape(msg)}", highlight=False, soft_wrap=True)

    for path, why in _expand(files):
        if why is not None:
            failed += 1
            report(path, "NotRead", f"{display(path)}: {why}")
            continue
        try:
            h = parse_header(path)
            q = estimate_quality(h) if h.luma_table is not None else None
        except (JpegError, OSError) as e:
            failed += 1
            msg = str(e) if isinstance(e, JpegError) or e.filename is None else f"{display(path)}: {e.strerror or e}"
            report(path, type(e).__name__, msg)
            continue
        if as_json:
            d = h.to_dict()
            d["path"] = display(path)
            d["quality"] = None if q is None else {"quality": q.quality, "exact": q.exact, "distance": q.distance}
            print(json.dumps(d))
            continue
        coding = h.mode + ("/arithmetic" if h.arithmetic else "")
        extras = [x for x in ("JFIF" if h.jfif else "", "EXIF" if h.exif else "") if x]
        if h.orientation not in (None, 1):
            extras.append(f"orientation={h.orientation}")
        if h.restart_interval:
            extras.append(f"restart={h.restart_interval}")
        if h.eoi_found is False:
            extras.append("NO-EOI(truncated?)")
        bits = "/".join(f"{h.qtable_bits[k]}" for k in sorted(h.qtable_bits))
        print(
            f"{display(path)}  {h.width}x{h.height}  {h.subsampling}  q={q}  {coding}  {h.precision}-bit  "
            f"{h.color}  dqt={len(h.qtables)}x{bits}bit  {h.file_size}B  {' '.join(extras)}".rstrip()
        )
        if tables:
            for slot, t in sorted(h.qtables.items()):
                print(f"  table {slot}:")
                for row in t:
                    print("   " + " ".join(f"{int(x):3d}" for x in row))
    if failed:
        err.print(f"{failed} file(s) failed")
        raise typer.Exit(1)


_ENGINE_HELP = (
    "Where the work runs: local (a process pool on this machine, the default) or ray (a Ray cluster: "
    "--address HOST:PORT of its head, or a local one started here; pip install 'dnnjpeg[ray]')."
)
_ADDRESS_HELP = "With --engine ray: the cluster's head (HOST:PORT, or auto); default a local cluster."
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


@dataclass
class EvaluationSettings:
    """One ``evaluate`` run as the command line describes it (paths and codec texts; checked by
    :func:`_run_evaluation` before the model loads)."""

    data: Path
    codecs: list[str]
    out: Path
    model: str = "efficientnet-lite0"
    labels: Path | None = None
    scales: str | None = None
    subsampling: str = "4:2:0"
    at: str = "input"
    split: str = "all"
    limit: int | None = None
    n_boot: int = 1000
    seed: int = 0
    batch_size: int = 32
    workers: int | None = None
    optimize: bool = True
    reference: str | None = None
    target_drop: float = 1.0
    select: list[float] | None = None
    engine: str = "local"
    address: str | None = None
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False


#: evaluate's finished chunks inside --out, kept until the outputs are written (what --resume reads)
EVAL_CHUNKS = ".dnnjpeg-chunks"


def _run_evaluation(settings: EvaluationSettings) -> dict:
    """Check the settings, evaluate, write the outputs, and print what a person needs."""
    import shutil

    st = settings
    from dnnjpeg._fs import display
    from dnnjpeg.data import discover
    from dnnjpeg.evaluate import evaluate, parse_codec, write_outputs
    from dnnjpeg.evaluate.spec import DEFAULT_SCALES
    from dnnjpeg.models import load_model

    # Everything that can be checked is checked before the model loads.
    if st.batch_size < 1:
        raise ValueError(f"--batch-size must be ≥ 1, got {st.batch_size}")
    if st.n_boot < 0:
        raise ValueError(f"--bootstrap must be ≥ 0 resamples (0 = no intervals), got {st.n_boot}")
    if st.limit is not None and st.limit < 1:
        raise ValueError(f"--limit must be ≥ 1, got {st.limit}")
    if st.workers is not None and st.workers < 0:
        raise ValueError(f"--workers must be ≥ 0, got {st.workers}")
    from dnnjpeg._fs import prepare_output_folder

    # ValueError: the command line prints it as one line
    try:
        prepare_output_folder(st.out, inputs=[st.data, st.labels], names=_EVAL_OUTPUTS, overwrite=st.overwrite)
    except OSError as e:
        raise ValueError(str(e)) from None
    try:
        sc = [float(x) for x in st.scales.split(",")] if st.scales else list(DEFAULT_SCALES)
    except ValueError:
        raise ValueError(f"--scales {st.scales!r}: give comma-separated numbers, e.g. 0.5,1,2") from None
    if any(not (0 < x < float("inf")) for x in sc):
        raise ValueError(f"--scales {st.scales!r}: every scale must be a finite number > 0")
    curves = [parse_codec(c, st.subsampling, sc, st.optimize) for c in st.codecs]
    if st.at != "original" and any(c.qnet is not None for c in curves):
        raise ValueError("--codec qnet:…: a QNet chooses among JPEGs of the stored image; use --at original")
    ds = discover(st.data, st.labels).subset(st.split, st.limit)
    if len(ds) == 0:
        raise ValueError(f"{display(st.data)}: no images in split {st.split!r}")
    from dnnjpeg.pipeline import resolve_device

    resolve_device(st.device)  # a bad device fails before the model loads
    engine = make_engine(st.engine, st.address)
    model = _on_device(load_model(st.model), st.device, engine)
    cache = st.out / EVAL_CHUNKS
    if cache.is_symlink() or (cache.exists() and not cache.is_dir()):
        raise ValueError(f"{display(cache)}: expected evaluate's own folder of finished chunks, found something else")
    if cache.exists() and not st.resume:
        shutil.rmtree(cache)  # a fresh run: an earlier run's chunks are not reused
    cache.mkdir(parents=True, exist_ok=True)
    err.print(
        f"{len(ds)} images ({ds.layout}, split {st.split}) · {model.name} · JPEG at {st.at} · "
        f"{sum(len(c.points) for c in curves)} codec settings"
    )
    result = evaluate(
        ds,
        model,
        curves,
        at=st.at,
        reference=st.reference,
        target_drop=st.target_drop,
        n_boot=st.n_boot,
        seed=st.seed,
        batch_size=st.batch_size,
        workers=st.workers,
        split=st.split,
        select=st.select,
        engine=engine,
        cache=cache,
    )
    paths = write_outputs(result, st.out)
    shutil.rmtree(cache, ignore_errors=True)  # the outputs hold everything now
    for f in result["failures"]:
        err.print(f"[yellow]skipped[/yellow] {escape(display(f[0]))}: {escape(f[1])}", highlight=False)
    for n in result.get("notes", []):
        err.print(f"[yellow]note[/yellow] {escape(n)}", highlight=False)
    _print_summary(result)
    err.print(f"wrote {', '.join(display(p) for p in paths.values())}", highlight=False)
    return result


def _print_summary(result: dict) -> None:
    from rich.table import Table

    metric = result["settings"]["accuracy_metric"]
    t = Table(title=f"pristine {metric} {result['pristine'][metric]:.1f}%")
    for col in ("curve", "setting", "bpp", metric, "KL"):
        t.add_column(col)
    for c in result["curves"]:
        for p in c["points"]:
            t.add_row(c["name"], p["label"], f"{p['bpp']:.3f}", f"{p[metric]:.1f}", f"{p['kl']:.4f}")
    Console().print(t)
    for k in result["comparisons"]:
        lo, hi = k["bd_rate_ci"]
        kl = k.get("bd_rate_kl", float("nan"))
        kl_txt = "" if kl != kl else f"; on KL {kl:+.1f}% [{k['bd_rate_kl_ci'][0]:+.1f}, {k['bd_rate_kl_ci'][1]:+.1f}]"
        Console().print(
            f"{k['test']} vs {k['reference']}: BD-rate {k['bd_rate']:+.1f}% [{lo:+.1f}, {hi:+.1f}]{kl_txt}",
            highlight=False,
        )


#: survey names at most this many unreadable or non-JPEG files on the terminal (all are in its outputs)
SURVEY_LISTED = 50


@app.command()
def survey(
    trees: list[Path] = typer.Argument(
        ..., help="Folders (or files) to survey; several trees are compared side by side."
    ),
    out: Path = typer.Option(Path("survey-out"), "--out", help="Output folder."),
    label: list[str] | None = typer.Option(
        None, "--label", help="Name of each tree, in order (default: folder names)."
    ),
    workers: int | None = typer.Option(None, "--workers", help="Processes (default: all cores)."),
    csv: bool = typer.Option(False, "--csv", help="Also write survey.csv."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted survey from its saved parts."),
    umap: bool = typer.Option(True, "--umap/--no-umap", help="Compute the UMAP projection figures."),
    engine: str = typer.Option("local", "--engine", help=_ENGINE_HELP),
    address: str | None = typer.Option(None, "--address", help=_ADDRESS_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace reports in an --out dnnjpeg did not make."),
) -> None:
    """What JPEG settings does a dataset really hold? Reads headers only: quality, subsampling,
    sizes, grayscale, progressive, CMYK, non-JPEG files. Parquet, summary.json, plots, report.html."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dnnjpeg._fs import display
    from dnnjpeg.survey import PARTS_DIR, summarize, write_survey
    from dnnjpeg.survey import survey as run_survey

    if workers is not None and workers < 1:
        raise _fail(f"--workers must be ≥ 1, got {workers}")
    try:
        eng = make_engine(engine, address, workers)
    except (ValueError, EngineUnavailableError) as e:
        raise _fail(str(e)) from None
    created = not out.exists()
    names = ("survey.parquet", "survey.csv", "summary.json", "report.html", "quality.png", "sizes.png")
    _out_folder(out, trees, names, overwrite)
    t0 = time.perf_counter()
    cols = [
        TextColumn("surveying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*cols, console=err) as bar:
        task = bar.add_task("", total=None, rate="")

        def tick(k: int) -> None:
            bar.advance(task, k)
            done = bar.tasks[0].completed
            bar.update(task, rate=f"{done / max(1e-9, time.perf_counter() - t0):,.0f} files/s")

        try:
            df = run_survey(
                trees, label, workers=workers, parts_dir=out / PARTS_DIR, resume=resume, progress=tick, engine=eng
            )
        except (FileNotFoundError, ValueError, EngineUnavailableError) as e:
            raise _fail(str(e)) from None
        except OSError as e:  # a full disk while saving parts: what was saved stays for --resume
            raise _fail(
                f"saving survey parts in {display(out / PARTS_DIR)}: {e.strerror or e}; "
                "free space and run again with --resume"
            ) from None
    import shutil

    if len(df) == 0:
        shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)  # nothing of the user's: we made it a moment ago
        raise _fail(f"no files found in {', '.join(display(t) for t in trees)}: nothing to survey")
    dt = time.perf_counter() - t0
    err.print(f"{len(df):,} files in {dt:.1f} s ({len(df) / max(dt, 1e-9):,.0f} files/s); writing outputs")
    try:
        written = write_survey(df, out, csv=csv, umap=umap)
    except OSError as e:
        raise _fail(
            f"writing the survey outputs to {display(out)}: {e.strerror or e}. Outputs already complete "
            f"are in place; the scan is kept in {PARTS_DIR}/: free space and run again with --resume"
        ) from None
    shutil.rmtree(out / PARTS_DIR, ignore_errors=True)  # the final outputs now hold everything
    s = summarize(df)
    for name, t in s["trees"].items():
        Console().print(
            f"[bold]{escape(name)}[/bold]: {t['n_files']:,} files, {t['n_jpeg']:,} JPEGs; subsampling "
            f"{t['subsampling']}; "
            f"grayscale {t['grayscale']}; most common quality {t['quality_most_common']}; errors "
            f"{escape(str(t['errors'] or 'none'))}",
            highlight=False,
        )
    bad = df[~df["ok"].fillna(False).astype(bool)]
    for _, row in bad.head(SURVEY_LISTED).iterrows():
        err.print(f"[yellow]{escape(str(row['error']))}[/yellow] {escape(str(row['message']))}", highlight=False)
    if len(bad) > SURVEY_LISTED:
        err.print(
            f"… and {len(bad) - SURVEY_LISTED:,} more files that are not readable JPEGs (survey.parquet, report.html)"
        )
    err.print(f"wrote {len(written)} files to {display(out)}/ (open {display(out / 'report.html')})", highlight=False)


@app.command()
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


def _design_command(
    method: str = typer.Option(..., "--method", help="The designer (see the list above)."),
    data: Path = typer.Option(..., "--data", help="Image folder; only its design split is used to design."),
    out: Path = typer.Option(Path("table.json"), "--out", help="Where the designed table JSON goes."),
    model: str = typer.Option("efficientnet-lite0", "--model"),
    at: str = typer.Option("input", "--at"),
    subsampling: str = typer.Option("4:2:0", "--subsampling", help="4:2:0 or 4:4:4: part of the design."),
    budget: int = typer.Option(60, "--budget", help="Table measurements a search may spend."),
    seed: int = typer.Option(0, "--seed"),
    trial_images: int = typer.Option(200, "--trial-images", help="Design images per measurement."),
    objective: str = typer.Option(
        "kl", "--objective", help="kl (smooth, default) | top1 | pareto (bayes: Pareto set)."
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL, e.g. sqlite:///study.db (resumable)."
    ),
    labels: Path | None = typer.Option(None, "--labels"),
    report: Path | None = typer.Option(
        None, "--report", help="Re-measure on the eval split against the ladder; report folder."
    ),
    eval_limit: int | None = typer.Option(None, "--eval-limit", help="At most this many eval images for --report."),
    overwrite: bool = typer.Option(False, "--overwrite", help=_OVERWRITE_HELP),
    **given,
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from dnnjpeg._fs import display
    from dnnjpeg.data import discover
    from dnnjpeg.design import DesignProblem, designers
    from dnnjpeg.design import design as run_design
    from dnnjpeg.models import ModelUnavailableError, load_model

    _out_file(out, [data, labels], overwrite)
    if report is not None:
        _out_folder(report, [data, labels], _EVAL_OUTPUTS, overwrite, "--report")
    try:
        options = _designer_options(designers(), method, {k: v for k, v in given.items() if v is not None})
        if objective == "pareto":
            if method != "bayes":
                raise ValueError("--objective pareto is for --method bayes (a Pareto set of tables)")
            options = replace(options, objective_mode="pareto")
        ds = discover(data, labels)
        m = load_model(model)
        prob = DesignProblem(
            ds, m, at, subsampling, budget, seed, trial_images, "kl" if objective == "pareto" else objective, storage
        )
        with Progress(
            TextColumn(f"design {method}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"),
            console=err,
        ) as bar:
            task = bar.add_task("", total=budget, best="")
            prob.progress = lambda i, n, g: bar.update(task, completed=i, best=f"best gain {g:+.3f}")
            res = run_design(method, prob, options)
    except (ValueError, FileNotFoundError, ModelUnavailableError) as e:
        raise _fail(str(e)) from None
    for f, msg in prob.skipped.items():
        err.print(f"[yellow]skipped[/yellow] {escape(display(f))}: {escape(msg)}", highlight=False)
    try:
        res.save(out)
    except OSError as e:
        raise _fail(f"writing {display(out)}: {e.strerror or e}") from None
    err.print(
        f"{method}: {res.info['trials_used']} measurements on {res.info['trial_images']} design images in "
        f"{res.info['wall_seconds']:.0f} s; wrote {display(out)}",
        highlight=False,
    )
    if report is not None:
        # A designer that returns a family of tables (one per rate) is judged as that family.
        test = f"sweep:{out}" if res.family is not None and len(res.family) >= 2 else f"tables:{out}"
        settings = EvaluationSettings(
            data=data, labels=labels, model=model, codecs=[f"standard@{subsampling}", f"{test}@{subsampling}"],
            subsampling=subsampling, at=at, split="eval", limit=eval_limit, out=report, seed=seed, overwrite=overwrite,
        )  # fmt: skip
        _run_evaluation(settings)


def _designer_options(registry: dict, method: str, given: dict):
    """The chosen designer's options dataclass from the flags given (None = not given).

    Raises ValueError for an unknown method, a flag the method does not take (named, with
    the flags it does take), or a value its kind cannot read.
    """
    import dataclasses

    if method not in registry:
        raise ValueError(f"unknown design method {method!r}; choose from {', '.join(registry)}")
    fields = {f.name: f for f in dataclasses.fields(registry[method].options) if f.metadata.get("cli", True)}
    bad = [k for k in given if k not in fields]
    if bad:
        takes = ", ".join(_flag(k) for k in fields) or "no options of its own"
        raise ValueError(f"{', '.join(_flag(k) for k in bad)}: not an option of {method} (it takes {takes})")
    values = {}
    for k, v in given.items():
        if fields[k].metadata.get("kind") == "floats":
            try:
                values[k] = tuple(float(x) for x in str(v).split(",") if x.strip())
            except ValueError:
                raise ValueError(f"{_flag(k)} {v!r}: give comma-separated numbers, e.g. 0.5,1,2") from None
            if not values[k]:
                raise ValueError(f"{_flag(k)}: give at least one number")
        else:
            values[k] = v
    return registry[method].options(**values)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _register_design_command() -> None:
    """Add ``design`` with one flag per designer option, generated from the registry: each
    flag's help names the methods that take it, and a flag another method does not take is
    refused, not silently dropped."""
    import dataclasses
    import inspect

    from dnnjpeg.design import designers

    registry = designers()
    seen: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for name, d in registry.items():
        for f in dataclasses.fields(d.options):
            if f.metadata.get("cli", True):
                seen.setdefault(f.name, (f, []))[1].append(name)
    types = {"bool": bool | None, "int": int | None, "float": float | None, "str": str | None, "floats": str | None}
    params = [p for p in inspect.signature(_design_command).parameters.values() if p.kind != p.VAR_KEYWORD]
    for name, (f, methods) in seen.items():
        kind = f.metadata["kind"]
        default = f.default if not isinstance(f.default, tuple) else ",".join(f"{x:g}" for x in f.default)
        help_ = f"{f.metadata['help']} ({', '.join(methods)}; default {default})"
        flag = _flag(name) if kind != "bool" else f"{_flag(name)}/--no-{name.replace('_', '-')}"
        opt = typer.Option(None, flag, help=help_, show_default=False)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=types[kind]))
    _design_command.__signature__ = inspect.Signature(params)
    _design_command.__doc__ = (
        "Design quantization tables favorable to a network (design split only); optionally re-measure "
        "them on the held-out eval split against the standard ladder.\n\nMethods:\n\n"
        + "\n\n".join(f"{n}: {d.summary}" for n, d in registry.items())
    )
    app.command("design")(_design_command)


_register_design_command()


@app.command()
def presets(
    name: str | None = typer.Argument(None, help="One preset: its tables, design settings and measured curve."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
    plot: Path | None = typer.Option(
        None, "--plot", help="With NAME: draw its measured curve beside the ladder (PNG)."
    ),
) -> None:
    """The designed tables shipped with dnnjpeg (``--codec preset:NAME``), with what each
    was designed for and its BD-rate against the ladder on the held-out eval split."""
    from dnnjpeg.presets import available_presets, load_preset, preset_info, preset_result, preset_summary

    try:
        rows = [preset_summary(n) for n in ([name] if name else available_presets())]
    except ValueError as e:
        raise _fail(str(e)) from None
    if as_json:
        print(json.dumps(preset_info(name) if name else rows, indent=1))
    else:
        # Plain aligned lines, not a rich table: the names and intervals must not wrap in a pipe or a narrow terminal.
        print(
            "BD-rate: % bits against the standard ladder at equal top-1 (negative = fewer bits); on KL: at equal KL "
            "to the pristine output; held-out eval split, 95% bootstrap intervals; Δtop-1: points at equal rate"
        )
        w = max([len("name")] + [len(r["name"]) for r in rows]) + 1
        print(
            f"{'name':<{w}} {'model':<18} {'at':<8} {'sub':<6} {'method':<11} {'images':>6}  {'BD-rate %':<20} "
            f"{'on KL %':<20} Δtop-1"
        )

        def bd(v, ci):
            return "n/a" if v is None else f"{v:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]"

        for r in rows:
            acc = "n/a" if r["bd_accuracy"] is None else f"{r['bd_accuracy']:+.2f}"
            print(
                f"{r['name']:<{w}} {r['model']!s:<18} {r['at']!s:<8} {r['subsampling']!s:<6} {r['method']!s:<11} "
                f"{r['n_images']!s:>6}  {bd(r['bd_rate'], r['bd_rate_ci']):<20} "
                f"{bd(r['bd_rate_kl'], r['bd_rate_kl_ci']):<20} {acc}"
            )
        for r in rows:
            if r.get("by_rate_bd_rate") is not None:
                print(
                    f"{r['name']}, chosen per image by rate (compress --family preset:{r['name']} --by-rate): BD-rate "
                    f"{bd(r['by_rate_bd_rate'], r['by_rate_bd_rate_ci'])}, on KL {r['by_rate_bd_rate_kl']:+.1f}"
                )
        if name:
            q = load_preset(name)
            for label, table in (("luma", q.luma), ("chroma", q.chroma)):
                print(f"{label} (natural order):")
                for row in table:
                    print("   " + " ".join(f"{int(x):3d}" for x in row))
    if plot is not None:
        if not name:
            err.print("[red]error:[/red] --plot needs a preset NAME", highlight=False)
            raise typer.Exit(2)
        from dnnjpeg.evaluate.report import plot_curves

        err.print(f"wrote {plot_curves(preset_result(name), plot)}")


_AT_HELP = (
    "input: JPEG the model-input crop (camera sends what the net sees); "
    "original: JPEG the stored image, then preprocess."
)


@app.command()
def evaluate(
    data: Path = typer.Option(..., "--data", help="Image folder: class sub-folders, wnid-named files, or unlabeled."),
    model: str = typer.Option(
        "efficientnet-lite0",
        "--model",
        help="efficientnet-lite0/1/2, torchvision:NAME, timm:NAME; dct:FILE (a stem from 'dnnjpeg dct distill') or "
        "dct:efficientnet-lite0 (shipped): lite0 reading each encoded file's own coefficients, no decode (pristine "
        "images through their exact DCT; --at original: the DCT-domain ½/¼ down-scale and a block-grid centre crop).",
    ),
    codec: list[str] = typer.Option(
        ["standard"],
        "--codec",
        help="standard[:Q,...], tables:FILE.json, sweep:FILE.json or preset:NAME, optionally @4:4:4; jpegli[:Q,...]; "
        "qnet:FILE or qnet:preset:NAME (its family and its own per-image choice, --at original). Repeatable.",
    ),
    out: Path = typer.Option(Path("eval-out"), "--out", help="Output folder for results.json, curves.png, report.*"),
    at: str = typer.Option("input", "--at", help=_AT_HELP),
    split: str = typer.Option("all", "--split", help="design | eval | all (deterministic hash of the file name)."),
    labels: Path | None = typer.Option(None, "--labels", help="Labels CSV with columns path,label."),
    scales: str | None = typer.Option(None, "--scales", help="Comma-separated scales that sweep a tables: codec."),
    subsampling: str = typer.Option("4:2:0", "--subsampling", help="Default chroma subsampling for codecs without @."),
    limit: int | None = typer.Option(None, "--limit", help="Use at most this many images (first by path)."),
    n_boot: int = typer.Option(1000, "--bootstrap", help="Paired bootstrap resamples for intervals (0 = none)."),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(32, "--batch-size"),
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="JPEG threads overlapping inference (0 = inline; default: inline on 2 cores, else spare cores).",
    ),
    optimize: bool = typer.Option(True, "--optimize/--no-optimize", help="Optimized Huffman tables (default on)."),
    reference: str | None = typer.Option(
        None, "--reference", help="Curve name to compare against (default: first standard)."
    ),
    target_drop: float = typer.Option(
        1.0, "--target-drop", help="Target accuracy for 'bits needed' = pristine − this."
    ),
    select: bool = typer.Option(
        False,
        "--select",
        help="Also measure each curve's per-image choice by the network "
        "(least KL + λ·KiB per image; what compress --select-model writes), one point per λ.",
    ),
    select_lambdas: str | None = typer.Option(
        None,
        "--select-lambdas",
        help="λ values for --select in nats per KiB, e.g. 0.001,0.01,0.1 (default 16 from 1e-5 to 1).",
    ),
    engine: str = typer.Option("local", "--engine", help=_ENGINE_HELP),
    address: str | None = typer.Option(None, "--address", help=_ADDRESS_HELP),
    device: str = typer.Option("auto", "--device", help=_DEVICE_HELP),
    resume: bool = typer.Option(
        False, "--resume", help="Reuse the chunks of images a killed run into the same --out had finished."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace reports in an --out dnnjpeg did not make."),
) -> None:
    """Rate against accuracy: encode every image with every codec setting, classify, compare.
    Measured chunk by chunk (256 images): memory holds one chunk, whatever the dataset's size."""
    from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB
    from dnnjpeg.models import ModelUnavailableError

    if at not in ("input", "original"):
        raise typer.BadParameter("--at must be input or original")
    lams = None
    if select or select_lambdas:
        try:
            lams = (
                [float(x) for x in select_lambdas.split(",") if x.strip()]
                if select_lambdas
                else list(DEFAULT_LAMBDAS_NATS_PER_KIB)
            )
        except ValueError:
            raise typer.BadParameter(
                f"--select-lambdas {select_lambdas!r}: comma-separated numbers, e.g. 0.001,0.01"
            ) from None
        if not lams or min(lams) < 0:
            raise typer.BadParameter("--select-lambdas: give λ ≥ 0")
    try:
        _run_evaluation(
            EvaluationSettings(
                data=data, codecs=codec, out=out, model=model, labels=labels, scales=scales, subsampling=subsampling,
                at=at, split=split, limit=limit, n_boot=n_boot, seed=seed, batch_size=batch_size, workers=workers,
                optimize=optimize, reference=reference, target_drop=target_drop, select=lams, engine=engine,
                address=address, device=device, resume=resume, overwrite=overwrite,
            )
        )  # fmt: skip
    except (ValueError, FileNotFoundError, ModelUnavailableError, EngineUnavailableError) as e:
        raise _fail(str(e)) from None
    except OSError as e:  # e.g. a full disk: each output is written whole or not at all
        raise _fail(f"writing outputs to {out}: {e.strerror or e}; the outputs already complete are in place") from None


@app.command()
def demo(
    data: Path | None = typer.Option(None, "--data", help="Your own image folder instead of the built-in photographs."),
    out: Path = typer.Option(Path("demo-out"), "--out", help="Output folder."),
    model: str = typer.Option("efficientnet-lite0", "--model"),
    limit: int | None = typer.Option(None, "--limit"),
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

    _out_folder(out, [data] if data is not None else [], ("deepn.json", *_EVAL_OUTPUTS), False)
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

    _run_evaluation(
        EvaluationSettings(
            data=src, codecs=["standard@4:2:0", "standard@4:4:4", f"tables:{table}@4:2:0"], out=out, model=model,
            split=split, limit=limit, select=list(DEFAULT_LAMBDAS_NATS_PER_KIB),
        )
    )  # fmt: skip


@app.command()
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


qnet_app = typer.Typer(
    no_args_is_help=True, help="The task-aware quantization network: choose tables without the classifier."
)
app.add_typer(qnet_app, name="qnet")


@qnet_app.command("train")
def qnet_train(
    data: Path = typer.Option(..., "--data", help="Image folder; only its design split is used (no labels needed)."),
    out: Path = typer.Option(Path("qnet.json"), "--out", help="Where the trained QNet goes (a small JSON file)."),
    model: str = typer.Option("efficientnet-lite0", "--model", help="The classifier whose KL the QNet predicts."),
    family: str = typer.Option(
        "preset:efficientnet-lite0-420-original-sweep", "--family", help="The tables to choose among (a --codec value)."
    ),
    probe: str = typer.Option(
        "efficientnet-lite0@128", "--probe", help="The small network the QNet runs on each image (NAME or NAME@S)."
    ),
    augment: int = typer.Option(
        4, "--augment", help="Augmented copies per design image besides the image itself (crops, flips, re-encodes)."
    ),
    limit: int | None = typer.Option(None, "--limit", help="At most this many design images."),
    alpha: float = typer.Option(10.0, "--alpha", help="Ridge penalty of the predictor (in samples)."),
    seed: int = typer.Option(0, "--seed"),
    work: Path | None = typer.Option(
        None,
        "--work",
        help="Keep each image's measured samples here as they finish; a run killed and started again with "
        "the same folder resumes where it stopped (default: OUT's name + '.samples').",
    ),
    device: str = typer.Option("auto", "--device", help=_DEVICE_HELP + " (the classifier measuring the targets)"),
    overwrite: bool = typer.Option(False, "--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """Train a QNet: the classifier's own KL on every family member of augmented design images is the
    target; the QNet predicts it from one pass of a small probe network, each member's quantization
    error and file size (JPEG of the stored image). Measuring the targets is the slow part (K + 1
    classifier passes per sample): it is kept in --work and resumes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dnnjpeg._fs import display, read_json
    from dnnjpeg._io import atomic_write_text
    from dnnjpeg.data import discover
    from dnnjpeg.families import parse_family
    from dnnjpeg.models import ModelUnavailableError, load_model
    from dnnjpeg.qnet import make_samples, save_qnet, train_qnet

    if augment < 0 or (limit is not None and limit < 1) or not (math.isfinite(alpha) and alpha > 0):
        raise _fail("--augment must be ≥ 0, --limit ≥ 1 and --alpha a number > 0")
    if augment > 1000:
        raise _fail(f"--augment {augment}: at most 1000 copies per image")
    work = work if work is not None else out.with_name(out.name + ".samples")
    _out_file(out, [data], overwrite)
    _out_folder(work, [data], (), True, "--work", mark=False)
    try:
        fam = parse_family(family)
        ds = discover(data).subset("design", limit)
        if len(ds) == 0:
            raise ValueError(f"{display(data)}: no images in the design split")
        if len(ds) * (1 + augment) < 2:
            raise ValueError(
                f"{len(ds)} design image × {1 + augment} sample: a QNet needs at least 2 samples (raise --augment)"
            )
        from dnnjpeg.pipeline import resolve_device

        m, p = load_model(model).to(resolve_device(device)), load_model(probe)
        # what decides the samples: a resumed run must have made them the same way
        recipe = {
            "format": "dnnjpeg.qnet-samples/1",
            "model": m.name,
            "probe": p.name,
            "family": [t.to_dict() for t in fam.members],
            "subsamplings": list(fam.subsamplings),
            "augment": augment,
            "seed": seed,
            "images": [str(r.path.name) for r in ds.records],
        }
        work.mkdir(parents=True, exist_ok=True)
        if not work.is_dir() or work.is_symlink():
            raise ValueError(f"--work {display(work)}: not a folder")
        manifest = work / "recipe.json"
        if manifest.exists():
            if read_json(manifest) != recipe:
                raise ValueError(
                    f"--work {display(work)} holds samples made another way (model, probe, family, augment, seed "
                    "or images differ): give another --work folder"
                )
        else:
            atomic_write_text(manifest, json.dumps(recipe))
    except (ValueError, FileNotFoundError, ModelUnavailableError) as e:
        raise _fail(str(e)) from None
    except OSError as e:
        raise _fail(f"--work {display(work)}: {e.strerror or e}") from None
    skipped = []
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    try:
        with Progress(*cols, console=err) as bar:
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
    try:
        q = train_qnet(samples, fam, m.name, p.name, alpha=alpha)
    except ValueError as e:  # e.g. too few samples left after unreadable images
        raise _fail(str(e)) from None
    q.info.update({"n_images": len(ds) - len(skipped), "augment": augment, "seed": seed})
    try:
        save_qnet(q, out)
    except OSError as e:
        raise _fail(f"writing {display(out)}: {e.strerror or e}") from None
    err.print(f"{len(samples)} samples from {len(ds) - len(skipped)} design images; wrote {display(out)} "
              f"(samples kept in {display(work)})", highlight=False)  # fmt: skip


@qnet_app.command("train-tables")
def qnet_train_tables(
    data: Path = typer.Option(..., "--data", help="Image folder; only its design split is used (no labels needed)."),
    out: Path = typer.Option(Path("tablenet.pt"), "--out", help="Where the table generator goes."),
    model: str = typer.Option("efficientnet-lite0", "--model", help="The classifier (frozen) it is trained against."),
    epochs: int = typer.Option(6, "--epochs", help="Passes over the design images."),
    limit: int | None = typer.Option(None, "--limit", help="At most this many design images."),
    seed: int = typer.Option(0, "--seed"),
    per_image: bool = typer.Option(
        True, "--per-image/--global", help="--global trains only the λ-indexed sweep (the control)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """Train a network that gives each image its own quantization tables (the seed's literal form):
    thumbnail + λ → 128 steps, end to end through the differentiable codec and the rate model, the
    classifier frozen, at its input geometry. A run killed and started again with the same --out
    resumes after its last finished epoch (OUT + '.ckpt')."""
    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dnnjpeg._fs import display
    from dnnjpeg.codec import load_image
    from dnnjpeg.data import discover
    from dnnjpeg.models import ModelUnavailableError, load_model
    from dnnjpeg.tablenet import save_tablenet, train_tablenet

    if epochs < 1 or (limit is not None and limit < 1):
        raise _fail("--epochs and --limit must be ≥ 1")
    from dnnjpeg.tablenet import CHECKPOINT_KEYS

    _out_file(out, [data], overwrite)
    ck = _checkpoint(out.with_name(out.name + ".ckpt"), [data], CHECKPOINT_KEYS)
    try:
        ds = discover(data).subset("design", limit)
        if len(ds) == 0:
            raise ValueError(f"{display(data)}: no images in the design split")
        m = load_model(model)
    except (ValueError, FileNotFoundError, ModelUnavailableError) as e:
        raise _fail(str(e)) from None
    crops, skipped = [], []
    for r in ds.records:
        try:
            crops.append(m.preprocess.geometry(load_image(r.path, "RGB")))
        except Exception as e:  # noqa: BLE001 — a bad file is named and skipped, the rest go on
            skipped.append((str(r.path), f"{type(e).__name__}: {e}"))
    for f, msg in skipped:
        err.print(f"[yellow]skipped[/yellow] {escape(display(f))}: {escape(msg)}", highlight=False)
    if not crops:
        raise _fail(f"{display(data)}: no readable design images")
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    try:
        with Progress(*cols, console=err) as bar:
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


dct_app = typer.Typer(no_args_is_help=True, help="Classifiers that read JPEG coefficients instead of pixels.")
app.add_typer(dct_app, name="dct")


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


def main() -> None:
    """Console-script entry point."""
    tune_malloc()
    app()


if __name__ == "__main__":
    main()
