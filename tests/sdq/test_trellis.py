"""The block-level search (dnnjpeg.sdq.trellis): exact for the Lagrangian, rounding at λ = 0."""

import itertools

import numpy as np
import pytest

from dnnjpeg.codec import QuantTables, encode
from dnnjpeg.sdq import parse_huffman
from dnnjpeg.sdq.rate import _ac_bits
from dnnjpeg.sdq.trellis import sdq_levels, trellis_ac


@pytest.fixture(scope="module")
def ac_table():
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    tables, use = parse_huffman(encode(img, QuantTables.standard(75), "4:2:0", optimize=False))
    return tables[(1, 0)]  # libjpeg's standard luma AC table


def _blocks(rng, n, scale=40.0):
    uv = np.add.outer(np.arange(8), np.arange(8)).reshape(64)
    from dnnjpeg.codec.tables import ZIGZAG

    c = rng.laplace(0, scale / (1 + uv), (n, 64))
    return c[:, ZIGZAG][:, 1:]  # zig-zag AC


def _objective(c, q, w, lam, lv, table):
    return float((w * (c - q * lv) ** 2).sum() + lam * _ac_bits(lv, table))


def test_lambda_zero_is_rounding(ac_table):
    rng = np.random.default_rng(1)
    c = _blocks(rng, 200)
    q = np.arange(1, 64, dtype=float) + 3
    assert np.array_equal(trellis_ac(c, q, np.ones(63), 0.0, ac_table), np.rint(c / q).astype(np.int64))


def test_each_block_is_the_exhaustive_optimum(ac_table):
    rng = np.random.default_rng(2)
    q = np.full(63, 10.0)
    w = rng.uniform(0.2, 3.0, 63)
    for trial in range(40):
        c = np.zeros((1, 63))
        pos = rng.choice(63, 5, replace=False)
        c[0, pos] = rng.uniform(-60, 60, 5)
        lam = float(rng.choice([0.5, 5.0, 50.0, 500.0]))
        got = trellis_ac(c, q, w, lam, ac_table)
        r = np.rint(c[0] / q)
        options = [sorted({r[p], r[p] - np.sign(r[p]), 0.0}) for p in pos]
        best = np.inf
        for combo in itertools.product(*options):
            lv = np.zeros((1, 63), np.int64)
            lv[0, pos] = combo
            best = min(best, _objective(c, q, w, lam, lv, ac_table))
        assert _objective(c, q, w, lam, got, ac_table) == pytest.approx(best, rel=1e-9, abs=1e-9), trial


def test_bits_fall_as_lambda_grows_and_the_search_beats_rounding(ac_table):
    rng = np.random.default_rng(3)
    c = _blocks(rng, 300)
    q = QuantTables.standard(50).luma.reshape(64).astype(float)
    from dnnjpeg.codec.tables import ZIGZAG

    qz = q[ZIGZAG][1:]
    w = np.ones(63)
    bits = []
    for lam in (0.0, 1.0, 10.0, 100.0, 1000.0):
        lv = trellis_ac(c, qz, w, lam, ac_table)
        bits.append(_ac_bits(lv, ac_table))
        rounded = np.rint(c / qz).astype(np.int64)
        assert _objective(c, qz, w, lam, lv, ac_table) <= _objective(c, qz, w, lam, rounded, ac_table) + 1e-6
    assert all(b1 >= b2 for b1, b2 in zip(bits, bits[1:])) and bits[-1] < bits[0]


def test_sdq_levels_keep_dc_rounded_in_natural_order(ac_table):
    rng = np.random.default_rng(4)
    c = rng.laplace(0, 30, (10, 8, 8))
    q = QuantTables.standard(30).luma.astype(float)
    lv = sdq_levels(c, q, np.ones((8, 8)), 0.0, ac_table)
    assert lv.shape == (10, 8, 8) and np.array_equal(lv, np.rint(c / q).astype(np.int64))
    coarse = sdq_levels(c, q, np.ones((8, 8)), 1e6, ac_table)
    assert np.array_equal(coarse[:, 0, 0], lv[:, 0, 0]) and np.count_nonzero(coarse) <= np.count_nonzero(lv)
    with pytest.raises(ValueError, match="λ"):
        trellis_ac(np.zeros((1, 63)), np.ones(63), np.ones(63), -1.0, ac_table)


def test_a_table_without_zrl_or_some_symbols_still_rounds_at_lambda_zero():
    import warnings

    from dnnjpeg.sdq import HuffmanTable

    lengths = np.full(256, 6, np.int64)
    lengths[0xF0] = 0  # no ZRL: a run of 16 zeros cannot be coded, so no path may need one
    rng = np.random.default_rng(7)
    c = rng.uniform(-50, 50, (50, 63))  # every coefficient rounds to a nonzero level: no long runs
    q = np.full(63, 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0 · ∞ must not make NaN costs (argmin would pick them)
        got = trellis_ac(c, q, np.ones(63), 0.0, HuffmanTable(lengths))
    assert np.array_equal(got, np.rint(c / q).astype(np.int64))


def test_the_compiled_loop_equals_the_numpy_reference(ac_table):
    rng = np.random.default_rng(9)
    c = _blocks(rng, 400, scale=60.0)
    q = rng.integers(1, 40, 63).astype(float)
    w = rng.uniform(0.0, 2.0, 63)
    for lam in (0.0, 3.0, 30.0, 300.0):
        a = trellis_ac(c, q, w, lam, ac_table, engine="numba")
        b = trellis_ac(c, q, w, lam, ac_table, engine="numpy")
        assert np.array_equal(a, b), lam
    with pytest.raises(ValueError, match="engine"):
        trellis_ac(c, q, w, 1.0, ac_table, engine="gpu")


def test_per_block_weights_are_each_blocks_own_search(ac_table):
    """(N, 63) weights (per-image gradient weights): every block searched with its own row, in
    both engines, equal to searching that block alone; zero weight at λ > 0 zeroes the block."""
    rng = np.random.default_rng(7)
    c = _blocks(rng, 60)
    q = np.full(63, 6.0)
    w = rng.gamma(0.5, 1.0, (60, 63))
    w[5] = 0.0
    both = [trellis_ac(c, q, w, 40.0, ac_table, engine=e) for e in ("numba", "numpy")]
    assert np.array_equal(both[0], both[1])
    alone = np.stack([trellis_ac(c[i : i + 1], q, w[i], 40.0, ac_table)[0] for i in range(60)])
    assert np.array_equal(both[0], alone)
    assert not both[0][5].any() and both[0].any()
    with pytest.raises(ValueError, match="weights"):
        trellis_ac(c, q, w[:10], 40.0, ac_table)
