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
from dnnjpeg.codec.strict import libjpeg_check
from dnnjpeg.codec.tables import ZIGZAG

__all__ = ["read_coefficients_fast", "decode_coefficients", "decode_flat"]

_LOOK = 9  # bits of the lookup table: most codes are shorter (libjpeg uses 8–9)


def _tables(bits: np.ndarray, vals: np.ndarray, ac: bool):
    """Canonical decoding arrays of one Huffman table, in NumPy: the readable reference of the compiled
    builder (:func:`_decoder_tables`, equal in tests). (maxcode (18,), valptr (17,), mincode (17,),
    look_len (512,), look_sym (512,), fast (512,)) — lengths 1..16, a 9-bit table for codes up to 9
    bits, and ``fast``: where a code and its magnitude bits fit in the 9 bits, the decoded value,
    run and length packed as value·2¹⁶ + run·2⁸ + length (0: not fast; end of block and ZRL never are)."""
    counts = bits.astype(np.int64)  # codes of each length 1..16
    first = np.zeros(17, np.int64)  # the canonical first code of each length
    for length in range(1, 16):
        first[length + 1] = (first[length] + counts[length - 1]) << 1
    maxcode = np.full(18, -1, np.int64)
    mincode = np.zeros(17, np.int64)
    valptr = np.zeros(17, np.int64)
    has = counts > 0
    lengths = np.arange(1, 17)
    mincode[1:] = np.where(has, first[1:], 0)  # (lengths without codes are never looked at)
    maxcode[1:17] = np.where(has, first[1:] + counts - 1, -1)
    valptr[1:] = np.where(has, np.concatenate([[0], np.cumsum(counts)[:-1]]), 0)
    maxcode[17] = 1 << 40  # sentinel: no code is longer than 16 bits
    # codes of ≤ 9 bits, in canonical order, fill a prefix of the lookup table, 2^(9 − length) entries each
    sym_len = np.repeat(lengths, counts)
    short = sym_len <= _LOOK
    reps = 1 << (_LOOK - sym_len[short])
    look_len = np.zeros(1 << _LOOK, np.int64)
    look_sym = np.zeros(1 << _LOOK, np.int64)
    look_len[: reps.sum()] = np.repeat(sym_len[short], reps)
    look_sym[: reps.sum()] = np.repeat(vals[: len(sym_len)][short].astype(np.int64), reps)
    idx = np.arange(1 << _LOOK)
    ln, sym = look_len, look_sym
    run, size = (sym >> 4, sym & 15) if ac else (np.zeros_like(sym), sym)
    ok = (ln > 0) & (ln + size <= _LOOK) & ~((size == 0) & ac)
    shift = np.where(ok, _LOOK - ln - size, 0)
    v = (idx >> shift) & ((1 << size) - 1)
    v = np.where((size > 0) & (v < (1 << np.maximum(size - 1, 0))), v - (1 << size) + 1, v)
    fast = np.where(ok, v * 65536 + run * 256 + ln + size, 0).astype(np.int64)
    return maxcode, valptr, mincode, look_len, look_sym, fast


@functools.lru_cache(maxsize=64)
def _decoder_tables(specs: tuple[bytes, ...]) -> tuple[np.ndarray, ...]:
    """The kernel's stacked arrays for the tables a scan uses (each given as its DHT bytes: class/id,
    16 counts, values): (maxcode, valptr, mincode, look_len, look_sym, fast, huffval), one row per
    table; cached, since the files of many datasets share their Huffman tables. Built compiled: a
    photo's own optimized tables differ from every other file's, and in Python they cost more
    than decoding the scan."""
    t = len(specs)
    bits = np.zeros((t, 16), np.int64)
    huffval = np.zeros((t, 256), np.int64)
    ac = np.zeros(t, np.int64)
    for i, spec in enumerate(specs):
        bits[i] = np.frombuffer(spec[1:17], np.uint8)
        v = np.frombuffer(spec[17:], np.uint8)
        huffval[i, : len(v)] = v
        ac[i] = spec[0] >> 4
    out = (np.full((t, 18), -1, np.int64), np.zeros((t, 17), np.int64), np.zeros((t, 17), np.int64),
           *(np.zeros((t, 1 << _LOOK), np.int64) for _ in range(3)))  # fmt: skip
    _table_kernel()(bits, huffval, ac, *out)
    return (*out, huffval)


_TABLE_KERNEL: list = []


