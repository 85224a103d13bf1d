"""The default demo data: photographs that ship inside installed packages (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnnjpeg._io import atomic_write_bytes

__all__ = ["SAMPLE_NAMES", "sample_images", "materialize_samples"]

#: scikit-image's bundled photographs (color ones, and gray ones shown as RGB).
SAMPLE_NAMES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
    "camera",
    "coins",
    "moon",
    "clock",
    "page",
    "text",
)


def sample_images(names: tuple[str, ...] = SAMPLE_NAMES) -> dict[str, np.ndarray]:
    """name → uint8 (H, W, 3) RGB (gray photographs replicated to 3 channels)."""
    import skimage.data

    out = {}
    for n in names:
        a = np.asarray(getattr(skimage.data, n)())
        if a.dtype != np.uint8:
            a = (a.astype(np.float64) / max(1, a.max()) * 255).astype(np.uint8)
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        out[n] = a[..., :3]
    return out


def materialize_samples(folder: Path) -> Path:
    """Write the sample photographs as lossless PNGs into ``folder`` (once) and return it."""
    from io import BytesIO

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name, img in sample_images().items():
        p = folder / f"{name}.png"
        if not p.exists():
            buf = BytesIO()
            Image.fromarray(img).save(buf, "PNG")
            atomic_write_bytes(p, buf.getvalue())
    return folder
