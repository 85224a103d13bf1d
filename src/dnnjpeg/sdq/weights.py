"""Per-image, per-block error weights for soft-decision quantization: how much this image's
classifier output cares about each DCT coefficient.

The network's output distribution p(x) at the stored image moves, to second order, by
KL(p ‖ p̂) ≈ ½ δᵀ F δ for a small change δ of the coefficients, where F = Σ_y p_y g_y g_yᵀ is the
Fisher information and g_y = ∂ log p_y / ∂c (the coefficients decoded to pixels, resized and
cropped to the model's input as at evaluation, and classified). Its diagonal, ½ Σ_y p_y g_y², is a
weight per coefficient of every block in nats per squared coefficient unit, the per-image form of
the ``fisher`` designer's per-model weights (:func:`dnnjpeg.sdq.encode.fisher_weights`), so λ keeps
its unit (nats per bit). The sum runs over the ``classes`` most probable classes (the rest of the
mass is dropped: a lower bound), one backward pass for all of them at once.

The gradient at the stored image of KL itself is zero (its minimum), which is why the weights are
the Fisher diagonal and not a first-order gradient.
"""

from __future__ import annotations

import numpy as np

from dnnjpeg.sdq.encode import image_coefficients

__all__ = [
    "coefficient_gradients",
    "gradient_weights",
    "gradient_weights_batch",
    "crop_mask",
    "model_weights",
    "WEIGHTS",
    "WEIGHTS_MODEL",
    "DEFAULT_ALPHA",
]

#: the weights SDQ can use: lite0's per-model Fisher diagonal; the same inside lite0's crop only;
#: the image's own Fisher diagonal per block (needs the network); 1 (the PSNR control)
WEIGHTS = ("fisher", "crop", "gradient", "mse")
#: alpha (λ as a fraction of a table's weighted step error per bit, :func:`dnnjpeg.sdq.encode.table_lambda`)
#: by weights, chosen on 96 design-split images with lite0 among 0.001–0.1 (BENCHMARKS.md)
DEFAULT_ALPHA = {"fisher": 0.01, "crop": 0.01, "gradient": 0.001, "mse": 0.001}
#: the network the shipped per-model weights (and the crop) are lite0's
WEIGHTS_MODEL = "efficientnet-lite0"


def coefficient_gradients(
    rgb: np.ndarray, model, subsampling: str = "4:2:0", classes: int = 4, at: str = "original", dtype=None
):
    """∂ log p_y / ∂c for the image's ``classes`` most probable classes y.

    Args:
        rgb: uint8 (H, W, 3) stored pixels.
        model: a :class:`dnnjpeg.models.Model` (its module, preprocessing and geometry).
        at: "original" (the decoded image is resized and cropped as the model's preprocessing
            does, differentiably) or "input" (``rgb`` is already the model's input size).
        dtype: torch dtype of the computation (float32 by default; float64 for checks).
    Returns:
        (grads, probs): grads a list of three float arrays (classes, rows, cols, 8, 8) for Y, Cb,
        Cr on :func:`~dnnjpeg.sdq.encode.image_coefficients`' block grid; probs (classes,) p_y.
    """
    grads, probs = _gradients([rgb], model, subsampling, classes, at, dtype)
    return [g[0] for g in grads], probs[0]


