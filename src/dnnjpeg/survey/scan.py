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


#: the header's columns (from ``width`` on) of an entry whose header did not parse
_NO_HEADER = (None,) * (len(COLUMNS) - COLUMNS.index("width"))


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
    luma = np.zeros((n, 64), np.uint16)
    chroma = np.zeros((n, 64), np.uint16)
    rows = []  # one tuple per file in COLUMNS order, turned into columns at the end (this is a hot loop)
    for i, (path, walk_error) in enumerate(items):
        rec, found = _read(path, walk_error)
        fields = _NO_HEADER
        if rec is not None:
            fields = _header_fields(rec)
            if rec.luma_table is not None:
                luma[i] = rec.luma_table.reshape(64)
            if rec.chroma_table is not None:
                chroma[i] = rec.chroma_table.reshape(64)
        size, fmt, err, msg = found
        rows.append((display(path), os.fsencode(path), tree, size, fmt, rec is not None, err, msg, *fields))
    cols = {c: list(v) for c, v in zip(COLUMNS, zip(*rows))} if rows else {c: [] for c in COLUMNS}
    return {"columns": cols, "luma": luma, "chroma": chroma}


def _read(path: str, walk_error: str | None):
    """(header or None, (file size, format, error, message)) for one entry; never raises."""
    if walk_error is not None:
        return None, (None, None, "WalkError", f"{display(path)}: {walk_error}")
    try:
        h = parse_header(path)
        return h, (h.file_size, "JPEG", None, None)
    except NotAJpegError as e:
        return None, (_size(path), e.detected_format, type(e).__name__, str(e))
    except JpegError as e:
        return None, (_size(path), "JPEG", type(e).__name__, str(e))
    except OSError as e:
        err = "SymlinkLoop" if e.errno == errno.ELOOP else type(e).__name__
        return None, (None, _sniff(path), err, f"{display(path)}: {e.strerror or e}")
    except Exception as e:  # keep the batch going whatever one file does
        return None, (None, None, type(e).__name__, f"{display(path)}: {e}")


def _header_fields(rec) -> tuple:
    """The record's columns from ``width`` on (COLUMNS order), for a header that parsed."""
    quality = exact = dist = None
    if rec.luma_table is not None:
        q = estimate_quality_tables(rec.luma_table, rec.chroma_table)
        quality, exact, dist = q.quality, q.exact, q.distance
    dw, dh = rec.display_size
    return (
        rec.width, rec.height, dw, dh, rec.orientation, rec.n_components, rec.n_components == 1,
        rec.subsampling, rec.color, rec.mode, rec.mode == "progressive", rec.arithmetic, rec.precision,
        quality, exact, dist, len(rec.qtables), max(rec.qtable_bits.values()) if rec.qtable_bits else None,
        rec.restart_interval, rec.jfif, rec.exif, rec.eoi_found,
    )  # fmt: skip


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
