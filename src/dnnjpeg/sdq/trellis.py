"""The block-level search of soft-decision quantization: each block's AC levels that minimize
weighted squared error + λ · bits under given Huffman code lengths (the trellis of SDQ and mozjpeg).

For every AC coefficient the candidates are its rounded level r, one step toward zero (r − sign r,
when |r| ≥ 2) and zero. A dynamic programme over the zig-zag positions keeps, per block and per
position i, the cheapest way to end with a nonzero level at i: the previous nonzero j, the zeros
between them (the run, with a ZRL per 16) and the run/size symbol's code length plus the level's
magnitude bits. The block ends with EOB unless its last level is at position 63. This is exact
for the Lagrangian given the code lengths; vectorized over blocks with NumPy (one step per
position, all previous positions at once).

Why by hand: no library chooses JPEG levels against a weighted error (mozjpeg's trellis is for
PSNR and is not reachable from Python).
"""

from __future__ import annotations

import numpy as np

from dnnjpeg.codec.tables import ZIGZAG
from dnnjpeg.sdq.rate import HuffmanTable, magnitude_size

__all__ = ["trellis_ac", "sdq_levels"]


def trellis_ac(
    coef: np.ndarray, steps: np.ndarray, weights: np.ndarray, lam: float, ac: HuffmanTable, engine: str = "numba"
) -> np.ndarray:
    """The AC levels of every block minimizing Σ_k w_k (c_k − q_k l_k)² + λ · bits.

    Args:
        coef: float (N, 63) unquantized AC coefficients in zig-zag order (positions 1..63).
        steps: (63,) quantization steps, zig-zag order; ``weights``: (63,) w_k ≥ 0 for every
            block, or (N, 63) one row per block (per-image gradient weights).
        lam: λ ≥ 0, in squared coefficient units per bit.
        ac: the AC Huffman table whose code lengths are the rate.
        engine: "numba" (a compiled loop per block; the default) or "numpy" (vectorized over
            blocks, the reference): the same levels.
    Returns:
        int64 (N, 63) levels. With λ = 0 and positive weights: round(c / q).
    """
    c = np.asarray(coef, np.float64)
    n = len(c)
    q = np.asarray(steps, np.float64)
    w = np.asarray(weights, np.float64)
    if c.ndim != 2 or c.shape[1] != 63 or q.shape != (63,) or w.shape not in ((63,), (n, 63)):
        raise ValueError(
            f"expected coef (N, 63), steps (63,), weights (63,) or (N, 63), got {c.shape}, {q.shape}, {w.shape}"
        )
    if not lam >= 0:
        raise ValueError(f"λ must be ≥ 0, got {lam}")
    length = ac.lengths.astype(np.float64)
    length = np.where(length > 0, length, np.inf)  # a symbol without a code cannot be chosen
    if engine == "numba":
        out = np.zeros((n, 63), np.int64)
        w2 = np.ascontiguousarray(w.reshape(-1, 63))  # one row for every block, or one per block
        _trellis_numba()(
            np.ascontiguousarray(c), q, w2, 1 if len(w2) == n and w.ndim == 2 else 0, float(lam), length, out
        )
        return out
    if engine != "numpy":
        raise ValueError(f"engine must be numba or numpy, got {engine!r}")
    return _trellis_numpy(c, q, w, float(lam), length)


def _trellis_numpy(c: np.ndarray, q: np.ndarray, w: np.ndarray, lam: float, length: np.ndarray) -> np.ndarray:
    """The reference form of :func:`trellis_ac`: the dynamic programme vectorized over blocks (N, 63)."""
    n = len(c)
    zrl, eob = length[0xF0], length[0x00]
    r = np.rint(c / q)
    cands = np.stack([r, r - np.sign(r)])  # (2, N, 63): rounded, one step toward zero
    valid = np.stack([r != 0, np.abs(r) >= 2])
    dist = w * (c[None] - q * cands) ** 2  # (2, N, 63)
    zero = w * c**2  # (N, 63)
    run_cost = np.concatenate([np.zeros((n, 1)), np.cumsum(zero, 1)], 1)  # (N, 64): zeros before index t
    size = magnitude_size(cands)  # (2, N, 63)
    best = np.full((n, 64), np.inf)  # best[:, j]: cheapest with the last nonzero at position j (0: none yet)
    best[:, 0] = 0.0
    prev = np.zeros((n, 64), np.int64)
    level = np.zeros((n, 64), np.int64)
    for i in range(1, 64):
        j = np.arange(i)
        run = i - j - 1
        sym_len = length[(run % 16)[None, None, :] * 16 + size[:, :, i - 1, None]]  # (2, N, i)
        n_zrl = run // 16
        zrl_bits = np.zeros(i)
        zrl_bits[n_zrl > 0] = n_zrl[n_zrl > 0] * zrl  # (no 0 · ∞ when the table has no ZRL)
        bits = sym_len + size[:, :, i - 1, None] + zrl_bits[None, None, :]
        between = run_cost[:, i - 1, None] - run_cost[:, :i]  # zeros at positions j+1..i-1
        rate = np.where(np.isfinite(bits), lam * np.where(np.isfinite(bits), bits, 0.0), np.inf)  # 0 · ∞ is ∞ here
        total = best[None, :, :i] + between[None] + dist[:, :, i - 1, None] + rate  # (2, N, i)
        total = np.where(valid[:, :, i - 1, None], total, np.inf)
        arg = total.reshape(2, n, i).argmin(2)
        val = np.take_along_axis(total, arg[..., None], 2)[..., 0]  # (2, N)
        k = val.argmin(0)  # which candidate
        best[:, i] = val[k, np.arange(n)]
        prev[:, i] = arg[k, np.arange(n)]
        level[:, i] = cands[k, np.arange(n), i - 1]
    end_bits = np.where(np.arange(64) < 63, eob, 0.0)
    end_rate = np.where(np.isfinite(end_bits), lam * np.where(np.isfinite(end_bits), end_bits, 0.0), np.inf)
    end = best + (run_cost[:, 63, None] - run_cost) + end_rate[None]
    cur = end.argmin(1)
    out = np.zeros((n, 63), np.int64)
    rows = np.arange(n)
    while np.any(cur > 0):
        on = cur > 0
        out[rows[on], cur[on] - 1] = level[rows[on], cur[on]]
        cur = np.where(on, prev[rows, cur], 0)
    return out


