import io
import json

import numpy as np
import pytest
from PIL import Image

from dnnjpeg.codec import (
    ANNEX_K_CHROMA,
    ANNEX_K_LUMA,
    INVERSE_ZIGZAG,
    ZIGZAG,
    QuantTables,
    from_zigzag,
    ijg_scale_factor,
    ijg_scaled_table,
    to_zigzag,
)


def test_ijg_tables_equal_what_pillow_writes_for_every_quality():
    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    for q in range(1, 101):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q)
        got = Image.open(io.BytesIO(buf.getvalue())).quantization
        ours = QuantTables.standard(q)
        assert np.array_equal(np.array(got[0]).reshape(8, 8), ours.luma), q
        assert np.array_equal(np.array(got[1]).reshape(8, 8), ours.chroma), q


def test_ijg_scaling_rules():
    assert ijg_scale_factor(50) == 100
    assert ijg_scale_factor(10) == 500
    assert ijg_scale_factor(90) == 20
    # libjpeg: (16 * 500 + 50) // 100 = 80
    assert ijg_scaled_table(ANNEX_K_LUMA, 10)[0, 0] == 80
    assert ijg_scaled_table(ANNEX_K_LUMA, 100).max() == 1
    # baseline clamps to 255; without it the 16-bit values stay
    assert ijg_scaled_table(ANNEX_K_LUMA, 1).max() == 255
    assert ijg_scaled_table(ANNEX_K_LUMA, 1, force_baseline=False).max() == (121 * 5000 + 50) // 100
    with pytest.raises(ValueError):
        ijg_scale_factor(0)
    with pytest.raises(ValueError):
        ijg_scale_factor(101)


def test_zigzag_known_positions_and_inverse():
    # The first zigzag steps: (0,0) (0,1) (1,0) (2,0) (1,1) (0,2) (0,3) ...
    assert ZIGZAG[:7].tolist() == [0, 1, 8, 16, 9, 2, 3]
    assert ZIGZAG[-1] == 63 and ZIGZAG[-2] == 62 and ZIGZAG[-3] == 55
    assert sorted(ZIGZAG.tolist()) == list(range(64))
    assert np.array_equal(ZIGZAG[INVERSE_ZIGZAG], np.arange(64))
    t = np.arange(64).reshape(8, 8)
    assert np.array_equal(from_zigzag(to_zigzag(t)), t)
    batch = np.random.default_rng(0).integers(0, 99, (3, 2, 8, 8))
    assert np.array_equal(from_zigzag(to_zigzag(batch)), batch)


def test_quanttables_validation():
    ok = np.full((8, 8), 10)
    QuantTables(ok, ok)
    QuantTables(ok.reshape(64), ok)
    with pytest.raises(ValueError, match="1..255"):
        QuantTables(np.full((8, 8), 256), ok)
    with pytest.raises(ValueError, match="1..255"):
        QuantTables(np.zeros((8, 8), int), ok)
    with pytest.raises(ValueError, match="8x8"):
        QuantTables(np.ones((7, 8), int), ok)
    with pytest.raises(ValueError, match="integers"):
        QuantTables(np.full((8, 8), 1.5), ok)
    with pytest.raises(ValueError, match="integers"):
        QuantTables(np.full((8, 8), "a"), ok)
    big = QuantTables(np.full((8, 8), 1000), ok, extended=True)
    assert big.luma.max() == 1000
    with pytest.raises(ValueError):
        QuantTables(np.full((8, 8), 70000), ok, extended=True)


def test_quanttables_immutable_and_equality():
    a = QuantTables.standard(75)
    with pytest.raises(ValueError):
        a.luma[0, 0] = 3
    with pytest.raises(AttributeError):
        a.luma = np.ones((8, 8))  # type: ignore[misc]
    src = np.full((8, 8), 9)
    b = QuantTables(src, src)
    src[0, 0] = 1  # the caller's array must not alias the table
    assert b.luma[0, 0] == 9
    assert QuantTables.standard(75) == a and hash(QuantTables.standard(75)) == hash(a)
    assert QuantTables.standard(74) != a
    c = QuantTables(a.luma, a.chroma.astype(np.int64) + 1)
    assert c != a


def test_json_roundtrip_and_file(tmp_path):
    rng = np.random.default_rng(1)
    t = QuantTables(rng.integers(1, 256, (8, 8)), rng.integers(1, 256, (8, 8)))
    assert QuantTables.from_json(t.to_json()) == t
    d = json.loads(t.to_json())
    assert d["order"] == "natural" and d["luma"][0][1] == int(t.luma[0, 1])
    p = t.save(tmp_path / "t.json")
    assert QuantTables.load(p) == t
    (tmp_path / "bad.json").write_text('{"luma": [[1]]}')
    with pytest.raises(ValueError, match="bad.json"):
        QuantTables.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="natural"):
        QuantTables.from_dict({"order": "zigzag", "luma": t.luma.tolist(), "chroma": t.chroma.tolist()})


def test_cjpeg_qtables_text_is_natural_order():
    t = QuantTables(np.arange(1, 65).reshape(8, 8), ANNEX_K_CHROMA)
    lines = [ln for ln in t.to_cjpeg_qtables().splitlines() if not ln.startswith("#")]
    nums = [int(x) for ln in lines for x in ln.split()]
    assert nums[:64] == list(range(1, 65))
    assert nums[64:] == ANNEX_K_CHROMA.reshape(64).tolist()


def test_scaled_clamps_and_rounds():
    t = QuantTables.standard(50)
    assert t.scaled(1.0) == t
    s = t.scaled(10.0)
    assert s.luma.max() == 255 and s.luma.min() >= 1
    assert t.scaled(0.001).luma.max() == 1
    assert t.scaled(0.5).luma[0, 0] == 8  # 16 * 0.5
    assert t.scaled(0.5).luma[0, 1] == 6  # 11 * 0.5 = 5.5 rounds half up
    with pytest.raises(ValueError):
        t.scaled(0)
