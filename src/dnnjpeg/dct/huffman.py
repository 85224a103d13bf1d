"""Huffman decoding tables for the compiled coefficient reader: a 9-bit lookup with short magnitudes
folded in, and the canonical slow path for longer codes (built once per set of DHT bytes)."""

from __future__ import annotations

import functools

import numpy as np

__all__: list[str] = []

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
