import numpy as np
import pytest

from dnnjpeg.codec import (
    SUBSAMPLINGS,
    CorruptJpegError,
    NotAJpegError,
    QuantTables,
    decode,
    decode_file,
    encode,
    parse_header_bytes,
)

from .makers import noise_image


@pytest.mark.parametrize("subsampling", SUBSAMPLINGS)
def test_random_tables_read_back_exactly(subsampling):
    rng = np.random.default_rng(hash(subsampling) % 2**32)
    img = noise_image(37, 45, seed=3)
    for _ in range(25):
        t = QuantTables(rng.integers(1, 256, (8, 8)), rng.integers(1, 256, (8, 8)))
        for optimize in (True, False):
            data = encode(img, t, subsampling=subsampling, optimize=optimize)
            h = parse_header_bytes(data)
            assert h.quant_tables() == t
            assert h.subsampling == subsampling and h.mode == "baseline"
            assert decode(data).shape == (37, 45, 3)


def test_progressive_gray_and_optimize_shrinks():
    img = noise_image(64, 64)
    t = QuantTables.standard(60)
    assert parse_header_bytes(encode(img, t, progressive=True)).mode == "progressive"
    plain = encode(img, t, optimize=False)
    opt = encode(img, t, optimize=True)
    assert len(opt) < len(plain)
    assert np.array_equal(decode(plain), decode(opt))  # Huffman optimization is lossless
    gray = noise_image(20, 30, channels=1)
    data = encode(gray, t)
    h = parse_header_bytes(data)
    assert h.is_grayscale and np.array_equal(h.luma_table, t.luma)
    assert decode(data, mode="L").shape == (20, 30)


def test_quality_tables_match_pillow_quality_bytes():
    from .makers import pillow_jpeg

    img = noise_image(48, 40)
    for q in (5, 50, 95):
        ours = encode(img, QuantTables.standard(q), subsampling="4:2:0", optimize=False)
        theirs = pillow_jpeg(img, quality=q, subsampling="4:2:0")
        assert np.array_equal(decode(ours), decode(theirs))


def test_lower_quality_reconstructs_worse():
    img = noise_image(64, 64, seed=5)
    errs = [np.abs(decode(encode(img, QuantTables.standard(q))).astype(int) - img).mean() for q in (10, 50, 95)]
    assert errs[0] > errs[1] > errs[2]


def test_rejects_bad_arguments_and_inputs(tmp_path):
    img = noise_image(8, 8)
    with pytest.raises(ValueError, match="4:1:1"):
        encode(img, QuantTables.standard(50), subsampling="4:1:1")
    with pytest.raises(ValueError, match="extended"):
        encode(img, QuantTables(np.full((8, 8), 300), np.full((8, 8), 3), extended=True))
    with pytest.raises(ValueError, match="uint8"):
        encode(img.astype(np.float32), QuantTables.standard(50))
    with pytest.raises(NotAJpegError):
        decode(b"")
    with pytest.raises(NotAJpegError, match="PNG"):
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG")
        decode(buf.getvalue())
    data = encode(noise_image(64, 64), QuantTables.standard(90))
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptJpegError, match="cut.jpg"):
        decode_file(p)


def test_resize_shorter_is_the_classifiers_own_first_step():
    """Brought down with the classifier's filter and rounding, its preprocessing then reads the same pixels."""
    from dnnjpeg.codec import resize_shorter
    from dnnjpeg.models import Preprocess

    rng = np.random.default_rng(0)
    pre = Preprocess(224, 256)
    for h, w in ((375, 500), (500, 333), (1200, 799), (257, 3000)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        small = resize_shorter(img, 256)
        assert min(small.shape[:2]) == 256 and small.shape[0] * w == pytest.approx(small.shape[1] * h, rel=0.01)
        assert np.array_equal(pre.geometry(small), pre.geometry(img))
    img = rng.integers(0, 256, (200, 300), dtype=np.uint8)
    assert resize_shorter(img, 256) is img  # never enlarged
    assert resize_shorter(img, 100).shape == (100, 150)
    with pytest.raises(ValueError, match="interpolation"):
        resize_shorter(img, 100, "area")
