"""Walking trees and reading one record per file, headers only.

Records travel between processes as columns (lists and two (n, 64) uint16
arrays for the tables) rather than as one object per file: pickling is then a
few large copies instead of a hundred thousand small ones.
"""

from __future__ import annotations

import errno
import os

import numpy as np

from dnnjpeg._fs import display, walk
from dnnjpeg.codec import JpegError, NotAJpegError, estimate_quality_tables, parse_header
from dnnjpeg.codec.header import read_head, sniff_format

__all__ = ["COLUMNS", "walk", "scan_files"]

#: Record columns in order; ``luma_table`` / ``chroma_table`` are 64 natural-order values.
#: ``path`` is printable (bytes that are not UTF-8 shown as ``\xNN``); ``path_bytes`` is the
#: name exactly as the file system holds it (``os.fsencode``), so no name is ever lost.
COLUMNS = (
    "path",
    "path_bytes",
    "tree",
    "file_size",
    "format",
    "ok",
    "error",
    "message",
    "width",
    "height",
    "display_width",
    "display_height",
    "orientation",
    "components",
    "grayscale",
    "subsampling",
    "color",
    "mode",
    "progressive",
    "arithmetic",
    "precision",
    "quality",
    "quality_exact",
    "quality_distance",
    "n_qtables",
    "qtable_bits",
    "restart_interval",
    "jfif",
    "exif",
    "eoi_found",
)


def _empty_columns() -> dict[str, list]:
    return {c: [] for c in COLUMNS}


def scan_files(items: list[tuple[str, str | None]], tree: str) -> dict:
    """Read the header of every file; one record each, errors included.

    Args:
        items: ``(path, walk_error)`` pairs from :func:`walk`.
        tree: the label of the tree these files belong to.
    Returns:
        ``{"columns": {name: list}, "luma": uint16 (n, 64), "chroma": uint16 (n, 64)}``;
        tables of files without them are all zero.
    """
    n = len(items)
    cols = _empty_columns()
    luma = np.zeros((n, 64), np.uint16)
    chroma = np.zeros((n, 64), np.uint16)
    app = {c: cols[c].append for c in COLUMNS}
    for i, (path, walk_error) in enumerate(items):
        app["path"](display(path))
        app["path_bytes"](os.fsencode(path))
        app["tree"](tree)
        rec = None
        err = msg = None
        fmt = None
        size = None
        if walk_error is not None:
            err, msg = "WalkError", f"{display(path)}: {walk_error}"
        else:
            try:
                h = parse_header(path)
                rec = h
                size = h.file_size
                fmt = "JPEG"
            except NotAJpegError as e:
                err, msg, fmt = type(e).__name__, str(e), e.detected_format
                size = _size(path)
            except JpegError as e:
                err, msg, fmt = type(e).__name__, str(e), "JPEG"
                size = _size(path)
            except OSError as e:
                err = type(e).__name__
                if e.errno == errno.ELOOP:
                    err = "SymlinkLoop"
                msg = f"{display(path)}: {e.strerror or e}"
                fmt = _sniff(path)
            except Exception as e:  # keep the batch going whatever one file does
                err, msg = type(e).__name__, f"{display(path)}: {e}"
        app["file_size"](size)
        app["format"](fmt)
        app["ok"](rec is not None)
        app["error"](err)
        app["message"](msg)
        if rec is None:
            for c in COLUMNS[COLUMNS.index("width") :]:
                app[c](None)
            continue
        lt, ct = rec.luma_table, rec.chroma_table
        if lt is not None:
            luma[i] = lt.reshape(64)
            q = estimate_quality_tables(lt, ct)
            quality, exact, dist = q.quality, q.exact, q.distance
        else:
            quality = exact = dist = None
        if ct is not None:
            chroma[i] = ct.reshape(64)
        dw, dh = rec.display_size
        app["width"](rec.width)
        app["height"](rec.height)
        app["display_width"](dw)
        app["display_height"](dh)
        app["orientation"](rec.orientation)
        app["components"](rec.n_components)
        app["grayscale"](rec.n_components == 1)
        app["subsampling"](rec.subsampling)
        app["color"](rec.color)
        app["mode"](rec.mode)
        app["progressive"](rec.mode == "progressive")
        app["arithmetic"](rec.arithmetic)
        app["precision"](rec.precision)
        app["quality"](quality)
        app["quality_exact"](exact)
        app["quality_distance"](dist)
        app["n_qtables"](len(rec.qtables))
        app["qtable_bits"](max(rec.qtable_bits.values()) if rec.qtable_bits else None)
        app["restart_interval"](rec.restart_interval)
        app["jfif"](rec.jfif)
        app["exif"](rec.exif)
        app["eoi_found"](rec.eoi_found)
    return {"columns": cols, "luma": luma, "chroma": chroma}


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _sniff(path: str) -> str | None:
    try:
        return sniff_format(read_head(path))
    except OSError:
        return None
