"""Teaching a DCT-domain stem to reproduce a pretrained pixel classifier's stride-8 features.

No labels: the frozen pixel classifier gives the targets. Each sample is a design image cropped
and flipped at random (half of them at the classifier's own resize + centre crop), stored as a
4:2:0 JPEG at a random quality; the stem reads that file's coefficients, the pixel network reads
its decoded pixels, and the loss is the feature MSE at the cut (relative to the features' mean
square) plus ``kl_weight`` × KL(pixel model's output ‖ the DCT model's output) through the frozen
rest of the network: the features alone did not teach a stem in this budget (BENCHMARKS.md), the
output did. Training is resumable: the state is written every
``checkpoint_every`` steps, and every batch's images and augmentations are drawn from
(seed, step), so a resumed run continues exactly.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dnnjpeg.dct.stem import DctStem, split_model, stem_for

__all__ = ["DistillConfig", "DistillResult", "distill", "augment", "QUALITY_RANGE"]

#: qualities the training files are stored at, drawn uniformly
QUALITY_RANGE = (30, 95)
_MAX_SIDE = 320  # originals are kept with the shorter side at most this (memory; crops are 224)


@dataclass
class DistillConfig:
    """One distillation run. ``steps`` batches of ``batch_size`` augmented samples; AdamW at ``lr``
    (``head_lr`` × that for the stem's copy of the pixel head, which starts trained) with a cosine
    decay; ``kl_weight``: the output KL's weight beside the feature MSE (0: features alone, faster:
    the rest of the network then runs only for the targets); ``stem``: the detail path's sizes
    (:class:`~dnnjpeg.dct.stem.DctStem` arguments)."""

    steps: int = 800
    batch_size: int = 32
    lr: float = 1e-3
    head_lr: float = 0.3
    weight_decay: float = 1e-4
    kl_weight: float = 1.0
    seed: int = 0
    checkpoint_every: int = 25
    stem: dict = field(default_factory=dict)

    def recipe(self, model: str, images: Sequence[str]) -> dict:
        """What decides the result: a checkpoint made with another recipe is not resumed."""
        return {"model": model, "images": list(images), "batch_size": self.batch_size, "lr": self.lr,
                "head_lr": self.head_lr, "weight_decay": self.weight_decay, "kl_weight": self.kl_weight,
                "seed": self.seed, "stem": dict(self.stem), "steps": self.steps}  # fmt: skip


@dataclass
class DistillResult:
    """The trained stem (eval mode) and per-checkpoint history: step, feature loss, KL."""

    stem: DctStem
    history: list[dict]


def shrink(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) → the same with its shorter side at most 320 px (memory: crops are 224)."""
    h, w = img.shape[:2]
    s = _MAX_SIDE / min(h, w)
    if s >= 1:
        return img
    return np.asarray(Image.fromarray(img).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR))


