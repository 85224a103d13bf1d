import numpy as np
import pytest

from dnnjpeg.codec import (
    QuantTables,
    UnsupportedJpegError,
    decode,
    decode_file,
    encode,
    parse_header_bytes,
    read_coefficients,
    write_coefficients,
)

from .makers import jpeglib_jpeg, noise_image, set_sof


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
@pytest.mark.parametrize("size", [(37, 45), (64, 48), (9, 130)])
def test_roundtrip_is_decode_identical(tmp_path, subsampling, size):
    rng = np.random.default_rng(0)
    t = QuantTables(rng.integers(1, 60, (8, 8)), rng.integers(1, 90, (8, 8)))
    src = tmp_path / "src.jpg"
    src.write_bytes(encode(noise_image(*size), t, subsampling=subsampling))
    c = read_coefficients(src)
    assert c.tables == t and c.subsampling == subsampling
    assert (c.width, c.height) == (size[1], size[0])
    bh = -(-size[0] // (16 if subsampling == "4:2:0" else 8))
    assert c.blocks[0].shape[2:] == (8, 8) and c.blocks[1].shape[0] == bh
    out = tmp_path / "out.jpg"
    data = write_coefficients(c, out)
    assert out.read_bytes() == data
    h = parse_header_bytes(data)
    assert h.mode == "baseline" and h.quant_tables() == t and h.subsampling == subsampling
    assert np.array_equal(decode(data), decode_file(src))
    again = read_coefficients(out)
    for a, b in zip(c.blocks, again.blocks):
        assert np.array_equal(a, b)


def test_roundtrip_gray_progressive_and_411(tmp_path):
    g = tmp_path / "g.jpg"
    g.write_bytes(encode(noise_image(30, 20, channels=1), QuantTables.standard(40), progressive=True))
    c = read_coefficients(g)
    assert len(c.blocks) == 1
    assert np.array_equal(decode(write_coefficients(c), "L"), decode_file(g, "L"))
    p = jpeglib_jpeg(noise_image(40, 56), ((4, 1), (1, 1), (1, 1)), tmp_path / "411.jpg")
    c = read_coefficients(p)
    assert c.subsampling == "4:1:1"
    assert np.array_equal(decode(write_coefficients(c)), decode_file(p))


def test_coefficients_match_pixels():
    # A flat gray image has only DC energy: DC level = (value - 128) * 8 / step
    import tempfile
    from pathlib import Path

    img = np.full((16, 16, 3), 200, np.uint8)
    t = QuantTables(np.full((8, 8), 4), np.full((8, 8), 4))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "flat.jpg"
        p.write_bytes(encode(img, t, subsampling="4:4:4"))
        c = read_coefficients(p)
    y = c.blocks[0]
    assert np.all(y[..., 0, 0] == round((200 - 128) * 8 / 4))
    assert np.count_nonzero(y[..., 1:, :]) == 0 and np.count_nonzero(y[..., 0, 1:]) == 0
    assert np.allclose(c.dequantized(0)[..., 0, 0], (200 - 128) * 8, atol=4)


def test_unsupported_are_typed(tmp_path):
    from .makers import pillow_jpeg

    data = pillow_jpeg(noise_image(16, 16), quality=50)
    for marker, prec, why in ((0xC9, None, "arithmetic"), (0xC1, 12, "12-bit")):
        p = tmp_path / f"{marker:x}.jpg"
        p.write_bytes(set_sof(data, marker, prec))
        with pytest.raises(UnsupportedJpegError, match=why) as e:
            read_coefficients(p)
        assert str(p) in str(e.value)
