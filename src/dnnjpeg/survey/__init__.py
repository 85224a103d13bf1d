"""Survey: what JPEG settings does a dataset really hold? Headers only, no decoding.

``survey(["train", "val"])`` walks the trees and returns a pandas DataFrame with
one row per file (see :data:`dnnjpeg.survey.scan.COLUMNS`, plus ``luma_table`` and
``chroma_table`` as 64 natural-order values).  ``write_survey`` adds Parquet,
optional CSV, ``summary.json``, the plots and ``report.html``.

Work is spread over a process pool in chunks; each finished chunk is saved as a
Parquet part under ``OUT/.survey-parts/`` so that an interrupted run can
``resume`` and a Ctrl-C never leaves a half-written output.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dnnjpeg._fs import display, walk
from dnnjpeg.survey.scan import COLUMNS, scan_files
from dnnjpeg.survey.summary import EXTREME_ASPECT, TINY_SIDE, odd_files, summarize

__all__ = ["survey", "summarize", "odd_files", "write_survey", "COLUMNS", "PARTS_DIR", "EXTREME_ASPECT", "TINY_SIDE"]

PARTS_DIR = ".survey-parts"
CHUNK = 2048


def _schema():
    import pyarrow as pa

    types = {c: pa.string() for c in ("path", "tree", "format", "error", "message", "subsampling", "color", "mode")}
    types.update(
        {
            c: pa.bool_()
            for c in ("ok", "grayscale", "progressive", "arithmetic", "quality_exact", "jfif", "exif", "eoi_found")
        }
    )
    types["quality_distance"] = pa.float64()
    types["path_bytes"] = pa.binary()
    fields = [pa.field(c, types.get(c, pa.int64())) for c in COLUMNS]
    fields += [pa.field(f"{n}_table", pa.list_(pa.uint16(), 64)) for n in ("luma", "chroma")]
    return pa.schema(fields)


def _to_arrow(chunk: dict):
    import pyarrow as pa

    cols = chunk["columns"]
    if not cols["path"]:
        return None
    schema = _schema()
    arrays = [pa.array(cols[c], schema.field(c).type) for c in COLUMNS]
    for name in ("luma", "chroma"):
        t = chunk[name]
        # rows without a table (non-JPEG, gray chroma) are null, not 64 zeros
        mask = pa.array(~t.any(axis=1))
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(t.reshape(-1), pa.uint16()), 64, mask=mask))
    return pa.Table.from_arrays(arrays, schema=schema)


def _scan_job(items, tree):
    return _to_arrow(scan_files(items, tree))


def _scan_chunk(chunk, _shared=None):
    """A chunk (entries, tree label) → (Arrow table, number of entries), as an engine runs it."""
    items, tree = chunk
    return _scan_job(items, tree), len(items)


def survey(
    roots: Sequence[str | os.PathLike[str]],
    labels: Sequence[str] | None = None,
    workers: int | None = None,
    parts_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
    engine=None,
):
    """Survey the trees ``roots`` (labelled ``labels``, default the folder names).

    Args:
        workers: processes (default: all cores); 1 runs in this process.
        parts_dir: where finished chunks are saved as Parquet parts (enables resume).
        resume: reuse the parts already in ``parts_dir`` and skip their files.
        progress: called with the number of files each finished chunk held.
        engine: where chunks are scanned (:mod:`dnnjpeg.engine`; default a local pool of
            ``workers``, 1 in this process; on Ray its workers scan, this process saves the parts).
    Returns:
        pandas DataFrame, one row per file, sorted by tree then path.
    """
    import pyarrow.parquet as pq

    roots = [os.fspath(r) for r in roots]
    labels = list(labels) if labels else [display(Path(r).resolve().name or r) for r in roots]
    if len(labels) != len(roots):
        raise ValueError(f"{len(labels)} labels for {len(roots)} trees")
    for r in roots:
        if not os.path.exists(r):
            raise FileNotFoundError(f"{display(r)}: no such file or folder")
    pdir = Path(parts_dir) if parts_dir is not None else None
    tables, done = _load_parts(pdir, resume)
    if progress and done:
        progress(len(done))
    # after the parts kept (a dropped one leaves a gap): never the name of a part on disk
    kept = [int(f.name[5:11]) for f in pdir.glob("part-*.parquet") if f.name[5:11].isdigit()] if pdir else []
    part_no = max(kept, default=-1) + 1

    def save(t, n_files: int) -> None:
        nonlocal part_no
        if t is not None:
            tables.append(t)
            if pdir is not None:  # each finished chunk on disk at once: what --resume reads
                tmp = pdir / f".part-{part_no:06d}.tmp"
                pq.write_table(t, tmp)
                os.replace(tmp, pdir / f"part-{part_no:06d}.parquet")
            part_no += 1
        if progress:
            progress(n_files)

    from dnnjpeg.engine import LocalEngine

    # a bounded number of chunks in flight (the walk does not run far ahead), saved as they finish
    chunks = _chunks(roots, labels, done, chunk)
    for t, n in (engine or LocalEngine(workers)).map(_scan_chunk, chunks, ordered=False):
        save(t, n)
    return _frame(tables, labels)


def _frame(tables: list, labels: list[str]):
    """The parts as one DataFrame, trees in the order given, then by path (an empty one with the columns)."""
    import pandas as pd
    import pyarrow as pa

    if not tables:
        return pd.DataFrame(columns=list(COLUMNS) + ["luma_table", "chroma_table"])
    df = pa.concat_tables(tables).to_pandas(types_mapper=_nullable)
    order = {label: i for i, label in enumerate(labels)}  # trees in the order the user gave them
    df = df.assign(_order=df["tree"].map(order)).sort_values(["_order", "path"], kind="stable")
    return df.drop(columns="_order").reset_index(drop=True)


def _load_parts(pdir: Path | None, resume: bool) -> tuple[list, set[tuple[str, bytes]]]:
    """Saved parts (with ``resume``) and the (tree, name) pairs they hold; else a fresh parts folder."""
    import pyarrow.parquet as pq

    tables, done = [], set()
    if pdir is None:
        return tables, done
    if pdir.is_symlink() or (pdir.exists() and not pdir.is_dir()):
        raise ValueError(
            f"{display(pdir)}: expected survey's own folder of saved parts, found a link or a file: "
            "not followed, not removed; move it away"
        )
    if pdir.exists() and resume:
        schema = _schema()
        for f in sorted(pdir.glob("part-*.parquet")):
            try:  # a part is ours only when it reads whole with survey's schema: else its files are scanned again
                if not stat.S_ISREG(os.lstat(f).st_mode):
                    raise ValueError("not a regular file")
                t = pq.read_table(f)
                if not t.schema.equals(schema):
                    raise ValueError("another schema")
            except Exception:  # noqa: BLE001 — damaged or foreign: dropped, its files scanned again
                if stat.S_ISREG(os.lstat(f).st_mode) or os.path.islink(f):
                    os.unlink(f)  # inside survey's own parts folder, under survey's own name pattern
                continue
            tables.append(t)
            done.update(zip(t.column("tree").to_pylist(), t.column("path_bytes").to_pylist()))
    elif pdir.exists():
        shutil.rmtree(pdir)
    pdir.mkdir(parents=True, exist_ok=True)
    return tables, done


def _chunks(roots, labels, done, chunk: int):
    """(entries, tree label) in chunks of ``chunk``, skipping entries already done."""
    for root, label in zip(roots, labels):
        buf = []
        for item in walk(root):
            if (label, os.fsencode(item[0])) in done:
                continue
            buf.append(item)
            if len(buf) >= chunk:
                yield buf, label
                buf = []
        if buf:
            yield buf, label


def _nullable(t):
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_integer(t):
        return pd.Int64Dtype()
    if pa.types.is_boolean(t):
        return pd.BooleanDtype()
    if pa.types.is_string(t):
        return pd.StringDtype()
    return None


def _finite(x):
    """``x`` with every NaN or infinity as None: strict JSON has neither."""
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def write_survey(
    df, out: str | os.PathLike[str], csv: bool = False, plots: bool = True, umap: bool = True
) -> dict[str, Path]:
    """Write survey.parquet (+ survey.csv), summary.json, the plots and report.html into ``out``."""
    import io
    import json

    from dnnjpeg._io import atomic_write_bytes, atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    written["parquet"] = atomic_write_bytes(out / "survey.parquet", buf.getvalue())
    if csv:
        flat = df.copy()
        for c in ("luma_table", "chroma_table"):
            flat[c] = [" ".join(map(str, t)) if t is not None else "" for t in flat[c]]
        written["csv"] = atomic_write_text(out / "survey.csv", flat.to_csv(index=False))
    summary = _finite(summarize(df))
    written["summary"] = atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, allow_nan=False))
    if plots:
        from dnnjpeg.survey.plots import all_plots

        written.update(all_plots(df, out, umap=umap))
        from dnnjpeg.survey.report import html_report

        written["html"] = html_report(df, summary, written, out / "report.html")
    return written
