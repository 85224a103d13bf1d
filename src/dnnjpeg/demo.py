"""The default demo data: photographs that ship inside installed packages (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnnjpeg._io import atomic_write_bytes

__all__ = ["SAMPLE_NAMES", "sample_images", "materialize_samples", "conclusions"]

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


def conclusions(result: dict) -> list[str]:
    """What an evaluation on a handful of images can and cannot say, as sentences for a newcomer.

    A comparison is judged on KL (every image moves it): its BD-rate on KL with an interval that
    excludes zero is a finding about *these* images; accuracy on a few images is not (its interval
    is tens of points wide). ``result``: an evaluation's results.json.
    """
    n = int(result["settings"]["n_images"])
    metric = result["settings"]["accuracy_metric"]
    out = [
        f"What {n} images can show: how many bits each setting spends for the same change in the network's output "
        "(BD-rate on KL, which every image moves), with an interval. What they cannot show: a difference in "
        f"{metric} (one image is {100 / max(n, 1):.0f} points), or that a gain holds on other data.",
    ]
    if metric == "agreement":
        out.append(
            "These photographs are not ImageNet's classes: the network is unsure of most of them, so even q95 "
            "changes its top-1 on some. Agreement here measures that doubt, not JPEG damage."
        )
    for k in result["comparisons"]:
        kl, ci = k.get("bd_rate_kl"), k.get("bd_rate_kl_ci") or (None, None)
        name = f"{k['test']} vs {k['reference']}"
        if kl is None or kl != kl or ci[0] is None or ci[0] != ci[0]:
            out.append(f"{name}: no conclusion (the curves share too little range).")
        elif ci[1] < 0:
            out.append(f"{name}: {-kl:.0f}% fewer bits at equal KL on these images [{ci[0]:+.0f}, {ci[1]:+.0f}].")
        elif ci[0] > 0:
            out.append(f"{name}: {kl:.0f}% more bits at equal KL on these images [{ci[0]:+.0f}, {ci[1]:+.0f}].")
        else:
            out.append(f"{name}: no difference shown (BD-rate on KL {kl:+.0f}%, interval [{ci[0]:+.0f}, "
                       f"{ci[1]:+.0f}] includes zero).")  # fmt: skip
    return out
