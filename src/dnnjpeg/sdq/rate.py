"""The exact entropy-coded size of quantized levels under given Huffman tables (baseline JPEG).

A baseline scan codes, per block in the scan's order, the DC difference to the previous block of
the same component (a size category's Huffman code + that many magnitude bits) and the AC levels
in zig-zag order as run/size symbols (a run of up to 15 zeros and the size of the next nonzero
level, + its magnitude bits), ZRL (0xF0) for each further 16 zeros, and EOB (0x00) when the block
ends in zeros. :func:`scan_bits` counts exactly that, vectorized over blocks; the file's scan holds
these bits padded to a byte, with a 0x00 stuffed after every 0xFF byte.

Why by hand: libjpeg exposes no per-block bit count, and a search over levels needs it without
writing a file per candidate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dnnjpeg.codec.tables import ZIGZAG

__all__ = ["HuffmanTable", "parse_huffman", "scan_bits", "scan_symbols", "optimal_table", "magnitude_size"]


@dataclass(frozen=True)
class HuffmanTable:
    """One DHT table: ``lengths`` int (256,) code length in bits of every symbol (0: not coded)."""

    lengths: np.ndarray

    @staticmethod
    def from_bits(bits: Sequence[int], values: Sequence[int]) -> HuffmanTable:
        """From a DHT segment's 16 counts (codes of length 1..16) and its symbols in order."""
        if len(bits) != 16 or sum(bits) != len(values):
            raise ValueError(f"a Huffman table needs 16 counts summing to its {len(values)} symbols")
        lengths = np.zeros(256, np.int64)
        i = 0
        for n_bits, count in enumerate(bits, start=1):
            for v in values[i : i + count]:
                lengths[v] = n_bits
            i += count
        return HuffmanTable(lengths)


def magnitude_size(v: np.ndarray) -> np.ndarray:
    """JPEG's size category of integer levels: 0 for 0, else the bit length of |v| (int64, same shape)."""
    a = np.abs(np.asarray(v, np.int64))
    return np.where(a == 0, 0, np.floor(np.log2(np.maximum(a, 1))).astype(np.int64) + 1)


def parse_huffman(data: bytes) -> tuple[dict[tuple[int, int], HuffmanTable], dict[int, tuple[int, int]]]:
    """The Huffman tables of a baseline JPEG file and which ones each scan component uses.

    Args:
        data: the file's bytes (one scan: baseline sequential).
    Returns:
        ({(class, id): table} with class 0 = DC, 1 = AC; {component id: (DC id, AC id)} from the SOS).
    Raises:
        ValueError: no SOS (the header parser's reason: cut short, an end of image first...).
    """
    from dnnjpeg.codec.errors import JpegError
    from dnnjpeg.codec.header import _segments

    tables: dict[tuple[int, int], HuffmanTable] = {}
    try:  # the header parser's walk: fill bytes, junk and lengths handled once, for every reader
        for marker, _, seg in _segments(data, "<bytes>", True, []):
            if marker == 0xC4:
                j = 0
                while j < len(seg):
                    tc, th = seg[j] >> 4, seg[j] & 15
                    bits = list(seg[j + 1 : j + 17])
                    values = list(seg[j + 17 : j + 17 + sum(bits)])
                    tables[(tc, th)] = HuffmanTable.from_bits(bits, values)
                    j += 17 + sum(bits)
            elif marker == 0xDA:
                n = seg[0]
                use = {seg[1 + 2 * k]: (seg[2 + 2 * k] >> 4, seg[2 + 2 * k] & 15) for k in range(n)}
                return tables, use
    except JpegError as e:
        raise ValueError(f"no start of scan (SOS) segment: {e}") from None
    raise ValueError("no start of scan (SOS) segment")


