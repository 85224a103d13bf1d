"""``info`` and ``survey``: what a tree of files holds, from headers alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dnnjpeg.cli.common import (
    _ENGINE_HELP,
    _expand,
    _fail,
    _out_folder,
    engine_from,
    err,
)  # fmt: skip
from dnnjpeg.engine import EngineUnavailableError


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
        print(_info_line(display(path), h, q))
        if tables:
            for slot, t in sorted(h.qtables.items()):
                print(f"  table {slot}:")
                for row in t:
                    print("   " + " ".join(f"{int(x):3d}" for x in row))
    if failed:
        err.print(f"{failed} file(s) failed")
        raise typer.Exit(1)


def _info_line(shown: str, h, q) -> str:
    """One header as info's text line: size, subsampling, quality, coding, precision, color, tables, bytes."""
    coding = h.mode + ("/arithmetic" if h.arithmetic else "")
    extras = [x for x in ("JFIF" if h.jfif else "", "EXIF" if h.exif else "") if x]
    if h.orientation not in (None, 1):
        extras.append(f"orientation={h.orientation}")
    if h.restart_interval:
        extras.append(f"restart={h.restart_interval}")
    if h.eoi_found is False:
        extras.append("NO-EOI(truncated?)")
    bits = "/".join(f"{h.qtable_bits[k]}" for k in sorted(h.qtable_bits))
    return (
        f"{shown}  {h.width}x{h.height}  {h.subsampling}  q={q}  {coding}  {h.precision}-bit  "
        f"{h.color}  dqt={len(h.qtables)}x{bits}bit  {h.file_size}B  {' '.join(extras)}".rstrip()
    )


SURVEY_LISTED = 50


_Trees = Annotated[list[Path], typer.Argument(help="Folders (or files) to survey; several are compared side by side.")]
_Label = Annotated[
    list[str] | None, typer.Option("--label", help="Name of each tree, in order (default: folder names).")
]
_Workers = Annotated[int | None, typer.Option("--workers", help="Processes (default: all cores).")]
_Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted survey from its saved parts.")]
_Umap = Annotated[bool, typer.Option("--umap/--no-umap", help="Compute the UMAP projection figures.")]
_Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace reports in an --out dnnjpeg did not make.")]


def survey(
    trees: _Trees,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("survey-out"),
    label: _Label = None,
    workers: _Workers = None,
    csv: Annotated[bool, typer.Option("--csv", help="Also write survey.csv.")] = False,
    resume: _Resume = False,
    umap: _Umap = True,
    engine: Annotated[str, typer.Option("--engine", help=_ENGINE_HELP)] = "local",
    overwrite: _Overwrite = False,
) -> None:
    """What JPEG settings does a dataset really hold? Reads headers only: quality, subsampling,
    sizes, grayscale, progressive, CMYK, non-JPEG files. Parquet, summary.json, plots, report.html."""
    import shutil
    import time

    from dnnjpeg._fs import display
    from dnnjpeg.survey import PARTS_DIR, write_survey

    if workers is not None and workers < 1:
        raise _fail(f"--workers must be ≥ 1, got {workers}")
    try:
        eng = engine_from(engine, workers)
    except (ValueError, EngineUnavailableError) as e:
        raise _fail(str(e)) from None
    created = not out.exists()
    names = ("survey.parquet", "survey.csv", "summary.json", "report.html", "quality.png", "sizes.png")
    _out_folder(out, trees, names, overwrite)
    t0 = time.perf_counter()
    df = _scan(trees, label, workers, out, resume, eng)
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
    _print_survey(df)
    err.print(f"wrote {len(written)} files to {display(out)}/ (open {display(out / 'report.html')})", highlight=False)


def _scan(trees, label, workers, out: Path, resume: bool, eng):
    """The survey's table, with a progress bar in files per second; errors end in one line."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dnnjpeg._fs import display
    from dnnjpeg.survey import PARTS_DIR
    from dnnjpeg.survey import survey as run_survey

    t0 = time.perf_counter()
    cols = [TextColumn("surveying"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn()]  # fmt: skip
    with Progress(*cols, console=err) as bar:
        task = bar.add_task("", total=None, rate="")

        def tick(k: int) -> None:
            bar.advance(task, k)
            done = bar.tasks[0].completed
            bar.update(task, rate=f"{done / max(1e-9, time.perf_counter() - t0):,.0f} files/s")

        try:
            return run_survey(trees, label, workers=workers, parts_dir=out / PARTS_DIR, resume=resume, progress=tick,
                              engine=eng)  # fmt: skip
        except (FileNotFoundError, ValueError, EngineUnavailableError) as e:
            raise _fail(str(e)) from None
        except OSError as e:  # a full disk while saving parts: what was saved stays for --resume
            raise _fail(
                f"saving survey parts in {display(out / PARTS_DIR)}: {e.strerror or e}; "
                "free space and run again with --resume"
            ) from None


def _print_survey(df) -> None:
    """One line per tree on stdout; the files that are not readable JPEGs on stderr (the first 50)."""
    from dnnjpeg.survey import summarize

    for name, t in summarize(df)["trees"].items():
        Console().print(
            f"[bold]{escape(name)}[/bold]: {t['n_files']:,} files, {t['n_jpeg']:,} JPEGs; subsampling "
            f"{t['subsampling']}; grayscale {t['grayscale']}; most common quality {t['quality_most_common']}; "
            f"errors {escape(str(t['errors'] or 'none'))}",
            highlight=False,
        )
    bad = df[~df["ok"].fillna(False).astype(bool)]
    for _, row in bad.head(SURVEY_LISTED).iterrows():
        err.print(f"[yellow]{escape(str(row['error']))}[/yellow] {escape(str(row['message']))}", highlight=False)
    if len(bad) > SURVEY_LISTED:
        err.print(
            f"… and {len(bad) - SURVEY_LISTED:,} more files that are not readable JPEGs (survey.parquet, report.html)"
        )
