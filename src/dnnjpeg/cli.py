"""The ``dnnjpeg`` command line: argument parsing only; the work lives in the library."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from dnnjpeg._runtime import tune_malloc

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="dnnjpeg: JPEG made for neural networks. Survey, design, compress, evaluate.",
)
err = Console(stderr=True)


def _expand(paths: list[Path]) -> list[Path]:
    # Folders are walked recursively (sorted, so output order is stable); files pass as given.
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file()))
        else:
            out.append(p)
    return out


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
    from dnnjpeg.codec import JpegError, estimate_quality, parse_header

    failed = 0
    for path in _expand(files):
        try:
            h = parse_header(path)
            q = estimate_quality(h) if h.luma_table is not None else None
        except (JpegError, OSError) as e:
            failed += 1
            name = type(e).__name__
            msg = str(e) if isinstance(e, JpegError) else f"{path}: {e.strerror or e}"
            if as_json:
                print(json.dumps({"path": str(path), "error": name, "message": msg}))
            else:
                err.print(f"[red]{name}[/red] {msg}", highlight=False, soft_wrap=True)
            continue
        if as_json:
            d = h.to_dict()
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
            f"{path}  {h.width}x{h.height}  {h.subsampling}  q={q}  {coding}  {h.precision}-bit  "
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


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Output folder."),
) -> None:
    """Encode the sample photographs that ship with scikit-image at a few IJG
    qualities and with a custom table, then describe the files with ``info``.

    (The rate-vs-accuracy demo arrives with the evaluation stage.)
    """
    from dnnjpeg.demo import run_codec_demo

    run_codec_demo(out)


def main() -> None:
    """Console-script entry point."""
    tune_malloc()
    app()


if __name__ == "__main__":
    main()
