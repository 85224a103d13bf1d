"""SDQ encoding speed on one core: ImageNet-size photos per second, from decoded pixels to file bytes.

One process, one thread (torch and numba), the first ``--n`` imagenet-sample files decoded first;
for each setting the median of ``--repeat`` timed passes over all of them, after one warm-up image.
Settings: libjpeg with the same table (the floor), SDQ with lite0's Fisher weights (1 and 2 passes),
with the crop weights, and with gradient weights (one backward pass of lite0 per image).

    .venv/bin/python benchmarks/bench_sdq_speed.py ../shared/data/imagenet-sample --n 100
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from dnnjpeg._runtime import tune_malloc  # noqa: E402
from dnnjpeg.codec import encode, load_image  # noqa: E402
from dnnjpeg.presets import load_preset  # noqa: E402


def main() -> None:
    tune_malloc()
    import torch

    torch.set_num_threads(1)
    from dnnjpeg.models import load_model
    from dnnjpeg.sdq.encode import fisher_weights, image_coefficients, sdq_encode, table_lambda
    from dnnjpeg.sdq.weights import gradient_weights, model_weights

    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    files = sorted(p for p in Path(a.data).iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))[: a.n]
    imgs = [x for x in (load_image(p, "RGB") for p in files) if x.ndim == 3]
    t = load_preset("efficientnet-lite0-420-original")
    fw = fisher_weights()
    lam = table_lambda(t, fw, 0.01)
    lite0 = load_model("efficientnet-lite0")
    settings = {
        "libjpeg, same table": lambda x: encode(x, t, "4:2:0", True),
        "image_coefficients only": lambda x: image_coefficients(x) and b"",
        "SDQ fisher, 1 pass": lambda x: sdq_encode(x, t, lam, fw, iterations=1)[0],
        "SDQ fisher, 2 passes (default)": lambda x: sdq_encode(x, t, lam, fw)[0],
        "SDQ crop, 2 passes": lambda x: sdq_encode(x, t, lam, model_weights("crop", x.shape[:2]))[0],
        "SDQ gradient (lite0 backward), 2 passes": lambda x: sdq_encode(x, t, lam, gradient_weights(x, lite0))[0],
    }
    mpx = sum(x.shape[0] * x.shape[1] for x in imgs) / len(imgs) / 1e6
    print(f"{len(imgs)} images, mean {mpx:.3f} Mpx; 1 thread")
    for name, fn in settings.items():
        fn(imgs[0])
        times, size = [], 0
        for _ in range(a.repeat if "gradient" not in name else 1):
            t0 = time.perf_counter()
            size = sum(len(fn(x)) for x in imgs)
            times.append(time.perf_counter() - t0)
        dt = float(np.median(times))
        bpp = 8 * size / sum(x.shape[0] * x.shape[1] for x in imgs)
        print(f"{name:>42}: {len(imgs) / dt:6.1f} images/s, {1000 * dt / len(imgs):6.1f} ms/image, {bpp:.3f} bpp")


if __name__ == "__main__":
    main()
