"""Frequency-as-channel planes (dnnjpeg.dct.planes): the file's dequantized coefficients, flips and
crops that stay in the DCT domain, and one stated rule per odd kind of file."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from dnnjpeg.codec import read_coefficients
from dnnjpeg.codec.errors import CorruptJpegError, UnsupportedJpegError
from dnnjpeg.dct.planes import crop_blocks, downscale, hflip, load_planes, planes_from_bytes, planes_of
from dnnjpeg.nn import DiffJPEG


def _file(tmp_path, img, name="a.jpg", **kw):
    b = io.BytesIO()
    Image.fromarray(img).save(b, "JPEG", **kw)
    p = tmp_path / name
    p.write_bytes(b.getvalue())
    return p


def _photo(kodak_dir, h, w):
    return np.asarray(Image.open(kodak_dir / "kodim23.png").convert("RGB"))[100 : 100 + h, 200 : 200 + w]


@pytest.mark.parametrize("sub,layout", [(2, "4:2:0"), (0, "4:4:4")])
def test_planes_are_the_levels_times_the_steps(tmp_path, kodak_dir, sub, layout):
    p = _file(tmp_path, _photo(kodak_dir, 37, 53), quality=80, subsampling=sub)
    pl = load_planes(p, layout)
    c = read_coefficients(p)
    assert pl.y.shape == (64, 5, 7) and pl.cbcr.shape == ((128, 3, 4) if layout == "4:2:0" else (128, 5, 7))
    assert np.array_equal(pl.y, c.dequantized(0).reshape(5, 7, 64).transpose(2, 0, 1))
    cr = c.dequantized(2)
    assert np.array_equal(pl.cbcr[64:], cr.reshape(*cr.shape[:2], 64).transpose(2, 0, 1))


def test_the_dct_flip_is_the_pixel_flip(kodak_dir):
    """Where the block grid allows (width a multiple of the MCU): exact for luma and 4:4:4; 4:2:0
    chroma within libjpeg's down-sampling bias (it alternates by column, so a flip moves it)."""
    img = _photo(kodak_dir, 48, 64)
    for sub in ("4:4:4", "4:2:0"):
        codec = DiffJPEG(sub).double()
        x = torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1)[None]
        y, c = codec.transform(x)
        yf, cf = codec.transform(x.flip(-1))

        def planes(t):  # (1, C, rows, cols, 64) → (C·64, rows, cols)
            return t[0].permute(0, 3, 1, 2).reshape(-1, *t.shape[2:4])

        fy, fc = hflip(planes(y), planes(c))
        assert torch.allclose(fy, planes(yf), atol=1e-9)
        tol = 1e-9 if sub == "4:4:4" else 8.0  # one chroma sample level moves a coefficient by ≤ 8
        assert (fc - planes(cf)).abs().max() <= tol
        # numpy in, numpy out, twice is the identity
        a = planes(y).numpy()
        assert np.array_equal(hflip(*hflip(a, planes(c).numpy()))[0], a)


def test_crops_stay_on_the_mcu_grid_and_pad_with_mid_gray(tmp_path, kodak_dir):
    pl = load_planes(_file(tmp_path, _photo(kodak_dir, 64, 64), quality=90), "4:2:0")
    c = crop_blocks(pl, 2, 4, 4, 2)
    assert np.array_equal(c.y, pl.y[:, 2:6, 4:6]) and np.array_equal(c.cbcr, pl.cbcr[:, 1:3, 2:3])
    edge = crop_blocks(pl, 6, 6, 4, 4)
    assert np.array_equal(edge.y[:, :2, :2], pl.y[:, 6:, 6:]) and not edge.y[:, 2:].any()
    with pytest.raises(ValueError, match="MCU grid"):
        crop_blocks(pl, 1, 0, 2, 2)


