import io
import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, JpegImagePlugin

from dnnjpeg.codec import (
    CorruptJpegError,
    JpegError,
    NotAJpegError,
    estimate_quality,
    parse_header,
    parse_header_bytes,
)
from dnnjpeg.codec.header import sniff_format

from .makers import exif_with_orientation, insert_app_segment, jpeglib_jpeg, noise_image, pillow_jpeg, set_sof

PIL_SAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def assert_agrees_with_pillow(path_or_bytes, h):
    im = Image.open(path_or_bytes if isinstance(path_or_bytes, (str, os.PathLike)) else io.BytesIO(path_or_bytes))
    assert (h.width, h.height) == im.size
    assert [(c.id, c.h, c.v, c.tq) for c in h.components] == [tuple(x) for x in im.layer]
    got = {k: np.array(v).reshape(8, 8) for k, v in im.quantization.items()}
    assert set(got) == set(h.qtables)
    for k in got:
        assert np.array_equal(got[k], h.qtables[k]), k
    s = JpegImagePlugin.get_sampling(im)
    if s in PIL_SAMPLING:
        assert h.subsampling == PIL_SAMPLING[s]
    assert h.progressive == bool(im.info.get("progressive", 0) or im.info.get("progression", 0))


def test_generated_files_across_qualities_and_subsamplings():
    img = noise_image(19, 27)
    n = 0
    for q in range(1, 101):
        for ss in ("4:4:4", "4:2:2", "4:2:0"):
            data = pillow_jpeg(img, quality=q, subsampling=ss)
            h = parse_header_bytes(data)
            assert_agrees_with_pillow(data, h)
            assert h.subsampling == ss and h.mode == "baseline" and not h.arithmetic
            assert h.precision == 8 and h.color == "YCbCr" and h.jfif and h.eoi_found
            est = estimate_quality(h)
            assert est.exact and est.quality == q, (q, ss, est)
            n += 1
    assert n == 300


@pytest.mark.parametrize("size", [(1, 1), (7, 9), (8, 8), (17, 33), (500, 32), (3, 1000)])
@pytest.mark.parametrize("progressive", [False, True])
def test_odd_sizes_progressive_and_gray(size, progressive):
    w, h_ = size
    img = noise_image(h_, w)
    data = pillow_jpeg(img, quality=80, progressive=progressive, subsampling="4:2:0")
    h = parse_header_bytes(data)
    assert_agrees_with_pillow(data, h)
    assert h.mode == ("progressive" if progressive else "baseline")
    gray = noise_image(h_, w, channels=1)
    data = pillow_jpeg(gray, quality=33, progressive=progressive)
    h = parse_header_bytes(data)
    assert_agrees_with_pillow(data, h)
    assert h.subsampling == "gray" and h.is_grayscale and h.color == "gray" and h.chroma_table is None
    assert estimate_quality(h).quality == 33 and estimate_quality(h).exact


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(orientation):
    data = pillow_jpeg(noise_image(10, 30), quality=90, exif=exif_with_orientation(orientation))
    h = parse_header_bytes(data)
    assert h.exif and h.orientation == orientation
    assert h.display_size == ((10, 30) if orientation >= 5 else (30, 10))
    assert_agrees_with_pillow(data, h)


def test_cmyk_adobe_and_rgb_transform():
    cmyk = Image.fromarray(noise_image(16, 24, channels=3)).convert("CMYK")
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=70)
    h = parse_header_bytes(buf.getvalue())
    assert h.n_components == 4 and h.color in ("CMYK", "YCCK") and h.adobe_transform is not None
    assert_agrees_with_pillow(buf.getvalue(), h)
    # Adobe transform 0 on 3 components means RGB (no YCbCr conversion)
    base = pillow_jpeg(noise_image(16, 16), quality=70)
    rgb = insert_app_segment(base, 0xEE, b"Adobe" + bytes([0, 100, 0, 0, 0, 0, 0]))
    assert parse_header_bytes(rgb).color == "RGB"
    ycc = insert_app_segment(base, 0xEE, b"Adobe" + bytes([0, 100, 0, 0, 0, 0, 1]))
    assert parse_header_bytes(ycc).adobe_transform == 1 and parse_header_bytes(ycc).color == "YCbCr"


