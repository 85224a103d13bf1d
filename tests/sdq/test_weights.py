"""Per-image weights (dnnjpeg.sdq.weights): gradients that finite differences confirm, placed on
the block grid the encoder searches."""

import numpy as np
import pytest
import torch
from torch import nn

from dnnjpeg.models import Model, Preprocess
from dnnjpeg.nn import DiffJPEG
from dnnjpeg.sdq.encode import image_coefficients
from dnnjpeg.sdq.weights import coefficient_gradients, gradient_weights


def _tiny_model(dtype=torch.float64) -> Model:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 5)
    )
    net = net.to(dtype).eval()
    pre = Preprocess(size=16, resize=18, interpolation="bilinear", mean=(0.5,) * 3, std=(0.5,) * 3)
    return Model("tiny", net, pre, num_classes=5)


def _image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 215, (1, 1, 3))
    return np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:4:4"])
def test_gradients_match_finite_differences(subsampling):
    model = _tiny_model()
    rgb = _image(20, 27)
    grads, probs = coefficient_gradients(rgb, model, subsampling, classes=3, dtype=torch.float64)
    comps = [torch.from_numpy(np.asarray(c, np.float64)) for c in image_coefficients(rgb, subsampling)]
    codec = DiffJPEG(subsampling)
    pre = model.preprocess

    def log_p(cs):
        y = cs[0].reshape(1, 1, *cs[0].shape[:2], 64)
        c = torch.stack(cs[1:]).reshape(1, 2, *cs[1].shape[:2], 64)
        x = pre.geometry_tensor(codec.reconstruct(y, c, 20, 27, smooth=True))
        return torch.log_softmax(model.module(pre.normalize_tensor(x / 255.0)), 1)[0]

    with torch.no_grad():
        lp = log_p(comps)
        top = torch.topk(lp, 3).indices
        assert np.allclose(probs, lp[top].exp().numpy())
        rng = np.random.default_rng(1)
        eps = 1e-4
        for comp in (0, 1, 2):
            for _ in range(4):
                r, col = rng.integers(comps[comp].shape[0]), rng.integers(comps[comp].shape[1])
                u, v = rng.integers(8), rng.integers(8)
                plus = [c.clone() for c in comps]
                minus = [c.clone() for c in comps]
                plus[comp][r, col, u, v] += eps
                minus[comp][r, col, u, v] -= eps
                fd = ((log_p(plus) - log_p(minus)) / (2 * eps))[top].numpy()
                g = grads[comp][:, r, col, u, v]
                assert np.allclose(g, fd, rtol=1e-4, atol=1e-8), (comp, r, col, u, v, g, fd)


def test_weights_are_half_the_fisher_diagonal_and_zero_outside_the_crop():
    model = _tiny_model(torch.float32)
    rgb = _image(16, 48, seed=3)  # wide: the model's crop sees the middle third
    w = gradient_weights(rgb, model, "4:4:4", classes=5)
    grads, p = coefficient_gradients(rgb, model, "4:4:4", classes=5)
    assert [x.shape for x in w] == [c.shape for c in image_coefficients(rgb, "4:4:4")]
    assert np.allclose(w[0], 0.5 * np.einsum("k,k...->...", p, grads[0] ** 2), rtol=1e-5)
    cols = w[0].sum(axis=(0, 2, 3))
    assert cols[0] == 0 and cols[-1] == 0 and cols[len(cols) // 2] > 0
    assert abs(p.sum() - 1) < 1e-5  # all five classes: the whole Fisher diagonal


def test_bad_arguments_are_refused():
    model = _tiny_model(torch.float32)
    with pytest.raises(ValueError, match="16×16"):
        gradient_weights(_image(20, 20), model, at="input")
    with pytest.raises(ValueError, match="classes"):
        gradient_weights(_image(20, 20), model, classes=9)
    with pytest.raises(ValueError, match="float32"):
        coefficient_gradients(_image(20, 20), model, dtype=torch.float64)


@pytest.mark.parametrize("subsampling,shape", [("4:2:0", (40, 100)), ("4:4:4", (70, 30)), ("4:2:0", (37, 129))])
def test_the_crop_mask_is_exactly_the_blocks_the_model_reads(subsampling, shape):
    """A block is in the mask iff its DC reaches the model's input through the decoder and the
    resize and crop (mid-gray image: no clamping, the DC basis is positive, no cancellation)."""
    from dnnjpeg.sdq.weights import crop_mask

    pre = Preprocess(size=16, resize=18)
    h, w = shape
    comps = image_coefficients(np.full((h, w, 3), 128, np.uint8), subsampling)
    y = torch.zeros(1, 1, *comps[0].shape[:2], 64, requires_grad=True)
    c = torch.zeros(1, 2, *comps[1].shape[:2], 64, requires_grad=True)
    pre.geometry_tensor(DiffJPEG(subsampling).reconstruct(y, c, h, w, smooth=True)).sum().backward()
    reads = [y.grad[0, 0, ..., 0] != 0, c.grad[0, 0, ..., 0] != 0, c.grad[0, 1, ..., 0] != 0]
    masks = crop_mask(h, w, pre, subsampling)
    for m, r in zip(masks, reads):
        assert np.array_equal(m, r.numpy()), (m.astype(int), r.int().numpy())
    assert not masks[0].all() and masks[0].any()


def test_batched_gradient_weights_equal_one_image_at_a_time():
    """Images of one size share backward passes (the batched pipeline at the model input); each
    image's weights are its own, in order, whatever the batch it fell into."""
    import dnnjpeg.sdq.weights as W

    m = _tiny_model(torch.float32)
    imgs = [_image(20, 28, s) for s in range(3)] + [_image(33, 17, 9)] + [_image(20, 28, 5)]
    got = W.gradient_weights_batch(imgs, m, "4:2:0", batch=2)  # 4 images of one size: passes of 2 and 2
    assert len(got) == len(imgs)
    for img, ws in zip(imgs, got):
        for a, b in zip(ws, gradient_weights(img, m, "4:2:0")):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-12)
    a, b = got[0][0], got[1][0]
    assert np.abs(a - b).max() > 0.01 * np.abs(a).max() > 0  # different images, different weights
