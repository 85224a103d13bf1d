"""A tiny deterministic classifier and image folders for fast evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dnnjpeg.models import Model, Preprocess


class ColorNet(torch.nn.Module):
    """Class = which 8×8 pooled cell pattern dominates; sensitive to compression, deterministic."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(torch.randn(n_classes, 3 * 4 * 4, generator=g))

    def forward(self, x):
        f = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return 5 * f @ self.w.t()


def tiny_model(n_classes: int = 10) -> Model:
    return Model(
        "tiny",
        ColorNet(n_classes).eval(),
        Preprocess(size=32, resize=36, mean=(0.5,) * 3, std=(0.5,) * 3),
        n_classes,
        "custom",
    )


def write_images(folder: Path, n: int, size=(48, 40), seed=0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        base = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize(size, Image.BICUBIC)
        p = folder / f"img{i:03d}.png"
        img.save(p)
        paths.append(p)
    return paths
