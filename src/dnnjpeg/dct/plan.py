"""What a file's header says about decoding its scan (a plan, cached by header bytes): components,
sampling, block grids, restart interval, and the Huffman tables each component uses (the standard
ones in the slots an MJPEG frame leaves undefined, as libjpeg does)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnnjpeg.codec.coefficients import _check_supported
from dnnjpeg.codec.errors import CorruptJpegError
from dnnjpeg.codec.header import _segments, parse_header_bytes
from dnnjpeg.codec.tables import ZIGZAG
from dnnjpeg.dct.huffman import _decoder_tables

__all__: list[str] = []

_ZZ = ZIGZAG.astype(np.int64)


@dataclass(frozen=True)
class _Plan:
    """What the header says about decoding the scan (the same for every file with this header)."""

    start: int  # offset of the entropy-coded data
    coef: tuple  # (tables, sampling, width, height) for the Coefficients
    comps: tuple  # (h, v) per component
    args: tuple  # the kernel's table and geometry arguments after (data, pos)
    grids: tuple  # (rows, cols) decoded per component
    real: tuple  # (rows, cols) kept per component
    off: np.ndarray
    sizes: tuple
    color: str = "YCbCr"  # the header's color model (RGB-coded files have no luma plane)


_PLANS: dict[bytes, _Plan | None] = {}  # header bytes → plan (None: not for this reader)


def _plan(data: bytes, path: str) -> _Plan | None:
    """The scan plan, from the cache when another file had exactly these header bytes.

    The key is everything up to the end of the first SOS segment the bytes show; an entry is kept only
    when the full parse found its SOS there (not inside an APP segment), so equal keys mean equal
    headers. Most files of a dataset share one (CIFAR-10: every file)."""
    k = data.find(b"\xff\xda")
    key = data[: k + 2 + ((data[k + 2] << 8) | data[k + 3])] if 0 <= k and k + 4 <= len(data) else None
    if key is not None and key in _PLANS:
        return _PLANS[key]
    plan, start = _parse_plan(data, path)
    if key is not None and start == len(key):
        if len(_PLANS) >= 256:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = plan
    return plan


_STD_HUFF: dict[tuple[int, int], bytes] = {}


def _standard_huffman() -> dict[tuple[int, int], bytes]:
    """The JPEG standard's (Annex K) Huffman tables, (class, slot) → DHT bytes, as libjpeg writes them
    without optimization (taken from a file Pillow encodes, rather than typed in again)."""
    if not _STD_HUFF:
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (16, 16)).save(buf, "JPEG", optimize=False)
        _STD_HUFF.update(_huffman_tables(buf.getvalue(), "<standard tables>")[0])
    return _STD_HUFF


def _huffman_tables(data: bytes, path: str) -> tuple[dict[tuple[int, int], bytes], bytes | None, int | None]:
    """The DHT tables defined before the first scan, (class, slot) → DHT bytes; that scan's SOS
    segment and the offset of its entropy-coded data (None, None when there is no scan)."""
    huff: dict[tuple[int, int], bytes] = {}
    for marker, at, seg in _segments(data, path, True, []):
        if marker == 0xC4:
            j = 0
            while j + 17 <= len(seg):
                n = int(np.frombuffer(seg[j + 1 : j + 17], np.uint8).sum())
                huff[(seg[j] >> 4, seg[j] & 15)] = bytes(seg[j : j + 17 + n])
                j += 17 + n
        elif marker == 0xDA:
            return huff, seg, at + 2 + ((data[at + 2] << 8) | data[at + 3])
    return huff, None, None


def _parse_plan(data: bytes, path: str) -> tuple[_Plan | None, int | None]:
    h = parse_header_bytes(data, path)
    _check_supported(h)
    if h.warnings:  # what libjpeg would warn about in the header is an error here too
        raise CorruptJpegError(path, h.warnings[0])
    if h.mode == "progressive":
        return None, None
    huff, sos, start = _huffman_tables(data, path)  # (class, id) → the table's DHT bytes
    comps = h.components
    ns = sos[0]
    if ns != len(comps):
        return None, start  # one component per scan (several scans): jpeglib
    ids = [sos[1 + 2 * k] for k in range(ns)]
    if ids != [c.id for c in comps]:
        raise CorruptJpegError(path, f"scan components {ids} are not the frame's {[c.id for c in comps]}")
    sel = [(sos[2 + 2 * k] >> 4, sos[2 + 2 * k] & 15) for k in range(ns)]
    keys = sorted({(0, d) for d, _ in sel} | {(1, a) for _, a in sel})
    for key in keys:
        if key not in huff and key[1] in (0, 1):
            # as libjpeg does (an MJPEG frame carries no DHT): the standard tables in slots 0 and 1
            huff[key] = _standard_huffman()[key]
        if key not in huff:
            raise CorruptJpegError(
                path, f"scan uses {'DC' if key[0] == 0 else 'AC'} Huffman table {key[1]}, not defined"
            )
    slot = {key: i for i, key in enumerate(keys)}
    arrays = _decoder_tables(tuple(huff[key] for key in keys))
    hmax, vmax = max(c.h for c in comps), max(c.v for c in comps)
    if ns == 1:  # a non-interleaved scan: one block per MCU over the component's own blocks
        bh, bw = _ceil(h.height, 8), _ceil(h.width, 8)
        comp_h = comp_v = np.ones(1, np.int64)
        mcux, mcuy, grids = bw, bh, [(bh, bw)]
    else:
        mcux, mcuy = _ceil(h.width, 8 * hmax), _ceil(h.height, 8 * vmax)
        comp_h = np.array([c.h for c in comps], np.int64)
        comp_v = np.array([c.v for c in comps], np.int64)
        grids = [(mcuy * c.v, mcux * c.h) for c in comps]
    sizes = [r * c for r, c in grids]
    off = np.cumsum([0] + sizes[:-1]).astype(np.int64)
    real = [(_ceil(_ceil(h.height * c.v, vmax), 8), _ceil(_ceil(h.width * c.h, hmax), 8)) for c in comps]
    args = (comp_h, comp_v, np.array([slot[(0, d)] for d, _ in sel], np.int64),
            np.array([slot[(1, a)] for _, a in sel], np.int64), off, np.array([c for _, c in grids], np.int64),
            mcux, mcuy, h.restart_interval, *arrays, _ZZ)  # fmt: skip
    coef = (h.quant_tables(), tuple((c.h, c.v) for c in comps), h.width, h.height)
    return _Plan(start, coef, tuple((c.h, c.v) for c in comps), args, tuple(grids), tuple(real), off,
                 tuple(sizes), h.color), start  # fmt: skip


def _ceil(a: int, b: int) -> int:
    return -(-a // b)