def test_odd_files_follow_the_stated_rules(tmp_path, kodak_dir):
    img = _photo(kodak_dir, 32, 32)
    gray = load_planes(_file(tmp_path, img[..., 0], "g.jpg", quality=90))
    assert gray.cbcr.shape == (128, 2, 2) and not gray.cbcr.any()
    prog = load_planes(_file(tmp_path, img, "p.jpg", quality=90, progressive=True, subsampling=2))
    base = load_planes(_file(tmp_path, img, "b.jpg", quality=90, subsampling=2))
    assert np.array_equal(prog.y, base.y) and np.array_equal(prog.cbcr, base.cbcr)
    # 4:4:4 asked as 4:2:0: the DCT-domain ½ down-scale of its own chroma planes
    s444 = _file(tmp_path, img, "s444.jpg", quality=90, subsampling=0)
    own = load_planes(s444, "4:4:4")
    assert np.allclose(load_planes(s444, "4:2:0").cbcr, downscale(own.cbcr, 2), atol=1e-3)
    with pytest.raises(UnsupportedJpegError, match="rgb.jpg: RGB-coded JPEG"):
        load_planes(_file(tmp_path, img, "rgb.jpg", quality=90, keep_rgb=True))


@pytest.mark.parametrize("sub", [1, 0])
def test_other_chroma_layouts_are_resampled_to_the_asked_one(tmp_path, kodak_dir, sub):
    """A 4:2:2 (or 4:4:4) file read as 4:2:0: its chroma planes, decoded, are the file's decoded
    chroma averaged over 2×2 pixels, within about one level; the fused loader equals planes_of."""
    from dnnjpeg.dct.planes import _dct

    img = _photo(kodak_dir, 96, 128)
    p = _file(tmp_path, img, f"s{sub}.jpg", quality=95, subsampling=sub)
    pl = load_planes(p, "4:2:0")
    assert pl.cbcr.shape == (128, 6, 8) and pl.y.shape == (64, 12, 16)
    ref = planes_of(read_coefficients(p), "4:2:0")
    assert np.allclose(pl.cbcr, ref.cbcr, atol=1e-3) and np.array_equal(pl.y, ref.y)
    d = _dct(8)
    blocks = pl.cbcr.reshape(2, 8, 8, 6, 8).transpose(0, 3, 4, 1, 2)
    got = np.einsum("iu,cyxuv,jv->cyixj", d.T, blocks, d.T).reshape(2, 48, 64) + 128
    ycc = np.asarray(Image.open(p).convert("YCbCr")).astype(float)
    want = ycc[..., 1:].reshape(48, 2, 64, 2, 2).mean((1, 3)).transpose(2, 0, 1)
    assert np.abs(got - want).mean() < 1.0


@pytest.mark.parametrize("h,w", [(1, 1), (17, 33), (129, 7), (40, 48)])
def test_the_fused_loader_equals_the_coefficients_laid_out(tmp_path, kodak_dir, h, w):
    """planes_from_bytes dequantizes straight from the compiled reader's flat blocks; it must equal
    jpeglib's coefficients laid out by planes_of, on every grid edge case and with restart markers."""
    img = _photo(kodak_dir, h, w)
    for sub, layout in ((2, "4:2:0"), (0, "4:4:4")):
        for extra in ({}, {"restart_marker_blocks": 1}):
            p = _file(tmp_path, img, quality=75, subsampling=sub, **extra)
            fused = planes_from_bytes(p.read_bytes(), str(p), layout)
            ref = planes_of(read_coefficients(p), layout)
            assert fused.y.dtype == np.float32 and fused.y.shape == ref.y.shape
            assert np.array_equal(fused.y, ref.y) and np.array_equal(fused.cbcr, ref.cbcr)
            assert (fused.width, fused.height, fused.layout) == (w, h, layout)


def test_a_damaged_progressive_file_is_named_not_the_temporary_copy(tmp_path, kodak_dir):
    p = _file(tmp_path, _photo(kodak_dir, 64, 64), "prog.jpg", quality=90, progressive=True)
    data = p.read_bytes()
    with pytest.raises(CorruptJpegError, match="prog.jpg"):
        planes_from_bytes(data[: len(data) // 2], str(p))
