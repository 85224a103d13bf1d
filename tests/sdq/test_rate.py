"""The exact bit count of levels under a file's Huffman tables (dnnjpeg.sdq.rate)."""

import math

import numpy as np
import pytest

from dnnjpeg.codec import QuantTables, decode
from dnnjpeg.codec.coefficients import Coefficients, read_coefficients, write_coefficients
from dnnjpeg.sdq import HuffmanTable, parse_huffman, scan_bits
from dnnjpeg.sdq.rate import magnitude_size


def _levels(rng, rows, cols, scale):
    """Sparse Laplacian levels, larger at low frequencies, (rows, cols, 8, 8)."""
    uv = np.add.outer(np.arange(8), np.arange(8))
    lv = rng.laplace(0, scale / (1 + uv), (rows, cols, 8, 8))
    lv[rng.random(lv.shape) < 0.6] = 0
    return np.clip(np.rint(lv), -1000, 1000).astype(np.int16)


def _scan(data: bytes) -> bytes:
    i = 2
    while True:
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if data[i + 1] == 0xDA:
            return data[i + 2 + length : data.rindex(b"\xff\xd9")]
        i += 2 + length


@pytest.mark.parametrize(
    "width,height,sampling",
    [(64, 48, "4:2:0"), (50, 37, "4:2:0"), (41, 30, "4:4:4"), (45, 29, "gray"), (200, 152, "4:2:0")],
)
def test_the_count_is_the_files_scan_for_random_levels(tmp_path, width, height, sampling):
    rng = np.random.default_rng(width)
    if sampling == "gray":
        samp = ((1, 1),)
        shapes = [(math.ceil(height / 8), math.ceil(width / 8))]
    else:
        f = 2 if sampling == "4:2:0" else 1
        samp = ((f, f), (1, 1), (1, 1))
        my, mx = math.ceil(height / (8 * f)), math.ceil(width / (8 * f))
        shapes = [(my * f, mx * f), (my, mx), (my, mx)]
    blocks = tuple(_levels(rng, r, c, 60.0 if i == 0 else 20.0) for i, (r, c) in enumerate(shapes))
    blocks[0][0, 0, 0, 0] = 900  # a large DC step, a long zero run with ZRL in the next block
    if blocks[0].shape[1] > 1:
        blocks[0][0, 1] = 0
        blocks[0][0, 1, 7, 7] = 3
    coef = Coefficients(blocks, QuantTables.standard(50), samp, width, height)
    data = write_coefficients(coef)
    tables, use = parse_huffman(data)
    ids = sorted(use)
    dc = [tables[(0, use[c][0])] for c in ids]
    ac = [tables[(1, use[c][1])] for c in ids]
    # what the file holds: the levels as written (a decoder's view), coded with those tables
    (tmp_path / "c.jpg").write_bytes(data)
    back = read_coefficients(tmp_path / "c.jpg")
    bits = scan_bits(back.blocks, samp, width, height, dc, ac)
    scan = _scan(data)
    assert math.ceil(bits / 8) == len(scan) - scan.count(b"\xff\x00")
    assert decode(data).shape[:2] == (height, width)


def test_sizes_symbols_and_bad_input():
    assert magnitude_size(np.array([0, 1, -1, 2, 3, -4, 1023, -2047])).tolist() == [0, 1, 1, 2, 2, 3, 10, 11]
    t = HuffmanTable.from_bits([0, 2] + [0] * 14, [0x00, 0x01])
    assert t.lengths[0] == 2 and t.lengths[1] == 2 and t.lengths[5] == 0
    z = np.zeros((1, 1, 8, 8), np.int16)
    assert scan_bits([z], [(1, 1)], 8, 8, [t], [t]) == 2 + 2  # DC size 0, then EOB
    z[0, 0, 0, 1] = 5  # AC size 3: no code in this table
    with pytest.raises(ValueError, match="AC symbol 0x03 has no Huffman code"):
        scan_bits([z], [(1, 1)], 8, 8, [t], [t])
    with pytest.raises(ValueError, match="16 counts"):
        HuffmanTable.from_bits([1] * 3, [0])
    with pytest.raises(ValueError, match="no start of scan"):
        parse_huffman(b"\xff\xd8\xff\xd9")


@pytest.mark.parametrize("size,sub", [((75, 53), "4:2:0"), ((64, 64), "4:4:4")])
def test_the_count_is_libjpegs_own_scan_with_optimized_tables(tmp_path, size, sub):
    from PIL import Image

    from dnnjpeg.codec import encode

    rng = np.random.default_rng(5)
    img = np.asarray(Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)).resize(size, Image.BICUBIC))
    for q in (20, 90):
        data = encode(img, QuantTables.standard(q), sub, optimize=True)
        (tmp_path / "e.jpg").write_bytes(data)
        c = read_coefficients(tmp_path / "e.jpg")
        tables, use = parse_huffman(data)
        ids = sorted(use)
        bits = scan_bits(c.blocks, c.sampling, c.width, c.height, [tables[(0, use[i][0])] for i in ids],
                         [tables[(1, use[i][1])] for i in ids])  # fmt: skip
        scan = _scan(data)
        assert math.ceil(bits / 8) == len(scan) - scan.count(b"\xff\x00")


@pytest.mark.parametrize("sub", ["4:2:0", "4:4:4"])
def test_optimal_tables_are_the_ones_libjpeg_fits(sub):
    """scan_symbols + optimal_table give exactly the Huffman tables libjpeg's optimize_coding writes
    for the same levels (dummy blocks of odd grids included)."""
    from dnnjpeg.codec import QuantTables
    from dnnjpeg.codec.coefficients import Coefficients, write_coefficients
    from dnnjpeg.sdq.rate import optimal_table, scan_symbols

    rng = np.random.default_rng(11)
    sampling = ((2, 2), (1, 1), (1, 1)) if sub == "4:2:0" else ((1, 1),) * 3
    for w, h in ((37, 29), (64, 48), (9, 120)):
        hmax = sampling[0][0]  # = vmax here
        shapes = [
            (math.ceil(math.ceil(h * v / hmax) / 8), math.ceil(math.ceil(w * hh / hmax) / 8)) for hh, v in sampling
        ]
        blocks = tuple(np.clip(np.rint(rng.laplace(0, 6, (*sh, 8, 8)) * np.linspace(3, 0.2, 64).reshape(8, 8)),
                               -200, 200).astype(np.int16) for sh in shapes)  # fmt: skip
        coef = Coefficients(blocks, QuantTables.standard(50), sampling, w, h)
        tables, use = parse_huffman(write_coefficients(coef, optimize=True))
        ids = sorted(use)
        stats = scan_symbols(blocks, sampling, w, h)
        for slot, comps in ((0, [0]), (1, [1, 2])):
            ac = optimal_table(sum(stats[c][1] for c in comps))
            dc = optimal_table(sum(stats[c][0] for c in comps))
            assert np.array_equal(ac.lengths, tables[(1, use[ids[comps[0]]][1])].lengths), (w, h, slot)
            assert np.array_equal(dc.lengths, tables[(0, use[ids[comps[0]]][0])].lengths), (w, h, slot)