def _gradients(images, model, subsampling, classes, at, dtype):
    """:func:`coefficient_gradients` of N images of one size in one forward and one backward pass:
    ([Y (N, classes, rows, cols, 8, 8), Cb, Cr], probs (N, classes))."""
    import torch

    from dnnjpeg.nn import DiffJPEG

    dtype = dtype or torch.float32
    pre = model.preprocess
    arrs = [np.asarray(x) for x in images]
    h, w = arrs[0].shape[:2]
    if any(a.shape != arrs[0].shape for a in arrs):
        raise ValueError("images of one pass must share their size")
    if at == "input" and (h, w) != (pre.size, pre.size):
        raise ValueError(f"at='input' needs a {pre.size}×{pre.size} image, got {w}×{h}")
    if at not in ("input", "original"):
        raise ValueError(f"at must be 'input' or 'original', got {at!r}")
    if not 1 <= classes <= model.num_classes:
        raise ValueError(f"classes must be in 1..{model.num_classes}, got {classes}")
    comps = [image_coefficients(a, subsampling) for a in arrs]
    n = len(comps)
    codec = DiffJPEG(subsampling)
    dev = next(model.module.parameters()).device  # (a model put on a GPU by --device)
    ys, cs = comps[0][0].shape, comps[0][1].shape
    y0 = torch.from_numpy(np.stack([c[0] for c in comps])).to(dev, dtype).reshape(n, 1, *ys[:2], 64)
    c0 = torch.from_numpy(np.stack([np.stack(c[1:]) for c in comps])).to(dev, dtype).reshape(n, 2, *cs[:2], 64)

    def log_probs(y, c):
        x = codec.reconstruct(y, c, h, w, smooth=True)
        if at == "original":
            x = pre.geometry_tensor(x)
        return torch.log_softmax(model.module(pre.normalize_tensor(x / 255.0)).to(dtype), dim=1)

    module_dtype = next(model.module.parameters()).dtype
    if module_dtype != dtype:
        raise ValueError(f"the model's parameters are {module_dtype}; pass dtype={module_dtype}")
    with torch.no_grad():
        lp = log_probs(y0, c0)
    top = torch.topk(lp, classes, dim=1).indices  # (n, classes)
    # one copy of each image's coefficients per class, so one backward pass gives every gradient
    y = y0.repeat_interleave(classes, 0).requires_grad_(True)
    c = c0.repeat_interleave(classes, 0).requires_grad_(True)
    lpk = log_probs(y, c)
    lpk[torch.arange(n * classes, device=dev), top.reshape(-1)].sum().backward()
    gy = y.grad.detach().cpu().numpy().reshape(n, classes, *ys)
    gc = c.grad.detach().cpu().numpy().reshape(n, classes, 2, *cs)
    return [gy, gc[:, :, 0], gc[:, :, 1]], lp.gather(1, top).exp().cpu().numpy()


def gradient_weights(
    rgb: np.ndarray, model, subsampling: str = "4:2:0", classes: int = 4, at: str = "original"
) -> list[np.ndarray]:
    """½ Σ_y p_y (∂ log p_y / ∂c)² per coefficient (nats per squared coefficient unit).

    Args: as :func:`coefficient_gradients`.
    Returns:
        three float32 arrays (rows, cols, 8, 8) for Y, Cb, Cr, natural order, on
        :func:`~dnnjpeg.sdq.encode.image_coefficients`' block grid: ``weights`` for
        :func:`~dnnjpeg.sdq.encode.sdq_encode`. Blocks the model never sees (outside its crop)
        weigh 0, so their AC levels cost nothing to drop.
    """
    return gradient_weights_batch([rgb], model, subsampling, classes, at)[0]


#: images per backward pass in :func:`gradient_weights_batch` on an accelerator (× ``classes``
#: copies each). On the CPU one image per pass is faster: lite0 at 224², 4.12 images/s one at a
#: time against 2.93 in fours and 2.31 in eights (BENCHMARKS.md, "Scale").
GRADIENT_BATCH = 8


def gradient_weights_batch(
    images, model, subsampling: str = "4:2:0", classes: int = 4, at: str = "original", batch: int | None = None
) -> list[list[np.ndarray]]:
    """:func:`gradient_weights` of many images, those of one size sharing backward passes: what
    the batched pipeline uses (at the model input every image has the input's size).

    Args:
        images: uint8 (H, W, 3) each, any sizes.
        batch: images per pass; default 1 on the CPU, :data:`GRADIENT_BATCH` on a GPU.
    Returns:
        per image, in order, its three float32 (rows, cols, 8, 8) weight arrays.
    """
    import torch

    if batch is None:
        batch = 1 if next(model.module.parameters()).device.type == "cpu" else GRADIENT_BATCH
    images = list(images)
    by_shape: dict[tuple, list[int]] = {}
    for i, a in enumerate(images):
        by_shape.setdefault(np.shape(a), []).append(i)
    out: list = [None] * len(images)
    for idx in by_shape.values():
        for k in range(0, len(idx), batch):
            part = idx[k : k + batch]
            with torch.enable_grad():
                grads, probs = _gradients([images[i] for i in part], model, subsampling, classes, at, None)
            for j, i in enumerate(part):
                out[i] = [(0.5 * np.tensordot(probs[j], g[j].astype(np.float64) ** 2, axes=1)).astype(np.float32)
                          for g in grads]  # fmt: skip
    return out


