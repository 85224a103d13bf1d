"""The compiled coefficient reader (dnnjpeg.dct.read): the same levels as libjpeg (jpeglib) on every
kind of sequential file, jpeglib for the rest, and libjpeg's warnings as errors naming the file."""

import io

import numpy as np
import pytest
from PIL import Image

from dnnjpeg.codec import read_coefficients
from dnnjpeg.codec.errors import CorruptJpegError, NotAJpegError
from dnnjpeg.dct.read import decode_coefficients, read_coefficients_fast


def _jpeg(img, **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(img).save(b, "JPEG", **kw)
    return b.getvalue()


def _same(data: bytes, tmp_path, name="x.jpg"):
    p = tmp_path / name
    p.write_bytes(data)
    a, b = read_coefficients(p), decode_coefficients(data, str(p))
    assert b is not None
    assert [x.shape for x in a.blocks] == [x.shape for x in b.blocks]
    assert all(np.array_equal(x, y) for x, y in zip(a.blocks, b.blocks))
    assert a.tables == b.tables and a.sampling == b.sampling and (a.width, a.height) == (b.width, b.height)


@pytest.mark.parametrize("shape", [(37, 53), (8, 8), (1, 1), (16, 48), (129, 7)])
@pytest.mark.parametrize("sub", [0, 1, 2])  # Pillow: 4:4:4, 4:2:2, 4:2:0
def test_every_sequential_layout_reads_as_libjpeg_does(tmp_path, shape, sub):
    rng = np.random.default_rng(sum(shape) + sub)
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    for kw in ({"quality": 75}, {"quality": 97, "optimize": True}, {"quality": 30, "restart_marker_blocks": 2},
               {"quality": 100, "restart_marker_rows": 1}):  # fmt: skip
        _same(_jpeg(img, subsampling=sub, **kw), tmp_path)
    _same(_jpeg(img[..., 0], quality=85), tmp_path)  # gray: one non-interleaved scan


def test_real_files_read_as_libjpeg_does(tmp_path, imagenet_dir, cifar_dir):
    files = sorted(imagenet_dir.iterdir())[:12] + sorted((cifar_dir / "test").rglob("*.jpg"))[:12]
    for f in files:
        _same(f.read_bytes(), tmp_path, f.name)


def test_progressive_files_go_through_jpeglib(tmp_path):
    img = np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    data = _jpeg(img, quality=80, progressive=True)
    assert decode_coefficients(data) is None
    p = tmp_path / "p.jpg"
    p.write_bytes(data)
    a, b = read_coefficients(p), read_coefficients_fast(p)
    assert all(np.array_equal(x, y) for x, y in zip(a.blocks, b.blocks))


def test_damage_is_an_error_naming_the_file(tmp_path):
    img = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _jpeg(img, quality=90)
    sos = data.index(b"\xff\xda")
    cases = {
        "cut.jpg": data[: len(data) // 2] + b"\xff\xd9",  # data cut short, then an end marker
        "junk.jpg": data[:-2] + b"\x12\x34\x56" + data[-2:],  # bytes after the scan
        "notjpeg.jpg": b"GIF89a" + data,
    }
    for name, bad in cases.items():
        p = tmp_path / name
        p.write_bytes(bad)
        with pytest.raises((CorruptJpegError, NotAJpegError), match=name):
            read_coefficients_fast(p)
    # a wrong restart marker
    rst = _jpeg(img, quality=90, restart_marker_blocks=1)
    k = rst.index(b"\xff\xd1")
    p = tmp_path / "rst.jpg"
    p.write_bytes(rst[:k] + b"\xff\xd5" + rst[k + 2 :])
    with pytest.raises(CorruptJpegError, match="restart marker"):
        read_coefficients_fast(p)
    assert sos > 0


def test_files_sharing_a_header_share_its_plan_and_a_fake_sos_cannot_mislead_it(tmp_path):
    from dnnjpeg.dct import plan as read  # the plan cache lives with the plans

    rng = np.random.default_rng(5)
    imgs = [rng.integers(0, 256, (24, 40, 3), dtype=np.uint8) for _ in range(3)]
    a, b = _jpeg(imgs[0], quality=60), _jpeg(imgs[1], quality=60)
    read._PLANS.clear()
    _same(a, tmp_path, "a.jpg")
    _same(b, tmp_path, "b.jpg")  # the same header bytes: the cached plan, its own scan
    assert len(read._PLANS) == 1
    # an APP15 segment holding the bytes of an SOS marker, ahead of the real one: two files alike up to
    # that fake marker but with other tables after it must each be read with their own header
    fake = b"\xff\xef\x00\x08\xff\xda\x00\x04\x00\x00"
    for q in (30, 90):
        d = _jpeg(imgs[2], quality=q)
        _same(d[:2] + fake + d[2:], tmp_path, f"fake{q}.jpg")


def test_the_compiled_table_builder_equals_the_numpy_reference():
    """_decoder_tables (numba) and _tables (NumPy, the readable reference) build the same arrays."""
    from dnnjpeg.dct import huffman as read
    from dnnjpeg.sdq import parse_huffman  # noqa: F401 — the DHT bytes come from real files below

    rng = np.random.default_rng(9)
    img = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    for kw in ({"quality": 75}, {"quality": 95, "optimize": True}):
        data = _jpeg(img, **kw)
        at = data.index(b"\xff\xc4")
        seg = data[at + 4 : at + 2 + ((data[at + 2] << 8) | data[at + 3])]
        specs, j = [], 0
        while j + 17 <= len(seg):
            n = sum(seg[j + 1 : j + 17])
            specs.append(bytes(seg[j : j + 17 + n]))
            j += 17 + n
        read._decoder_tables.cache_clear()
        built = read._decoder_tables(tuple(specs))
        for i, spec in enumerate(specs):
            ref = read._tables(
                np.frombuffer(spec[1:17], np.uint8), np.frombuffer(spec[17:], np.uint8), spec[0] >> 4 == 1
            )
            for a, b in zip(built[:6], ref):
                assert np.array_equal(a[i], b)
