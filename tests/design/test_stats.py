"""design/stats (NumPy, for DeepN's statistics) against nn.functional (torch, the exact codec)."""

import numpy as np
import pytest
import torch

from dnnjpeg.conventions import CHROMA_FACTORS
from dnnjpeg.design.stats import blocks_dct, downsample, rgb_to_ycbcr
from dnnjpeg.nn import functional as J


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
def test_downsample_equals_the_codecs(subsampling):
    rng = np.random.default_rng(0)
    plane = rng.integers(0, 256, (37, 53)).astype(np.float64)  # odd sizes: edges replicated
    fh, fv = CHROMA_FACTORS[subsampling]
    x = torch.from_numpy(plane)[None, None]
    want = J.downsample(J.pad_to(x, fv, fh), fh, fv)[0, 0].numpy()
    assert np.array_equal(downsample(plane, subsampling), want)


def test_color_and_dct_agree_with_the_codec():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    ycc = rgb_to_ycbcr(rgb)
    t = torch.from_numpy(rgb.astype(np.float64)).permute(2, 0, 1)[None]
    exact = J.rgb_to_ycbcr_int(t.long())[0].permute(1, 2, 0).numpy()
    assert np.abs(ycc - exact).max() <= 0.5 + 1e-6  # libjpeg's fixed point rounds them
    plane = ycc[..., 0]
    blocks = torch.from_numpy(plane - 128.0).reshape(2, 8, 3, 8).permute(0, 2, 1, 3).reshape(-1, 8, 8)
    want = J.block_dct(blocks.reshape(-1, 64)).reshape(-1, 8, 8).numpy()
    assert np.allclose(blocks_dct(plane), want, atol=1e-6)
