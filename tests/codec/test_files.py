"""Safe reading of a user's image: regular files only, libjpeg's warnings as errors."""

from __future__ import annotations

import io
import os
import signal

import numpy as np
import pytest
from PIL import Image

from dnnjpeg._fs import NotRegularFileError
from dnnjpeg.codec import (
    CorruptJpegError,
    ImageTooLargeError,
    NotAJpegError,
    UnsupportedJpegError,
    decode_file,
    load_image,
)
from tests.hostile import build_hostile_tree

from .makers import noise_image, pillow_jpeg


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from tests.hostile import unlock

    t = build_hostile_tree(tmp_path_factory.mktemp("files"))
    yield t
    unlock(t)


@pytest.fixture
def alarm():
    """Fail (instead of hanging the suite) when a read blocks for more than 5 s."""

    def boom(*_):
        raise TimeoutError("blocked for 5 s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_a_fifo_is_refused_at_once(tree, alarm):
    from dnnjpeg.codec import parse_header

    for read in (load_image, decode_file, parse_header):
        with pytest.raises(NotRegularFileError, match="FIFO"):
            read(tree.header_bad["fifo"])


@pytest.mark.parametrize(
    "kind, error, cause",
    [
        ("corrupt_scan", CorruptJpegError, "Corrupt JPEG data"),
        ("sof9", CorruptJpegError, "extraneous bytes"),
        ("truncated", CorruptJpegError, "Premature end"),
        ("twelve_bit", UnsupportedJpegError, "12-bit"),
        ("bomb_header", ImageTooLargeError, "4,294,836,225 pixels"),
    ],
)
def test_a_jpeg_libjpeg_warns_about_is_an_error_naming_the_file(tree, kind, error, cause):
    p = tree.decode_bad[kind]
    # Pillow alone decodes all but the last two without a word: the garbage this prevents
    if kind in ("corrupt_scan", "sof9"):
        with Image.open(p) as im:
            im.load()
    for read in (load_image, decode_file):
        with pytest.raises(error, match=cause) as e:
            read(p)
        assert str(p) in str(e.value)


def test_header_errors_and_non_images_name_the_file(tree):
    for kind in ("zero_bytes", "random_bytes"):
        with pytest.raises(NotAJpegError) as e:
            load_image(tree.header_bad[kind])
        assert tree.header_bad[kind].name in str(e.value)
    with pytest.raises(CorruptJpegError, match="truncated"):
        load_image(tree.header_bad["header_cut"])
    with pytest.raises(OSError):
        load_image(tree.header_bad["symlink_loop"])


def test_good_images_decode_as_pillow_decodes_them(tree):
    for kind, p in {**tree.good, **tree.not_jpeg_images}.items():
        a = load_image(p)
        with Image.open(p) as im:
            want = np.asarray(im.convert("L" if im.mode == "L" else "RGB"))
        assert a.dtype == np.uint8 and np.array_equal(a, want), kind
    assert load_image(tree.good["gray"]).ndim == 2 and load_image(tree.good["gray"], "RGB").shape[2] == 3


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_decompression_bomb_of_another_format_is_refused(tmp_path):
    # a PNG whose header declares more pixels than the limit: refused before decoding
    from dnnjpeg.codec import MAX_PIXELS

    side = int(MAX_PIXELS**0.5) + 10
    buf = io.BytesIO()
    Image.new("L", (side, side)).save(buf, "PNG")
    (tmp_path / "big.png").write_bytes(buf.getvalue())
    with pytest.raises(ImageTooLargeError, match="big.png"):
        load_image(tmp_path / "big.png")


def test_decode_file_takes_a_plain_jpeg(tmp_path):
    p = tmp_path / "a.jpg"
    p.write_bytes(pillow_jpeg(noise_image(24, 40)))
    assert decode_file(p).shape == (24, 40, 3) and decode_file(p, "L").shape == (24, 40)
    os.chmod(p, 0o644)


def test_strict_pixels_are_pillows_on_imagenet_sample(imagenet_dir):
    # load_image decodes gray and YCbCr JPEGs once, with libjpeg-turbo through simplejpeg: every
    # recorded result used Pillow's decode, so the two must agree to the last level.
    files = sorted(imagenet_dir.iterdir())[::4]
    for p in files:
        with Image.open(p) as im:
            want = np.asarray(im.convert("L" if im.mode == "L" else "RGB"))
        assert np.array_equal(load_image(p), want), p.name