def test_411_and_440_from_jpeglib(tmp_path):
    img = noise_image(40, 56)
    h = parse_header(jpeglib_jpeg(img, ((4, 1), (1, 1), (1, 1)), tmp_path / "a.jpg"))
    assert h.subsampling == "4:1:1"
    assert_agrees_with_pillow(tmp_path / "a.jpg", h)
    h = parse_header(jpeglib_jpeg(img, ((1, 2), (1, 1), (1, 1)), tmp_path / "b.jpg"))
    assert h.subsampling == "4:4:0"
    h = parse_header(jpeglib_jpeg(img, ((2, 2), (1, 1), (2, 1)), tmp_path / "c.jpg"))
    assert h.subsampling == "other"


def test_restart_interval_and_16bit_tables():
    data = pillow_jpeg(noise_image(32, 32), quality=60)
    # Insert a DRI segment and a 16-bit DQT (slot 2) right after SOI.
    dri = b"\xff\xdd\x00\x04\x00\x07"
    table16 = (np.arange(1, 65) * 300).astype(">u2")
    dqt16 = b"\xff\xdb" + (2 + 1 + 128).to_bytes(2, "big") + bytes([0x12]) + table16.tobytes()
    h = parse_header_bytes(data[:2] + dri + dqt16 + data[2:])
    assert h.restart_interval == 7
    assert h.qtable_bits[2] == 16 and h.qtable_bits[0] == 8
    # stored in zigzag order in the file: natural position ZIGZAG[k] holds value k
    from dnnjpeg.codec import ZIGZAG

    assert h.qtables[2].reshape(64)[ZIGZAG].tolist() == (np.arange(1, 65) * 300).tolist()


def test_large_app_segment_falls_back_to_whole_file(tmp_path):
    data = pillow_jpeg(noise_image(20, 20), quality=42)
    big = insert_app_segment(data, 0xE2, os.urandom(200_000))  # like a large ICC profile
    p = tmp_path / "big.jpg"
    p.write_bytes(big)
    h = parse_header(p, head_bytes=1024)
    assert estimate_quality(h).quality == 42 and h.eoi_found
    assert_agrees_with_pillow(p, h)


def test_sof_types_twelve_bit_and_arithmetic():
    data = pillow_jpeg(noise_image(16, 16), quality=50)
    h = parse_header_bytes(set_sof(data, 0xC9))
    assert h.arithmetic and h.mode == "extended"
    h = parse_header_bytes(set_sof(data, 0xC1, precision=12))
    assert h.precision == 12 and h.mode == "extended" and not h.arithmetic
    assert parse_header_bytes(set_sof(data, 0xC3)).mode == "lossless"
    assert parse_header_bytes(set_sof(data, 0xCA)).mode == "progressive"


def test_every_imagenet_sample_file_agrees_with_pillow(imagenet_dir):
    files = sorted(imagenet_dir.iterdir())
    assert len(files) == 1000
    q96 = 0
    counts: dict[str, int] = {}
    for f in files:
        h = parse_header(f)
        assert_agrees_with_pillow(f, h)
        est = estimate_quality(h)
        assert est.exact, (f, est)
        q96 += est.quality == 96
        counts[h.subsampling] = counts.get(h.subsampling, 0) + 1
        assert h.eoi_found
    assert q96 == 671
    assert counts["4:4:4"] == 761 and counts["4:2:0"] == 203 and counts["4:2:2"] == 12 and counts["gray"] == 23


# -- bad inputs ---------------------------------------------------------------


