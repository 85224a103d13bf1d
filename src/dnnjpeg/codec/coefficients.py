"""Quantized DCT coefficients in and out of JPEG files.

jpeglib does the work; it stays behind these two functions so that it can be
swapped (e.g. for torchjpeg or a direct libjpeg binding) without touching callers.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnnjpeg._io import atomic_write_bytes
from dnnjpeg.codec.errors import CorruptJpegError, JpegError, UnsupportedJpegError
from dnnjpeg.codec.header import JpegHeader, parse_header_bytes
from dnnjpeg.codec.tables import QuantTables

__all__ = ["Coefficients", "read_coefficients", "write_coefficients"]


@dataclass(frozen=True)
class Coefficients:
    """Quantized DCT coefficients of a JPEG image.

    Attributes:
        blocks: one int16 array per component, shape (blocks_high, blocks_wide, 8, 8);
            each 8×8 block in natural order, values are quantized (divide-by-step) levels.
        tables: luma/chroma tables, natural order (chroma = luma for gray).
        sampling: (h, v) sampling factors per component, e.g. ((2, 2), (1, 1), (1, 1)) for 4:2:0.
        width, height: image size in pixels.
    """

    blocks: tuple[np.ndarray, ...]
    tables: QuantTables
    sampling: tuple[tuple[int, int], ...]
    width: int
    height: int

    @property
    def subsampling(self) -> str:
        from dnnjpeg.codec.header import Component, subsampling_name

        return subsampling_name(tuple(Component(i, h, v, 0) for i, (h, v) in enumerate(self.sampling)))

    def dequantized(self, index: int) -> np.ndarray:
        """Component ``index``'s DCT coefficients times their steps, float32 (bh, bw, 8, 8)."""
        t = self.tables.luma if index == 0 else self.tables.chroma
        return self.blocks[index].astype(np.float32) * t.astype(np.float32)


def _check_supported(h: JpegHeader) -> None:
    if h.arithmetic:
        raise UnsupportedJpegError(h.path, "arithmetic-coded JPEG: coefficient I/O supports Huffman coding only")
    if h.precision != 8:
        raise UnsupportedJpegError(h.path, f"{h.precision}-bit samples: coefficient I/O supports 8-bit JPEG only")
    if h.mode in ("lossless", "hierarchical"):
        raise UnsupportedJpegError(h.path, f"{h.mode} JPEG has no DCT coefficients to read")
    if h.n_components not in (1, 3):
        raise UnsupportedJpegError(
            h.path, f"{h.n_components}-component ({h.color}) JPEG: only gray and YCbCr are supported"
        )
    for slot, t in h.qtables.items():
        if (np.asarray(t) == 0).any():  # no encoder writes a 0 step; a table type cannot hold one
            raise UnsupportedJpegError(h.path, f"quantization table {slot} holds a step of 0")


def read_coefficients(path: str | os.PathLike[str]) -> Coefficients:
    """Read the quantized DCT coefficients of a JPEG file (baseline, extended or progressive).

    Raises NotAJpegError / CorruptJpegError / UnsupportedJpegError naming the file.
    """
    from dnnjpeg._fs import read_regular
    from dnnjpeg.codec.strict import jpeglib_turbo, libjpeg_check

    p = os.fspath(path)
    data = read_regular(p)  # read once for the header and the check; jpeglib reads the path itself
    h = parse_header_bytes(data, p)
    _check_supported(h)
    # jpeglib prints libjpeg's warnings and reads on: the strict check refuses what libjpeg flags first
    libjpeg_check(data, p)
    try:
        d = jpeglib_turbo().read_dct(p)
        blocks = [d.Y] if h.n_components == 1 else [d.Y, d.Cb, d.Cr]
        blocks = tuple(np.ascontiguousarray(b, dtype=np.int16) for b in blocks)
    except JpegError:
        raise
    except Exception as e:  # libjpeg errors surface as assorted exception types
        raise CorruptJpegError(p, f"cannot read DCT coefficients: {e}") from e
    return Coefficients(
        blocks=blocks,
        tables=h.quant_tables(),
        sampling=tuple((c.h, c.v) for c in h.components),
        width=h.width,
        height=h.height,
    )


def write_coefficients(
    coefficients: Coefficients, path: str | os.PathLike[str] | None = None, optimize: bool = False
) -> bytes:
    """Write coefficients as a standard baseline Huffman JPEG; returns its bytes.

    When ``path`` is given the file is written atomically as well. ``optimize``: Huffman tables
    fitted to these levels (libjpeg's optimize_coding) instead of the standard ones.
    """
    from dnnjpeg.codec.strict import jpeglib_turbo

    jpeglib = jpeglib_turbo()  # one libjpeg build per process, whichever function is called first
    c = coefficients
    if c.tables.extended:
        raise ValueError("baseline JPEG needs tables with entries 1..255")
    gray = len(c.blocks) == 1
    qt = c.tables.luma[None] if gray else c.tables.as_array()
    quant_tbl_no = np.array([0] if gray else [0, 1, 1])
    if gray:
        im = jpeglib.from_dct(Y=c.blocks[0], qt=qt.astype(np.uint16), quant_tbl_no=quant_tbl_no)
    else:
        im = jpeglib.from_dct(
            Y=c.blocks[0], Cb=c.blocks[1], Cr=c.blocks[2], qt=qt.astype(np.uint16), quant_tbl_no=quant_tbl_no
        )
    # from_dct infers size from the block grid (a multiple of 8); the true size
    # and sampling must be restored or the decoded image changes shape.
    im.height, im.width = c.height, c.width
    # jpeglib orders sampling factors (v, h), the reverse of the SOF segment.
    im.samp_factor = np.array([(v, h) for h, v in c.sampling], dtype=np.int32)
    with tempfile.TemporaryDirectory(prefix="dnnjpeg-") as tmp:
        out = Path(tmp) / "coef.jpg"
        im.write_dct(str(out), flags=["+OPTIMIZE_CODING"] if optimize else [])
        data = out.read_bytes()
    if path is not None:
        atomic_write_bytes(Path(path), data)
    return data