_NUMBA = []


def _trellis_numba():
    """The dynamic programme as a compiled loop (numba): the NumPy form allocates (2, N, i) arrays
    63 times per call, which dominates at ImageNet sizes; compiled once per process, cached on disk."""
    if _NUMBA:
        return _NUMBA[0]
    import numba

    @numba.njit(cache=True)
    def run(c, q, w, per_block, lam, length, out):  # pragma: no cover - compiled
        n = c.shape[0]
        inf = np.inf
        zrl, eob = length[0xF0], length[0x00]
        best = np.empty(64)
        prev = np.zeros(64, np.int64)
        level = np.zeros(64, np.int64)
        s = np.empty(64)
        live = np.empty(64, np.int64)  # positions with a finite best: the only predecessors worth trying
        for b in range(n):
            s[0] = 0.0
            for t in range(63):
                s[t + 1] = s[t] + w[b * per_block, t] * c[b, t] ** 2
            best[0] = 0.0
            live[0] = 0
            nlive = 1
            for i in range(1, 64):
                t = i - 1
                r = np.rint(c[b, t] / q[t])
                bv, bj, bl = inf, 0, 0
                for k in range(2):
                    cand = r if k == 0 else r - np.sign(r)
                    if (k == 0 and r == 0) or (k == 1 and abs(r) < 2):
                        continue
                    a = int(abs(cand))
                    size = 0
                    while a > 0:
                        size += 1
                        a >>= 1
                    d = w[b * per_block, t] * (c[b, t] - q[t] * cand) ** 2
                    for m in range(nlive):
                        j = live[m]
                        run_ = i - j - 1
                        nz = run_ // 16
                        sym = length[(run_ % 16) * 16 + size]
                        if sym == inf or (nz > 0 and zrl == inf):
                            continue
                        bits = sym + size + (nz * zrl if nz > 0 else 0.0)
                        cost = best[j] + (s[t] - s[j]) + d + lam * bits
                        if cost < bv:
                            bv, bj, bl = cost, j, int(cand)
                best[i] = bv
                prev[i] = bj
                level[i] = bl
                if bv < inf:
                    live[nlive] = i
                    nlive += 1
            ev, ej = inf, 0
            for m in range(nlive):
                j = live[m]
                if j < 63:
                    if eob == inf:
                        continue
                    cost = best[j] + (s[63] - s[j]) + lam * eob
                else:
                    cost = best[j] + (s[63] - s[j])
                if cost < ev:
                    ev, ej = cost, j
            for t in range(63):
                out[b, t] = 0
            cur = ej
            while cur > 0:
                out[b, cur - 1] = level[cur]
                cur = prev[cur]

    _NUMBA.append(run)
    return run


def sdq_levels(coef: np.ndarray, steps: np.ndarray, weights: np.ndarray, lam: float, ac: HuffmanTable) -> np.ndarray:
    """Levels of blocks in natural order: DC rounded (it follows its prediction chain), AC by :func:`trellis_ac`.

    Args:
        coef: float (N, 8, 8) or (N, 64) unquantized DCT coefficients, natural order.
        steps: (8, 8) or (64,) natural order; ``weights``: the same, or one per block:
            (N, 8, 8) or (N, 64).
    Returns:
        int64 levels, the shape of ``coef``.
    """
    c = np.asarray(coef, np.float64)
    flat = c.reshape(len(c), 64)
    q = np.asarray(steps, np.float64).reshape(64)
    w = np.asarray(weights, np.float64)
    w = w.reshape(64) if w.size == 64 else w.reshape(len(c), 64)
    z = flat[:, ZIGZAG]
    ac_levels = trellis_ac(z[:, 1:], q[ZIGZAG][1:], w[..., ZIGZAG][..., 1:], lam, ac)
    out = np.zeros((len(c), 64), np.int64)
    out[:, ZIGZAG[1:]] = ac_levels
    out[:, 0] = np.rint(flat[:, 0] / q[0])
    return out.reshape(c.shape)