def _table_kernel():
    """Canonical Huffman decoding arrays, compiled (see :func:`_tables`, the same in NumPy)."""
    if _TABLE_KERNEL:
        return _TABLE_KERNEL[0]
    import numba

    LOOK = _LOOK

    @numba.njit(cache=True, nogil=True)
    def build(bits, huffval, ac, maxcode, valptr, mincode, look_len, look_sym, fast):  # pragma: no cover
        for t in range(bits.shape[0]):
            code = 0
            k = 0
            for length in range(1, 17):
                n = bits[t, length - 1]
                if n:
                    valptr[t, length] = k
                    mincode[t, length] = code
                    for _ in range(n):
                        if length <= LOOK:
                            lo = code << (LOOK - length)
                            for j in range(lo, lo + (1 << (LOOK - length))):
                                look_len[t, j] = length
                                look_sym[t, j] = huffval[t, k]
                        code += 1
                        k += 1
                    maxcode[t, length] = code - 1
                code <<= 1
            maxcode[t, 17] = 1 << 40
            for j in range(1 << LOOK):
                ln = look_len[t, j]
                if ln == 0:
                    continue
                sym = look_sym[t, j]
                run = sym >> 4 if ac[t] else 0
                size = sym & 15 if ac[t] else sym
                if (ac[t] and size == 0) or ln + size > LOOK:
                    continue
                v = (j >> (LOOK - ln - size)) & ((1 << size) - 1) if size else 0
                if size and v < (1 << (size - 1)):
                    v -= (1 << size) - 1
                fast[t, j] = v * 65536 + run * 256 + ln + size

    _TABLE_KERNEL.append(build)
    return build


_ZZ = ZIGZAG.astype(np.int64)
_KERNEL: list = []


