"""Differentiable JPEG: dnnjpeg.nn.DiffJPEG against kornia.enhance.jpeg_codec_differentiable.

    make bench-env && .venv-bench/bin/python benchmarks/bench_diffjpeg.py

Same batch (32 × 3 × 224 × 224 center crops of imagenet-sample), 4:2:0 (kornia's only
subsampling), IJG quality-50 tables, forward + backward (gradient to the image and the
tables) images/s, best of --repeats, in one process.  Then each codec's output against
Pillow's real encode → decode of the same crops: mean and max absolute error in 8-bit levels.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dnnjpeg._runtime import tune_malloc

tune_malloc()

from dnnjpeg.codec import ANNEX_K_CHROMA, ANNEX_K_LUMA, QuantTables, decode, encode  # noqa: E402
from dnnjpeg.nn import DiffJPEG  # noqa: E402


def crops(folder: Path, n: int, size: int = 224) -> np.ndarray:
    out = []
    for p in sorted(folder.glob("*.JPEG"))[:n]:
        im = Image.open(p).convert("RGB")
        s = 256 / min(im.size)
        im = im.resize((max(size, round(im.width * s)), max(size, round(im.height * s))), Image.BILINEAR)
        left, top = (im.width - size) // 2, (im.height - size) // 2
        out.append(np.asarray(im.crop((left, top, left + size, top + size))))
    return np.stack(out)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenet-sample"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    imgs = crops(Path(a.data), a.batch)
    q50 = QuantTables.standard(50)
    x255 = torch.from_numpy(imgs).permute(0, 3, 1, 2).float()
    real = np.stack([np.asarray(decode(encode(im, q50, "4:2:0"))) for im in imgs]).astype(np.float64)
    res = {"batch": list(x255.shape), "threads": torch.get_num_threads(), "torch": torch.__version__}

    def ours(mode):
        codec = DiffJPEG("4:2:0", mode).train()

        def step():
            x = x255.clone().requires_grad_(True)
            t = torch.as_tensor(q50.as_array(), dtype=torch.float32).requires_grad_(True)
            codec(x, t).mean().backward()

        return step

    for mode in ("ste", "cubic", "soft"):
        res[f"dnnjpeg_{mode}_img_s"] = a.batch / timed(ours(mode), a.repeats)
    with torch.no_grad():
        for mode in ("exact", "ste", "cubic"):
            e = np.abs(DiffJPEG("4:2:0", mode).eval()(x255, q50).permute(0, 2, 3, 1).numpy() - real)
            res[f"dnnjpeg_{mode}_mae"], res[f"dnnjpeg_{mode}_max"] = float(e.mean()), float(e.max())
    try:
        import kornia
        from kornia.enhance import jpeg_codec_differentiable
    except ImportError:
        res["kornia"] = "not installed (make bench-env)"
    else:
        res["kornia"] = kornia.__version__
        ty = torch.as_tensor(np.array(ANNEX_K_LUMA), dtype=torch.float32)[None].expand(a.batch, 8, 8)
        tc = torch.as_tensor(np.array(ANNEX_K_CHROMA), dtype=torch.float32)[None].expand(a.batch, 8, 8)

        def kstep():
            x = (x255 / 255).clone().requires_grad_(True)
            qy, qc = ty.clone().requires_grad_(True), tc.clone().requires_grad_(True)
            # quality 50 leaves the given (Annex K) tables unscaled: the same tables as ours
            jpeg_codec_differentiable(x, torch.full((a.batch,), 50.0), qy, qc).mean().backward()

        res["kornia_img_s"] = a.batch / timed(kstep, a.repeats)
        with torch.no_grad():
            k = jpeg_codec_differentiable(x255 / 255, torch.full((a.batch,), 50.0), ty, tc)
        e = np.abs(k.permute(0, 2, 3, 1).numpy() * 255 - real)
        res["kornia_mae"], res["kornia_max"] = float(e.mean()), float(e.max())
        res["speedup_ste_vs_kornia"] = res["dnnjpeg_ste_img_s"] / res["kornia_img_s"]
        res["speedup_cubic_vs_kornia"] = res["dnnjpeg_cubic_img_s"] / res["kornia_img_s"]
    print(json.dumps(res, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
