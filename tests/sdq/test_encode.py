"""Encoding with soft-decision quantization (dnnjpeg.sdq.encode): ordinary files, levels re-read exactly."""

import numpy as np
import pytest
from PIL import Image

from dnnjpeg.codec import QuantTables, decode, encode
from dnnjpeg.codec.coefficients import read_coefficients
from dnnjpeg.sdq.encode import sdq_encode


@pytest.fixture(scope="module")
def photo(kodak_dir):
    return np.asarray(Image.open(kodak_dir / "kodim05.png").convert("RGB"))[100:170, 200:291]  # 91×70


def _psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def test_files_decode_reread_exactly_and_shrink_as_lambda_grows(photo, tmp_path):
    t = QuantTables.standard(75)
    sizes, psnrs = [], []
    for i, lam in enumerate((0.0, 30.0, 300.0, 3000.0)):
        data, coef = sdq_encode(photo, t, lam)
        (tmp_path / f"{i}.jpg").write_bytes(data)
        back = read_coefficients(tmp_path / f"{i}.jpg")
        for a, b in zip(back.blocks, coef.blocks):
            assert np.array_equal(a, b[: a.shape[0], : a.shape[1]])
        assert back.tables == t
        img = decode(data)
        assert img.shape == photo.shape
        sizes.append(len(data))
        psnrs.append(_psnr(img, photo))
    assert all(a >= b for a, b in zip(sizes, sizes[1:])) and sizes[-1] < 0.8 * sizes[0]
    assert psnrs[0] > psnrs[-1]


def test_lambda_zero_is_libjpegs_rounding(photo, tmp_path):
    t = QuantTables.standard(60)
    data, coef = sdq_encode(photo, t, 0.0)
    (tmp_path / "ref.jpg").write_bytes(encode(photo, t, "4:2:0", optimize=True))
    ref = read_coefficients(tmp_path / "ref.jpg")
    for a, b in zip(ref.blocks, coef.blocks):
        same = np.mean(a == b[: a.shape[0], : a.shape[1]])
        assert same > 0.99  # libjpeg's integer DCT against a float one: rare ±1 differences
    assert abs(len(data) - (tmp_path / "ref.jpg").stat().st_size) < 0.02 * len(data)


def test_bad_arguments():
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="4:2:0 or 4:4:4"):
        sdq_encode(img, QuantTables.standard(50), 1.0, subsampling="4:1:1")
    with pytest.raises(ValueError, match="RGB"):
        sdq_encode(img[..., 0], QuantTables.standard(50), 1.0)
    with pytest.raises(ValueError, match="weights"):
        sdq_encode(img, QuantTables.standard(50), 1.0, weights=np.ones((8, 8)))


@pytest.mark.parametrize("h,w", [(70, 91), (45, 100), (61, 39), (64, 64)])
def test_odd_block_grids_decode_like_libjpegs_own_file(kodak_dir, h, w):
    """A component whose block count is odd (width 100: 13 luma columns) must not shift its rows."""
    img = np.asarray(Image.open(kodak_dir / "kodim05.png").convert("RGB"))[:h, :w]
    t = QuantTables.standard(70)
    ours, plain = decode(sdq_encode(img, t, 0.0)[0]), decode(encode(img, t, "4:2:0", optimize=True))
    assert abs(_psnr(ours, img) - _psnr(plain, img)) < 0.1


@pytest.mark.parametrize("sub", ["4:2:0", "4:4:4", "4:2:2"])
@pytest.mark.parametrize("shape", [(37, 53), (16, 16), (1, 9), (120, 77)])
def test_the_numpy_encoder_half_is_the_differentiable_codecs(kodak_dir, sub, shape):
    import torch

    from dnnjpeg.nn import DiffJPEG
    from dnnjpeg.sdq.encode import image_coefficients

    img = np.asarray(Image.open(kodak_dir / "kodim15.png").convert("RGB"))[50 : 50 + shape[0], 90 : 90 + shape[1]]
    y, c = DiffJPEG(sub).double().transform(torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1)[None])
    ref = [y[0, 0].numpy(), c[0, 0].numpy(), c[0, 1].numpy()]
    for got, want in zip(image_coefficients(img, sub), ref):
        assert got.shape[:2] == want.shape[:2]
        assert np.abs(got.reshape(want.shape) - want).max() < 2e-3
