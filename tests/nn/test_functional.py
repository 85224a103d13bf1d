"""dnnjpeg.nn.functional: the cached DCT matrix survives being first built under inference mode."""

import torch

from dnnjpeg.nn import functional as J


def test_a_transform_first_run_under_inference_mode_still_differentiates():
    J._KRON.clear()
    with torch.inference_mode():  # a model's logits (the DCT models' pixel rule) fill the cache so
        J.block_dct(torch.randn(3, 64, dtype=torch.float64))
    x = torch.randn(3, 64, dtype=torch.float64, requires_grad=True)
    J.block_idct(J.block_dct(x)).sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x))  # orthonormal: the round trip is the identity
