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
    for i, (path, walk_error) in enumerate(items):
        rec, row = _read(path, walk_error)
        row.update(path=display(path), path_bytes=os.fsencode(path), tree=tree, ok=rec is not None)
        if rec is not None:
            row.update(_header_fields(rec))
            if rec.luma_table is not None:
                luma[i] = rec.luma_table.reshape(64)
            if rec.chroma_table is not None:
                chroma[i] = rec.chroma_table.reshape(64)
        for c in COLUMNS:
            cols[c].append(row.get(c))
    return {"columns": cols, "luma": luma, "chroma": chroma}


def _read(path: str, walk_error: str | None):
    """(header or None, {file_size, format, error, message}) for one entry; never raises."""
    if walk_error is not None:
        return None, {"error": "WalkError", "message": f"{display(path)}: {walk_error}"}
    try:
        h = parse_header(path)
        return h, {"file_size": h.file_size, "format": "JPEG"}
    except NotAJpegError as e:
        return None, {
            "error": type(e).__name__,
            "message": str(e),
            "format": e.detected_format,
            "file_size": _size(path),
        }
    except JpegError as e:
        return None, {"error": type(e).__name__, "message": str(e), "format": "JPEG", "file_size": _size(path)}
    except OSError as e:
        err = "SymlinkLoop" if e.errno == errno.ELOOP else type(e).__name__
        return None, {"error": err, "message": f"{display(path)}: {e.strerror or e}", "format": _sniff(path)}
    except Exception as e:  # keep the batch going whatever one file does
        return None, {"error": type(e).__name__, "message": f"{display(path)}: {e}"}


def _header_fields(rec) -> dict:
    """The record's columns from ``width`` on, for a header that parsed."""
    quality = exact = dist = None
    if rec.luma_table is not None:
        q = estimate_quality_tables(rec.luma_table, rec.chroma_table)
        quality, exact, dist = q.quality, q.exact, q.distance
    dw, dh = rec.display_size
    return {
        "width": rec.width, "height": rec.height, "display_width": dw, "display_height": dh,
        "orientation": rec.orientation, "components": rec.n_components, "grayscale": rec.n_components == 1,
        "subsampling": rec.subsampling, "color": rec.color, "mode": rec.mode,
        "progressive": rec.mode == "progressive", "arithmetic": rec.arithmetic, "precision": rec.precision,
        "quality": quality, "quality_exact": exact, "quality_distance": dist, "n_qtables": len(rec.qtables),
        "qtable_bits": max(rec.qtable_bits.values()) if rec.qtable_bits else None,
        "restart_interval": rec.restart_interval, "jfif": rec.jfif, "exif": rec.exif, "eoi_found": rec.eoi_found,
    }  # fmt: skip


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
