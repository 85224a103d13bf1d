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

import os

import numpy as np

from dnnjpeg.codec.coefficients import Coefficients
from dnnjpeg.codec.errors import CorruptJpegError
from dnnjpeg.codec.strict import libjpeg_check
from dnnjpeg.codec.tables import ZIGZAG
from dnnjpeg.dct.huffman import _LOOK
from dnnjpeg.dct.plan import _Plan, _plan

__all__ = ["read_coefficients_fast", "decode_coefficients", "decode_flat"]

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


def decode_flat(data: bytes, path: str = "<bytes>", verify: bool = True) -> tuple[_Plan, np.ndarray] | None:
    """The scan decoded into one int16 (blocks, 64) array, natural order: component ``i``'s blocks
    start at row ``plan.off[i]``, row-major over its decoded grid ``plan.grids[i]`` (of which the first
    ``plan.real[i]`` rows and columns are the image's). None for progressive or multi-scan files.
    For layouts that skip :class:`Coefficients` (the planes loader); errors as
    :func:`decode_coefficients`. ``verify`` False skips libjpeg's verdict, for bytes dnnjpeg has just
    encoded itself (as the pixel path decodes its own encodes without it)."""
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
    if verify:
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