def augment(img: np.ndarray, rng: np.random.Generator, preprocess) -> tuple[bytes, np.ndarray]:
    """One training sample of a design image.

    Half the time the classifier's own geometry (resize + centre crop), else a random resized
    crop (area 25–100% of the image, aspect 3:4–4:3); a flip half the time; stored as a 4:2:0 JPEG
    at a quality drawn from :data:`QUALITY_RANGE`.

    Args:
        img: uint8 (H, W, 3); rng: the sample's generator; preprocess: the classifier's
            :class:`~dnnjpeg.models.Preprocess` (its ``size`` is the crop side, a multiple of 16).
    Returns:
        (the JPEG's bytes, its decoded pixels uint8 (size, size, 3)).
    """
    size = preprocess.size
    if rng.random() < 0.5:
        crop = preprocess.geometry(img)
    else:
        h, w = img.shape[:2]
        for _ in range(10):
            area = h * w * rng.uniform(0.25, 1.0)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                break
        else:
            cw = ch = min(h, w)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = np.asarray(Image.fromarray(img[y0 : y0 + ch, x0 : x0 + cw]).resize((size, size), Image.BILINEAR))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    q = int(rng.integers(QUALITY_RANGE[0], QUALITY_RANGE[1] + 1))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(crop)).save(buf, "JPEG", quality=q, subsampling=2)
    data = buf.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _batch(images, preprocess, seed: int, step: int, batch_size: int):
    """Step ``step``'s samples: positions step·B … in the sequence of per-epoch permutations."""
    from dnnjpeg.dct.planes import planes_from_bytes

    n = len(images)
    ys, cs, px = [], [], []
    perms: dict[int, np.ndarray] = {}  # a batch spans at most two epochs: each permutation drawn once
    for j in range(batch_size):
        g = step * batch_size + j
        if g // n not in perms:
            perms[g // n] = np.random.default_rng([seed, g // n]).permutation(n)
        idx = perms[g // n][g % n]
        data, dec = augment(images[idx], np.random.default_rng([seed, step, j]), preprocess)
        p = planes_from_bytes(data, "<sample>", "4:2:0", verify=False)  # encoded just now, by us
        ys.append(p.y)
        cs.append(p.cbcr)
        px.append(dec)
    cl = torch.channels_last  # the stem's depthwise layers train 2.4× faster so on CPU
    y, c = torch.from_numpy(np.stack(ys)), torch.from_numpy(np.stack(cs))
    return y.contiguous(memory_format=cl), c.contiguous(memory_format=cl), np.stack(px)


#: what a distillation checkpoint holds
CHECKPOINT_KEYS = ("state", "opt", "step", "history", "recipe")


def distill(
    images: Sequence[np.ndarray],
    model,
    config: DistillConfig,
    names: Sequence[str] | None = None,
    checkpoint: str | Path | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> DistillResult:
    """Train a stem for ``model`` (a pixel :class:`~dnnjpeg.models.Model` with a known split).

    Args:
        images: uint8 (H, W, 3) design images (shrunk to a 320-px shorter side here).
        model: the frozen teacher; its parameters are left as they were.
        names: the images' names, for the recipe a resumed run must match.
        checkpoint: a file: the state is written there (atomically) every
            ``config.checkpoint_every`` steps; a run given the same file and recipe resumes.
        progress: called with (step, total steps, recent feature loss).
    Returns:
        :class:`DistillResult`.
    Raises:
        ValueError: no images, or a checkpoint of another recipe.
    """
    if not images:
        raise ValueError("no images to distill from")
    images = [shrink(np.asarray(i)) for i in images]
    recipe = config.recipe(model.name, names or [str(i) for i in range(len(images))])
    torch.manual_seed(config.seed)
    stem = stem_for(model, config.stem).to(memory_format=torch.channels_last)
    opt = _optimizer(stem, config)
    ck_path = Path(checkpoint) if checkpoint is not None else None
    history, start = _resume(ck_path, recipe, stem, opt)
    head, tail = split_model(model.module, model.name)
    net, was_training = model.module, model.module.training
    frozen = [p for p in net.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    net.eval()
    sums = np.zeros(3)
    try:
        stem.train()
        for step in range(start, config.steps):
            for g in opt.param_groups:
                g["lr"] = _lr_at(config, step) * g["scale"]
            fl, kl = _step(stem, head, tail, model.preprocess, images, config, step, opt)
            sums += (fl, kl, 1)
            done = step + 1
            if done % config.checkpoint_every == 0 or done == config.steps:
                history.append({"step": done, "feature_loss": float(sums[0] / sums[2]), "kl": float(sums[1] / sums[2])})
                sums[:] = 0
                _save(ck_path, {"state": stem.state_dict(), "opt": opt.state_dict(), "step": done,
                                "history": history, "recipe": recipe})  # fmt: skip
            if progress:
                progress(done, config.steps, fl)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        net.train(was_training)
    stem.eval()
    return DistillResult(stem, history)


def _save(ck_path: Path | None, state: dict) -> None:
    """The checkpoint, written atomically (nothing without a path)."""
    from dnnjpeg._checkpoint import write_checkpoint

    if ck_path is not None:
        write_checkpoint(ck_path, state)


def _optimizer(stem, config: DistillConfig):
    """AdamW over the stem; the copied head at ``head_lr`` times the rate of the new layers."""
    head = list(stem.head.parameters()) if stem.head is not None else []
    groups = [{"params": [p for p in stem.parameters() if all(p is not q for q in head)], "scale": 1.0},
              {"params": head, "scale": config.head_lr}]  # fmt: skip
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


def _lr_at(config: DistillConfig, step: int) -> float:
    """Linear warm-up over the first 5% of the steps (at most 50), then a cosine to zero."""
    warm = max(1, min(50, config.steps // 20))
    if step < warm:
        return config.lr * (step + 1) / warm
    return config.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, config.steps - warm)))


def _resume(ck_path: Path | None, recipe, stem, opt) -> tuple[list[dict], int]:
    """(history, first step) from a checkpoint of the same recipe, else ([], 0)."""
    from dnnjpeg._checkpoint import resume

    ck = resume(ck_path, CHECKPOINT_KEYS, recipe, stem, opt, "stem")
    return ([], 0) if ck is None else (list(ck["history"]), int(ck["step"]))


def _step(stem, head, tail, pre, images, config: DistillConfig, step: int, opt) -> tuple[float, float]:
    """One batch: relative feature MSE at the cut (+ the output KL through the frozen tail); (feature loss, KL)."""
    y, c, px = _batch(images, pre, config.seed, step, config.batch_size)
    with torch.no_grad():
        target = head(pre.normalize(px)).float().contiguous()
        t_logits = tail(target).float() if config.kl_weight > 0 else None
    feat = stem(y, c)
    fl = ((feat - target) ** 2).mean() / (target**2).mean()
    loss, kl = fl, torch.zeros(())
    if t_logits is not None:
        lp0 = torch.log_softmax(t_logits, 1)
        lq = torch.log_softmax(tail(feat).float(), 1)
        kl = (lp0.exp() * (lp0 - lq)).sum(1).mean()
        loss = fl + config.kl_weight * kl
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(fl.detach()), float(kl.detach())