def _coding_order(rows: int, cols: int, h: int, v: int, mcus: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """An interleaved scan's blocks of one component, MCU by MCU (h×v blocks each, row-major):
    (block row, block column) arrays in coding order."""
    my, mx = mcus
    by = np.arange(my)[:, None, None, None] * v + np.arange(v)[None, None, :, None]
    bx = np.arange(mx)[None, :, None, None] * h + np.arange(h)[None, None, None, :]
    by, bx = np.broadcast_arrays(by, bx)
    return by.reshape(-1), bx.reshape(-1)


def scan_bits(
    blocks: Sequence[np.ndarray],
    sampling: Sequence[tuple[int, int]],
    width: int,
    height: int,
    dc: Sequence[HuffmanTable],
    ac: Sequence[HuffmanTable],
) -> int:
    """Bits of the entropy-coded scan (before byte padding and stuffing) of a baseline JPEG.

    Args:
        blocks: per component, integer levels (rows, cols, 8, 8) in natural order (as
            :class:`dnnjpeg.codec.Coefficients` holds them), at least the component's own
            ceil(its width / 8) × ceil(its height / 8) blocks; more (MCU padding) are ignored.
        sampling: (h, v) per component; ``width`` / ``height``: the image's size in pixels.
        dc / ac: per component, its DC and AC Huffman table.
    Returns:
        the number of bits. An interleaved scan codes whole MCUs: the blocks past the component's
        edge are libjpeg's dummy blocks (the previous block's DC, AC zero: a size-0 DC difference
        and an EOB each). Raises ValueError when a level needs a symbol the tables lack, or a
        component holds too few blocks.
    """
    total = 0
    for (dcn, acn, mag), dct, act in zip(scan_symbols(blocks, sampling, width, height), dc, ac):
        total += _coded(dct, dcn, "DC") + _coded(act, acn, "AC") + mag
    return int(total)


def scan_symbols(
    blocks: Sequence[np.ndarray], sampling: Sequence[tuple[int, int]], width: int, height: int
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """How often each Huffman symbol occurs in a baseline scan of these levels, per component:
    (DC size categories (256,), AC run/size symbols with ZRL and EOB (256,) counts, magnitude
    bits), dummy blocks of an interleaved scan included (what libjpeg's optimize_coding gathers).
    Arguments as :func:`scan_bits`; a component with too few blocks is a ValueError."""
    hmax, vmax = max(s[0] for s in sampling), max(s[1] for s in sampling)
    interleaved = len(blocks) > 1
    out = []
    for comp, (h, v) in zip(blocks, sampling):
        comp = np.asarray(comp)
        rows = math.ceil(math.ceil(height * v / vmax) / 8)
        cols = math.ceil(math.ceil(width * h / hmax) / 8)
        if comp.shape[0] < rows or comp.shape[1] < cols:
            raise ValueError(f"a {width}×{height} image needs {rows}×{cols} blocks here, got {comp.shape[:2]}")
        if interleaved:
            by, bx = _coding_order(rows, cols, h, v, (math.ceil(height / (8 * vmax)), math.ceil(width / (8 * hmax))))
            real = (by < rows) & (bx < cols)
            by, bx, n_dummy = by[real], bx[real], int((~real).sum())
        else:  # a single-component scan codes the component's own blocks in raster order
            by, bx = np.divmod(np.arange(rows * cols), cols)
            n_dummy = 0
        z = comp[by, bx].reshape(-1, 64)[:, ZIGZAG].astype(np.int64)
        dc_size = magnitude_size(np.diff(z[:, 0], prepend=0))
        dc = np.bincount(dc_size, minlength=256)
        acc, ac_mag = _ac_symbols(z[:, 1:])
        dc[0] += n_dummy  # a dummy block: the previous block's DC (difference 0) and an EOB
        acc[0x00] += n_dummy
        out.append((dc, acc, int(dc_size.sum()) + ac_mag))
    return out


def _ac_symbols(ac: np.ndarray) -> tuple[np.ndarray, int]:
    """(n, 63) zig-zag AC levels → (counts of their run/size symbols, ZRLs and EOBs (256,), magnitude bits)."""
    blk, pos = np.nonzero(ac)
    pos = pos + 1  # zig-zag index 1..63
    first = np.r_[True, blk[1:] != blk[:-1]] if len(blk) else np.zeros(0, bool)
    run = pos - np.where(first, 0, np.r_[0, pos[:-1]]) - 1
    size = magnitude_size(ac[blk, pos - 1])
    counts = np.bincount((run % 16) * 16 + size, minlength=256)
    counts[0xF0] += int((run // 16).sum())
    # np.nonzero runs block by block, positions rising: a block's last entry is its last nonzero
    ends = np.r_[blk[1:] != blk[:-1], True] if len(blk) else np.zeros(0, bool)
    counts[0x00] += len(ac) - int((pos[ends] == 63).sum())  # EOB unless the last level is at 63
    return counts, int(size.sum())


def _coded(table: HuffmanTable, counts: np.ndarray, what: str) -> int:
    """Bits of the Huffman codes of symbols counted (256,); a used symbol without a code is a ValueError."""
    missing = np.flatnonzero((counts > 0) & (table.lengths == 0))
    if len(missing):
        m = int(missing[0])
        name = {0x00: "EOB", 0xF0: "ZRL"}.get(m, f"symbol 0x{m:02X}") if what == "AC" else f"symbol 0x{m:02X}"
        raise ValueError(f"{what} {name} has no Huffman code in these tables")
    return int(counts @ table.lengths)


def optimal_table(freq: np.ndarray) -> HuffmanTable:
    """The Huffman table libjpeg's optimize_coding builds for symbol counts (256,): the same
    algorithm (jpeg_gen_optimal_table: merge the two rarest, ties to the higher symbol; a reserved
    code so that no code is all ones; lengths limited to 16 bits), so the same code lengths.

    Why by hand: SDQ needs the tables libjpeg will fit to candidate levels without writing a file."""
    f = np.zeros(257, np.int64)
    f[:256] = freq
    f[256] = 1  # the reserved code point
    codesize = np.zeros(257, np.int64)
    _merge_kernel()(f, codesize, np.full(257, -1, np.int64))
    bits = np.bincount(codesize[codesize > 0], minlength=33)
    for i in range(32, 16, -1):  # limit to 16 bits as libjpeg does
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1  # drop the reserved code (the longest)
    order = [int(j) for n in range(1, 33) for j in np.flatnonzero(codesize[:256] == n)]
    return HuffmanTable.from_bits([int(b) for b in bits[1:17]], order[: int(bits[1:17].sum())])


_MERGE: list = []


def _merge_kernel():
    """libjpeg's merge loop (the rarest two, ties to the higher symbol), compiled: in Python its
    160-odd passes over 257 counts cost more than writing the file it saves."""
    if _MERGE:
        return _MERGE[0]
    import numba

    @numba.njit(cache=True)
    def merge(f, codesize, others):  # pragma: no cover - compiled
        while True:
            c1 = -1
            v = 1 << 62
            for i in range(257):
                if f[i] and f[i] <= v:
                    v = f[i]
                    c1 = i
            c2 = -1
            v = 1 << 62
            for i in range(257):
                if f[i] and f[i] <= v and i != c1:
                    v = f[i]
                    c2 = i
            if c2 < 0:
                return
            f[c1] += f[c2]
            f[c2] = 0
            codesize[c1] += 1
            while others[c1] >= 0:
                c1 = others[c1]
                codesize[c1] += 1
            others[c1] = c2
            codesize[c2] += 1
            while others[c2] >= 0:
                c2 = others[c2]
                codesize[c2] += 1

    _MERGE.append(merge)
    return merge


def _ac_bits(ac: np.ndarray, table: HuffmanTable) -> int:
    """(n, 63) zig-zag AC levels → bits of their run/size symbols, ZRLs, magnitudes and EOBs."""
    counts, mag = _ac_symbols(ac)
    return _coded(table, counts, "AC") + mag