def test_png_renamed_jpeg(tmp_path, kodak_dir):
    p = tmp_path / "n0000_fake.JPEG"
    p.write_bytes((kodak_dir / "kodim01.png").read_bytes())
    with pytest.raises(NotAJpegError) as e:
        parse_header(p)
    assert e.value.detected_format == "PNG" and str(p) in str(e.value) and "PNG" in str(e.value)


def test_empty_random_and_truncated(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(NotAJpegError, match="empty"):
        parse_header(empty)
    rnd = tmp_path / "rnd.jpg"
    rnd.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(NotAJpegError, match="rnd.jpg"):
        parse_header(rnd)
    data = pillow_jpeg(noise_image(64, 64), quality=75)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[:300])  # inside the header
    with pytest.raises(CorruptJpegError, match="truncated"):
        parse_header(cut)
    cut.write_bytes(data[: len(data) - 200])  # inside the entropy-coded data
    h = parse_header(cut)
    assert h.eoi_found is False
    assert parse_header_bytes(data).eoi_found is True
    with pytest.raises(CorruptJpegError, match="no image data"):
        parse_header_bytes(b"\xff\xd8\xff\xd9")
    with pytest.raises(CorruptJpegError, match="invalid length"):
        parse_header_bytes(b"\xff\xd8\xff\xe0\x00\x01")


def test_sniff_formats():
    assert sniff_format(b"") == "empty"
    assert sniff_format(b"\x89PNG\r\n\x1a\n....") == "PNG"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff_format(b"GIF89a...") == "GIF"
    assert sniff_format(b"hello world\n") == "text"


_SEED_FILES = [
    pillow_jpeg(noise_image(24, 40), quality=85, subsampling="4:2:0"),
    pillow_jpeg(noise_image(24, 40), quality=20, progressive=True, exif=exif_with_orientation(6)),
    pillow_jpeg(noise_image(16, 16, channels=1), quality=50),
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(_SEED_FILES))),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
    insert=st.binary(max_size=16),
    at=st.integers(0, 10_000),
)
def test_mutated_bytes_never_raise_untyped_or_hang(seed, edits, cut, insert, at):
    data = bytearray(_SEED_FILES[seed])
    for pos, val in edits:
        data[pos % len(data)] = val
    pos = at % (len(data) + 1)
    data[pos:pos] = insert
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    t0 = time.perf_counter()
    try:
        h = parse_header_bytes(bytes(data))
        assert h.width > 0 and len(h.components) >= 1
    except JpegError:
        pass
    assert time.perf_counter() - t0 < 0.5


def test_a_huge_file_of_junk_after_its_soi_is_not_read_to_the_end(tmp_path, monkeypatch):
    import dnnjpeg._fs as fs
    from dnnjpeg.codec import CorruptJpegError

    for fill in (b"\x00", b"\xff"):
        p = tmp_path / "junk.jpg"
        with open(p, "wb") as f:
            f.write(b"\xff\xd8" + fill * 1024)
            f.truncate(300 * 2**20)  # sparse: 300 MB of zeros after the marker
        if fill == b"\xff":
            with open(p, "r+b") as f:  # 0xFF fill all the way
                f.seek(2)
                f.write(b"\xff" * (2 * 2**20))
        reads = []
        real = fs.open_regular

        class Counting:
            def __init__(self, f, log=reads):
                self.f, self.log = f, log

            def read(self, n=-1):
                data = self.f.read(n)
                self.log.append(len(data))
                return data

            def __getattr__(self, k):
                return getattr(self.f, k)

            def __enter__(self):
                return self

            def __exit__(self, *a):
                self.f.close()

        monkeypatch.setattr(fs, "open_regular", lambda path, real=real: Counting(real(path)))
        with pytest.raises(CorruptJpegError, match="no marker|fill bytes"):
            parse_header(p)
        assert sum(reads) < 2**20, f"read {sum(reads):,} bytes of a 300 MB file"
        monkeypatch.undo()