def rate_weights(name: str) -> np.ndarray:
    """The (3, 8, 8) per-model weights whose step error sets λ for weights ``name``
    (:func:`dnnjpeg.sdq.encode.table_lambda`): 1 for "mse", lite0's Fisher diagonal for the rest
    (crop and gradient weights are in its units, nats per squared level)."""
    return model_weights("mse" if name == "mse" else "fisher")


def image_weights(name: str, rgb: np.ndarray, subsampling: str = "4:2:0", model=None):
    """The weights ``name`` for one image: :func:`gradient_weights` from ``model`` for "gradient"
    (which needs it), :func:`model_weights` for the others."""
    if name == "gradient":
        if model is None:
            raise ValueError("SDQ with gradient weights needs the network (dnnjpeg.sdq.gradient_weights)")
        return gradient_weights(rgb, model, subsampling)
    return model_weights(name, np.asarray(rgb).shape[:2], subsampling)


def model_weights(name: str, shape: tuple[int, int] | None = None, subsampling: str = "4:2:0"):
    """The weights that need no network at compression time.

    Args:
        name: "fisher" or "mse": (3, 8, 8); "crop": lite0's Fisher weights in the blocks lite0's
            resize and centre crop read, 0 elsewhere (:func:`crop_mask`), which needs the image's
            ``shape`` (height, width) and gives three (rows, cols, 8, 8) arrays.
    """
    from dnnjpeg.sdq.encode import fisher_weights

    if name == "fisher":
        return fisher_weights()
    if name == "mse":
        return np.ones((3, 8, 8))
    if name == "crop":
        if shape is None:
            raise ValueError("crop weights need the image's size")
        f = fisher_weights()
        masks = crop_mask(*shape, _preprocess(), subsampling)
        return [f[i][None, None] * m[..., None, None] for i, m in enumerate(masks)]
    raise ValueError(f"weights without a network are fisher, crop or mse, got {name!r}")


_PRE: list = []


def _preprocess():
    """lite0's preprocessing (geometry), loaded once per process."""
    if not _PRE:
        from dnnjpeg.models import load_model

        _PRE.append(load_model(WEIGHTS_MODEL).preprocess)
    return _PRE[0]


def crop_mask(height: int, width: int, preprocess, subsampling: str = "4:2:0") -> list[np.ndarray]:
    """Which blocks of a stored image the model's resize and centre crop read at all.

    Found from the differentiable geometry itself (:meth:`dnnjpeg.models.Preprocess.geometry_tensor`):
    a pixel is read when the crop's sum has a nonzero derivative with respect to it, which covers
    the resize filter's support exactly; a chroma block is read when any luma pixel its samples
    reach (through the decoder's up-sampling, one sample beyond) is.

    Args:
        height, width: the stored image's size in pixels; ``preprocess``: the model's.
    Returns:
        three bool arrays (rows, cols) for Y, Cb, Cr on
        :func:`~dnnjpeg.sdq.encode.image_coefficients`' block grid.
    """
    import torch
    import torch.nn.functional as F

    from dnnjpeg.nn.functional import CHROMA_FACTORS

    x = torch.zeros(1, 1, height, width, requires_grad=True)
    preprocess.geometry_tensor(x).sum().backward()
    read = (x.grad[0, 0] != 0).float()
    fh, fv = CHROMA_FACTORS[subsampling]

    def blocks(m: torch.Tensor, bh: int, bw: int, rows: int, cols: int) -> np.ndarray:
        m = F.pad(m, (0, cols * bw - m.shape[1], 0, rows * bh - m.shape[0]))
        return (m.reshape(rows, bh, cols, bw).amax((1, 3)) > 0).numpy()

    rows, cols = -(-height // (8 * fv)) * fv, -(-width // (8 * fh)) * fh
    y = blocks(read, 8, 8, rows, cols)
    # up-sampling reaches one chroma sample (fh, fv luma pixels) beyond: widen the read area by that
    wide = F.max_pool2d(read[None, None], (2 * fv + 1, 2 * fh + 1), 1, (fv, fh))[0, 0]
    c = blocks(wide, 8 * fv, 8 * fh, rows // fv, cols // fh)
    return [y, c, c.copy()]