def _kernel():
    """The compiled scan decoder (built on first use, cached on disk by numba)."""
    if _KERNEL:
        return _KERNEL[0]
    import numba

    mask = (1 << 56) - 1  # the bit buffer keeps at most 55 bits: plain int64 arithmetic
    LOOK, LMASK = _LOOK, (1 << _LOOK) - 1

    # One flat loop, no helper functions: a compiled call that takes arrays pays reference counting
    # on each of them, which at one call per Huffman symbol made the decoder four times slower.
    @numba.njit(cache=True, nogil=True)
    def decode(
        data,
        seg_end,
        codes,
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
        # data: the scan's entropy-coded bytes with stuffing and markers removed; seg_end: where each
        # restart interval's bytes end in it; codes: the marker after each (RST0..7 expected).
        # returns (status, 0): 0 ok, 1 bad Huffman code, 2 data cut short, 3 wrong restart marker,
        # 4 coefficient index past 63, 5 bytes left over
        pos = 0
        si = 0
        limit = seg_end[0]
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
                    if pos < limit or nbits - padded >= 8:
                        return 5, pos  # bytes of the interval left unused
                    if si + 1 >= seg_end.shape[0] or codes[si] != 0xD0 + rst:
                        return 3, pos
                    si += 1
                    limit = seg_end[si]
                    nbits = 0
                    buf = 0
                    padded = 0
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
                            # The DC coefficient, then the AC run: the same decoding, kept apart so
                            # that the AC loop, where the time goes, tests nothing about DC.
                            k = 0
                            while k < 64:
                                while nbits < 32:  # refill: a code (≤ 16 bits) and its magnitude (≤ 11)
                                    if pos + 3 <= limit:
                                        w = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
                                        buf = ((buf << 24) | w) & mask
                                        nbits += 24
                                        pos += 3
                                    else:
                                        b = 0
                                        if pos < limit:
                                            b = data[pos]
                                            pos += 1
                                        else:  # past the interval's bytes: zeros, counted (used = cut short)
                                            padded += 8
                                        buf = ((buf << 8) | b) & mask
                                        nbits += 8
                                t = tdc if k == 0 else tac
                                idx = (buf >> (nbits - LOOK)) & LMASK
                                f = fast[t, idx]
                                if f != 0:  # a short code and its magnitude in one lookup
                                    nbits -= f & 255
                                    val = f >> 16
                                    r = (f >> 8) & 255
                                else:
                                    ln = look_len[t, idx]
                                    if ln > 0:
                                        sym = look_sym[t, idx]
                                    else:  # a code longer than the lookup: canonical search
                                        ln = LOOK + 1
                                        code = (buf >> (nbits - ln)) & ((1 << ln) - 1)
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
                                    val = 0
                                    if s > 0:
                                        val = (buf >> (nbits - s)) & ((1 << s) - 1)
                                        nbits -= s
                                        if val < (1 << (s - 1)):
                                            val = val - (1 << s) + 1
                                if k == 0:
                                    pred[c] += val
                                    out[blk, 0] = pred[c]
                                    k = 1
                                    continue
                                k += r
                                if k > 63:
                                    return 4, pos
                                out[blk, zz[k]] = val
                                k += 1
        if padded > 0 and nbits < padded:
            return 2, pos
        if pos < limit or nbits - padded >= 8 or si + 1 != seg_end.shape[0]:
            return 5, pos  # bytes (or restart intervals) after the last block
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


def decode_coefficients(data: bytes, path: str = "<bytes>") -> Coefficients | None:
    """The quantized coefficients of a one-scan sequential Huffman JPEG held in memory.

    Returns:
        :class:`~dnnjpeg.codec.Coefficients` (blocks per component, natural order, each
        component's own block grid as libjpeg's ``width_in_blocks``), or None when the file is
        progressive or has several scans (the caller reads it with jpeglib).
    Raises:
        NotAJpegError / CorruptJpegError / UnsupportedJpegError naming ``path``.
    """
    flat = decode_flat(data, path)
    if flat is None:
        return None
    plan, out = flat
    off, grids, sizes = plan.off, plan.grids, plan.sizes
    blocks = []
    for i, (rows, cols) in enumerate(grids):
        b = out[off[i] : off[i] + sizes[i]].reshape(rows, cols, 8, 8)
        blocks.append(np.ascontiguousarray(b[: plan.real[i][0], : plan.real[i][1]]))
    return Coefficients(tuple(blocks), *plan.coef)


def decode_flat(data: bytes, path: str = "<bytes>") -> tuple[_Plan, np.ndarray] | None:
    """The scan decoded into one int16 (blocks, 64) array, natural order: component ``i``'s blocks
    start at row ``plan.off[i]``, row-major over its decoded grid ``plan.grids[i]`` (of which the first
    ``plan.real[i]`` rows and columns are the image's). None for progressive or multi-scan files.
    For layouts that skip :class:`Coefficients` (the planes loader); errors as
    :func:`decode_coefficients`."""
    plan = _plan(data, path)
    if plan is None:
        return None
    out = np.zeros((sum(plan.sizes), 64), np.int16)
    body, seg_end, codes, end = _entropy_data(np.frombuffer(data, np.uint8), plan.start)
    if end is None:
        raise CorruptJpegError(path, "premature end of JPEG file: no marker after the scan data")
    status, _ = _kernel()(body, seg_end, codes, *plan.args, out)
    if status:
        why = {1: "bad Huffman code", 2: "data cut short (premature end of data segment)",
               3: "wrong or missing restart marker", 4: "coefficient index past 63",
               5: "extraneous bytes at the end of the scan"}[status]  # fmt: skip
        raise CorruptJpegError(path, f"corrupt scan data: {why}")
    if not _ends_cleanly(data, end):
        raise CorruptJpegError(path, f"bytes after the scan data at offset {end} before the end-of-image marker")
    # exactly as strict as libjpeg: whatever it warns about (extraneous bytes between segments, a
    # scan cut short, ...) is refused here too, so the coefficient and pixel paths read the same files
    libjpeg_check(data, path)
    return plan, out


def _entropy_data(arr: np.ndarray, start: int):
    """The scan's entropy-coded bytes, unstuffed (0xFF 0x00 → 0xFF), with its restart markers taken out.

    Returns:
        (bytes (M,) uint8, where each restart interval ends in them (S,) int64, the marker code
        after each interval but the last (S − 1,), the file offset of the marker that ends the
        scan or None when the file ends first).
    """
    n = len(arr) - start
    body = np.empty(max(n, 1), np.uint8)
    seg_end = np.empty(n // 2 + 2, np.int64)
    codes = np.empty(n // 2 + 2, np.int64)
    m, s, end = _unstuff_kernel()(arr, start, body, seg_end, codes)
    return body[:m], seg_end[: s + 1], codes[:s], (None if end < 0 else int(end))


_UNSTUFF: list = []


def _unstuff_kernel():
    """One compiled pass over the scan: copy data bytes, drop stuffed zeros, note restart markers."""
    if _UNSTUFF:
        return _UNSTUFF[0]
    import numba

    @numba.njit(cache=True, nogil=True)
    def unstuff(arr, pos, body, seg_end, codes):  # pragma: no cover - compiled
        n = arr.shape[0]
        m = 0
        s = 0
        while pos < n:
            b = arr[pos]
            if b != 0xFF:
                body[m] = b
                m += 1
                pos += 1
                continue
            if pos + 1 < n and arr[pos + 1] == 0x00:  # a stuffed data 0xFF
                body[m] = 0xFF
                m += 1
                pos += 2
                continue
            f = pos
            while pos + 1 < n and arr[pos + 1] == 0xFF:  # fill before a marker
                pos += 1
            if pos + 1 >= n:
                break
            code = arr[pos + 1]
            seg_end[s] = m
            if code < 0xD0 or code > 0xD7:
                return m, s, f
            codes[s] = code
            s += 1
            pos += 2
        seg_end[s] = m
        return m, s, -1

    _UNSTUFF.append(unstuff)
    return unstuff


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
