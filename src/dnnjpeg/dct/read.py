"""Read a baseline JPEG's quantized DCT coefficients without decoding pixels: a Huffman decoder
compiled with numba.

Why by hand: libjpeg-turbo's ``jpeg_read_coefficients`` is not exposed by Pillow, and jpeglib's
``read_dct`` goes through its own file handling at about 3 ms a file, slower than Pillow's whole
pixel decode (BENCHMARKS.md); a coefficient reader is only worth having when it is cheaper than the
decode it replaces. Entropy decoding is all that is left once the IDCT, up-sampling and colour
conversion are dropped, and it is a short loop: the Huffman codes of the file (a 9-bit lookup
table, the canonical slow path for longer codes), byte stuffing, restart markers, DC prediction.

Sequential Huffman files with one scan (baseline and extended 8-bit: what cameras, Pillow and
libjpeg write by default) take this path; progressive files and sequential files split into
several scans are read by jpeglib (:func:`dnnjpeg.codec.read_coefficients`), same result, slower.
As with pixel decoding (:func:`dnnjpeg.codec.load_image`), anything libjpeg would warn about (data
cut short, a bad Huffman code, a wrong restart marker, bytes left over) is an error naming the file.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from dnnjpeg.codec.coefficients import Coefficients, _check_supported
from dnnjpeg.codec.errors import CorruptJpegError
from dnnjpeg.codec.header import _segments, parse_header_bytes
from dnnjpeg.codec.tables import ZIGZAG

__all__ = ["read_coefficients_fast", "decode_coefficients"]

_LOOK = 9  # bits of the lookup table: most codes are shorter (libjpeg uses 8–9)


def _tables(bits: np.ndarray, vals: np.ndarray, ac: bool):
    """Canonical decoding arrays of one Huffman table: (maxcode (18,), valptr (17,), mincode (17,),
    look_len (512,), look_sym (512,), fast (512,)) — lengths 1..16, a 9-bit table for codes up to 9
    bits, and ``fast``: where a code and its magnitude bits fit in the 9 bits, the decoded value,
    run and length packed as value·2¹⁶ + run·2⁸ + length (0: not fast; end of block and ZRL never are)."""
    maxcode = np.full(18, -1, np.int64)
    valptr = np.zeros(17, np.int64)
    mincode = np.zeros(17, np.int64)
    look_len = np.zeros(1 << _LOOK, np.int64)
    look_sym = np.zeros(1 << _LOOK, np.int64)
    code = k = 0
    for length in range(1, 17):
        n = int(bits[length - 1])
        if n:
            valptr[length] = k
            mincode[length] = code
            for _ in range(n):
                if length <= _LOOK:
                    lo = code << (_LOOK - length)
                    look_len[lo : lo + (1 << (_LOOK - length))] = length
                    look_sym[lo : lo + (1 << (_LOOK - length))] = vals[k]
                code += 1
                k += 1
            maxcode[length] = code - 1
        code <<= 1
    maxcode[17] = 1 << 40  # sentinel: no code is longer than 16 bits
    fast = np.zeros(1 << _LOOK, np.int64)
    for idx in range(1 << _LOOK):
        ln = int(look_len[idx])
        if not ln:
            continue
        sym = int(look_sym[idx])
        run, size = (sym >> 4, sym & 15) if ac else (0, sym)
        if (ac and size == 0) or ln + size > _LOOK:
            continue
        v = (idx >> (_LOOK - ln - size)) & ((1 << size) - 1) if size else 0
        if size and v < (1 << (size - 1)):
            v -= (1 << size) - 1
        fast[idx] = v * 65536 + run * 256 + ln + size
    return maxcode, valptr, mincode, look_len, look_sym, fast


@functools.lru_cache(maxsize=64)
def _decoder_tables(specs: tuple[bytes, ...]) -> tuple[np.ndarray, ...]:
    """The kernel's stacked arrays for the tables a scan uses (each given as its DHT bytes: class/id,
    16 counts, values); cached, since most files of a dataset share their Huffman tables."""
    built, huffval = [], np.zeros((len(specs), 256), np.int64)
    for i, spec in enumerate(specs):
        bits = np.frombuffer(spec[1:17], np.uint8)
        vals = np.frombuffer(spec[17:], np.uint8)
        built.append(_tables(bits, vals, spec[0] >> 4 == 1))
        huffval[i, : len(vals)] = vals
    return (*(np.stack([b[i] for b in built]) for i in range(6)), huffval)


_ZZ = ZIGZAG.astype(np.int64)
_KERNEL: list = []


def _kernel():
    """The compiled scan decoder (built on first use, cached on disk by numba)."""
    if _KERNEL:
        return _KERNEL[0]
    import numba

    mask = (1 << 48) - 1  # the bit buffer keeps at most 47 bits: plain int64 arithmetic

    # One flat loop, no helper functions: a compiled call that takes arrays pays reference counting
    # on each of them, which at one call per Huffman symbol made the decoder four times slower.
    @numba.njit(cache=True, nogil=True)
    def decode(
        data,
        pos,
        comp_h,
        comp_v,
        comp_dc,
        comp_ac,
        comp_off,
        comp_bw,
        mcux,
        mcuy,
        restart,
        maxcode,
        valptr,
        mincode,
        look_len,
        look_sym,
        fast,
        huffval,
        zz,
        out,
    ):  # pragma: no cover - compiled
        # returns (status, position after the scan): 0 ok, 1 bad Huffman code, 2 data cut short,
        # 3 wrong restart marker, 4 coefficient index past 63, 5 bytes left over
        n = data.shape[0]
        ncomp = comp_h.shape[0]
        buf = 0
        nbits = 0
        padded = 0  # zero bits fed past the end of the data (a marker or the file's end)
        pred = np.zeros(ncomp, np.int64)
        mcu = 0
        rst = 0
        for my in range(mcuy):
            for mx in range(mcux):
                if restart > 0 and mcu > 0 and mcu % restart == 0:
                    if padded > 0 and nbits < padded:
                        return 2, pos
                    nbits = 0
                    buf = 0
                    padded = 0
                    while pos + 1 < n and data[pos] == 0xFF and data[pos + 1] == 0xFF:
                        pos += 1
                    if pos + 1 >= n or data[pos] != 0xFF or data[pos + 1] != 0xD0 + rst:
                        return 3, pos
                    pos += 2
                    rst = (rst + 1) & 7
                    for c in range(ncomp):
                        pred[c] = 0
                mcu += 1
                for c in range(ncomp):
                    tdc = comp_dc[c]
                    tac = comp_ac[c]
                    for by in range(comp_v[c]):
                        for bx in range(comp_h[c]):
                            blk = comp_off[c] + (my * comp_v[c] + by) * comp_bw[c] + mx * comp_h[c] + bx
                            k = 0
                            while k < 64:
                                if nbits < 32:  # refill: a code (≤ 16 bits) and its magnitude (≤ 11)
                                    while nbits < 40:
                                        b = 0
                                        if pos < n and data[pos] != 0xFF:
                                            b = data[pos]
                                            pos += 1
                                        elif pos + 1 < n and data[pos + 1] == 0x00:
                                            b = 0xFF
                                            pos += 2
                                        else:  # a marker or the end: zeros, counted (used = cut short)
                                            padded += 8
                                        buf = ((buf << 8) | b) & mask
                                        nbits += 8
                                t = tdc if k == 0 else tac
                                idx = (buf >> (nbits - 9)) & 511
                                f = fast[t, idx]
                                if f != 0:  # a short code and its magnitude in one lookup
                                    nbits -= f & 255
                                    val = f >> 16
                                    if k == 0:
                                        pred[c] += val
                                        out[blk, 0] = pred[c]
                                        k = 1
                                        continue
                                    k += (f >> 8) & 255
                                    if k > 63:
                                        return 4, pos
                                    out[blk, zz[k]] = val
                                    k += 1
                                    continue
                                ln = look_len[t, idx]
                                if ln > 0:
                                    sym = look_sym[t, idx]
                                else:
                                    ln = 10
                                    code = (buf >> (nbits - 10)) & 1023
                                    while ln <= 16 and code > maxcode[t, ln]:
                                        ln += 1
                                        code = (buf >> (nbits - ln)) & ((1 << ln) - 1)
                                    if ln > 16:
                                        return 1, pos
                                    sym = huffval[t, valptr[t, ln] + code - mincode[t, ln]]
                                nbits -= ln
                                if k == 0:
                                    r = 0
                                    s = sym
                                else:
                                    r = sym >> 4
                                    s = sym & 15
                                    if s == 0:
                                        if r != 15:
                                            break  # end of block
                                        k += 16
                                        continue
                                    k += r
                                    if k > 63:
                                        return 4, pos
                                val = 0
                                if s > 0:
                                    val = (buf >> (nbits - s)) & ((1 << s) - 1)
                                    nbits -= s
                                    if val < (1 << (s - 1)):
                                        val = val - (1 << s) + 1
                                if k == 0:
                                    pred[c] += val
                                    out[blk, 0] = pred[c]
                                else:
                                    out[blk, zz[k]] = val
                                k += 1
        if padded > 0 and nbits < padded:
            return 2, pos
        if nbits - padded >= 8:
            return 5, pos  # whole bytes read ahead and never used: extraneous data
        return 0, pos

    _KERNEL.append(decode)
    return decode


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


def _parse_plan(data: bytes, path: str) -> tuple[_Plan | None, int | None]:
    h = parse_header_bytes(data, path)
    _check_supported(h)
    if h.warnings:  # what libjpeg would warn about in the header is an error here too
        raise CorruptJpegError(path, h.warnings[0])
    if h.mode == "progressive":
        return None, None
    huff: dict[tuple[int, int], bytes] = {}  # (class, id) → the table's DHT bytes
    sos = start = None
    for marker, at, seg in _segments(data, path, True, []):
        if marker == 0xC4:
            j = 0
            while j + 17 <= len(seg):
                n = int(np.frombuffer(seg[j + 1 : j + 17], np.uint8).sum())
                huff[(seg[j] >> 4, seg[j] & 15)] = bytes(seg[j : j + 17 + n])
                j += 17 + n
        elif marker == 0xDA:
            sos, start = seg, at + 2 + ((data[at + 2] << 8) | data[at + 3])
            break
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
                 tuple(sizes)), start  # fmt: skip


def decode_coefficients(data: bytes, path: str = "<bytes>") -> Coefficients | None:
    """The quantized coefficients of a one-scan sequential Huffman JPEG held in memory.

    Returns:
        :class:`~dnnjpeg.codec.Coefficients` (blocks per component, natural order, each
        component's own block grid as libjpeg's ``width_in_blocks``), or None when the file is
        progressive or has several scans (the caller reads it with jpeglib).
    Raises:
        NotAJpegError / CorruptJpegError / UnsupportedJpegError naming ``path``.
    """
    plan = _plan(data, path)
    if plan is None:
        return None
    sizes, off, grids = plan.sizes, plan.off, plan.grids
    out = np.zeros((sum(sizes), 64), np.int16)
    status, end = _kernel()(np.frombuffer(data, np.uint8), plan.start, *plan.args, out)
    if status:
        why = {1: "bad Huffman code", 2: "data cut short (premature end of data segment)",
               3: "wrong or missing restart marker", 4: "coefficient index past 63",
               5: "extraneous bytes at the end of the scan"}[status]  # fmt: skip
        raise CorruptJpegError(path, f"corrupt scan data: {why}")
    if not _ends_cleanly(data, end):
        raise CorruptJpegError(path, f"bytes after the scan data at offset {end} before the end-of-image marker")
    blocks = []
    for i, (rows, cols) in enumerate(grids):
        b = out[off[i] : off[i] + sizes[i]].reshape(rows, cols, 8, 8)
        blocks.append(np.ascontiguousarray(b[: plan.real[i][0], : plan.real[i][1]]))
    return Coefficients(tuple(blocks), *plan.coef)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _ends_cleanly(data: bytes, end: int) -> bool:
    """After the scan: optional 0xFF fill, then EOI (libjpeg warns about anything else)."""
    j = end
    while j < len(data) and data[j] == 0xFF and j + 1 < len(data) and data[j + 1] == 0xFF:
        j += 1
    return data[j : j + 2] == b"\xff\xd9"


def read_coefficients_fast(path: str | os.PathLike[str]) -> Coefficients:
    """:func:`dnnjpeg.codec.read_coefficients` of a file, by the compiled decoder when the file is
    one-scan sequential (else jpeglib). Only regular files are opened."""
    from dnnjpeg._fs import read_regular
    from dnnjpeg.codec import read_coefficients

    p = os.fspath(path)
    coef = decode_coefficients(read_regular(p), p)
    return coef if coef is not None else read_coefficients(p)
