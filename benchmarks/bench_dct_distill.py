"""A pretrained classifier reading JPEG coefficients (dnnjpeg.dct.stem) against the pixel classifier.

1. Stems: distilled here from the first N design images of imagenet-sample for each N in
   ``--images`` (``dnnjpeg dct distill``'s code, resumable in ``--work``), or given as files
   (``--stems``).
2. Accuracy: the eval split, each image at lite0's geometry (resize 256, centre crop 224) stored as
   a 224×224 4:2:0 JPEG at each quality: top-1 of pixel lite0 (Pillow decode) and of each DCT model
   (the file's coefficients), their agreement, and the difference with a paired bootstrap 95%
   interval.
3. Speed, 2 cores, bytes → logits, batch 32, best of ``--repeat``: the 224×224 q90 files (pixel:
   Pillow decode; DCT: coefficient reader) and the stored originals (pixel: Pillow decode + resize +
   crop, and Pillow draft() + resize + crop, the fastest pixel path; DCT: reader + DCT-domain
   down-scale + block-grid crop).

    .venv/bin/python benchmarks/bench_dct_distill.py ../shared/data/imagenet-sample --images 100,250,508 \
        --steps 800 --work bench-dct-distill
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from dnnjpeg._runtime import tune_malloc  # noqa: E402
from dnnjpeg.codec import load_image  # noqa: E402
from dnnjpeg.data import discover  # noqa: E402
from dnnjpeg.dct.distill import DistillConfig, distill  # noqa: E402
from dnnjpeg.dct.stem import assemble, load_dct_model, save_stem, stem_for  # noqa: E402
from dnnjpeg.models import load_model  # noqa: E402


def _jpeg(img: np.ndarray, q: int) -> bytes:
    b = io.BytesIO()
    Image.fromarray(img).save(b, "JPEG", quality=q, subsampling=2)
    return b.getvalue()


def _boot(a: np.ndarray, b: np.ndarray, n: int = 2000, seed: int = 0) -> list[float]:
    """95% paired bootstrap interval of mean(a) − mean(b) in points."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (n, len(a)))
    d = (a[idx].mean(1) - b[idx].mean(1)) * 100
    return [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]


def stems(a, m) -> dict[str, str]:
    out = {}
    for s in a.stems or []:
        out[Path(s).stem] = s
    if a.images:
        a.work.mkdir(parents=True, exist_ok=True)
        for n in [int(x) for x in a.images.split(",")]:
            f = a.work / f"stem-{n}.pt"
            if not f.is_file():
                ds = discover(a.data).subset("design", n)
                imgs = [load_image(r.path, "RGB") for r in ds.records]
                t0 = time.perf_counter()
                cfg = DistillConfig(steps=a.steps)

                def prog(s, total, loss, n=n, t0=t0):
                    if s % 50 == 0:
                        print(f"  stem {n}: step {s}/{total} feature loss {loss:.3f} "
                              f"{time.perf_counter() - t0:.0f}s", flush=True)  # fmt: skip

                res = distill(imgs, m, cfg, names=[r.path.name for r in ds.records],
                              checkpoint=a.work / f"stem-{n}.ckpt", progress=prog)  # fmt: skip
                save_stem(res.stem, m.name, f, {"images": len(imgs), "steps": a.steps, "history": res.history,
                                                "seconds": time.perf_counter() - t0})  # fmt: skip
            out[f"{n} images"] = str(f)
    if a.scratch_steps:  # the control: the detail path alone, from scratch, on all design images
        f = a.work / f"scratch-{a.scratch_steps}.pt"
        if not f.is_file():
            ds = discover(a.data).subset("design")
            imgs = [load_image(r.path, "RGB") for r in ds.records]
            cfg = DistillConfig(steps=a.scratch_steps, stem={"coarse": False, "width": 64, "chroma": 24, "blocks": 3})
            res = distill(imgs, m, cfg, names=[r.path.name for r in ds.records], checkpoint=a.work / "scratch.ckpt")
            save_stem(res.stem, m.name, f, {"images": len(imgs), "steps": a.scratch_steps, "history": res.history})
        out[f"scratch, {a.scratch_steps} steps"] = str(f)
    return out


def accuracy(a, m, dms: dict) -> dict:
    ds = discover(a.data).subset("eval", a.eval_limit)
    crops = [m.preprocess.geometry(load_image(r.path, "RGB")) for r in ds.records]
    lab = np.array([r.label for r in ds.records])
    res = {}
    for q in a.qualities:
        files = [_jpeg(c, q) for c in crops]
        dec = np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for f in files])
        px = m.logits(dec, 64).argmax(1)
        row = {"pixel_top1": float((px == lab).mean() * 100), "n": len(lab)}
        for name, dm in dms.items():
            dc = dm.logits_files(files, 64).argmax(1)
            ok_p, ok_d = (px == lab).astype(float), (dc == lab).astype(float)
            row[name] = {"top1": float(ok_d.mean() * 100), "agreement": float((dc == px).mean() * 100),
                         "difference": float((ok_d.mean() - ok_p.mean()) * 100), "ci95": _boot(ok_d, ok_p)}  # fmt: skip
        res[f"q{q}"] = row
        print(json.dumps({f"q{q}": row}), flush=True)
    return res


def speed(a, m, dm) -> dict:
    from dnnjpeg.codec import parse_header_bytes

    ds = discover(a.data).subset("eval")
    # the coefficient model reads 4:2:0, 4:4:4 and gray files (dnnjpeg.dct.planes); 4:2:2 ones are skipped here
    stored = [b for b in (Path(r.path).read_bytes() for r in ds.records)
              if parse_header_bytes(b).subsampling in ("4:2:0", "4:4:4", "gray")][: a.speed_images]  # fmt: skip
    small = [_jpeg(m.preprocess.geometry(load_image(r.path, "RGB")), 90) for r in ds.records[: len(stored)]]
    pre = m.preprocess

    def pixel(files, how):
        def one(f):
            im = Image.open(io.BytesIO(f))
            if how == "draft":
                w, h = im.size
                s = pre.resize / min(w, h)
                im.draft("RGB", (max(1, round(w * s)), max(1, round(h * s))))
            return pre.geometry(im) if how != "none" else np.asarray(im.convert("RGB"))

        out = []
        with torch.inference_mode():
            for i in range(0, len(files), 32):
                out.append(m.module(pre.normalize(np.stack([one(f) for f in files[i : i + 32]]))))
        return out

    runs = {
        "224x224 q90 files: Pillow decode + pixel lite0": lambda: pixel(small, "none"),
        "224x224 q90 files: coefficients + DCT model": lambda: dm.logits_files(small, 32),
        "stored files: Pillow decode + resize + crop + pixel lite0": lambda: pixel(stored, "full"),
        "stored files: Pillow draft + resize + crop + pixel lite0": lambda: pixel(stored, "draft"),
        "stored files: coefficients + DCT down-scale + crop + DCT model": lambda: dm.logits_files(stored, 32),
    }
    res = {}
    for name, fn in runs.items():
        fn()
        best = 0.0
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            fn()
            best = max(best, len(stored) / (time.perf_counter() - t0))
        res[name] = best
        print(f"  {name}: {best:.1f} images/s", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--images", default="", help="distill stems from these numbers of design images")
    ap.add_argument("--stems", nargs="*", help="stem files to measure besides (or instead)")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--work", type=Path, default=Path("bench-dct-distill"))
    ap.add_argument("--qualities", type=lambda s: [int(x) for x in s.split(",")], default=[90, 75, 50])
    ap.add_argument("--eval-limit", type=int, default=None)
    ap.add_argument("--speed-images", type=int, default=256)
    ap.add_argument("--speed-model", default=None, help="which stem's model to time (default: the last)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scratch-steps", type=int, default=0, help="also distill the detail path alone from scratch")
    ap.add_argument("--untrained", action="store_true", help="also measure the stem before distillation")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("bench-dct-distill.json"))
    a = ap.parse_args()
    tune_malloc()  # as the CLI does: without it, page faults slow the pixel path most
    torch.set_num_threads(2)
    m = load_model("efficientnet-lite0")
    files = stems(a, m)
    dms = {name: load_dct_model(f"dct:{f}") for name, f in files.items()}
    if a.untrained:  # the starting point: the pixel head on the ½ image, up-sampled, no detail
        torch.manual_seed(0)
        dms["not distilled"] = assemble(m, stem_for(m).eval())
    res = {"stems": files, "accuracy": {} if a.no_accuracy else accuracy(a, m, dms)}
    if not a.no_speed:
        key = a.speed_model or next(k for k in dms if "images" in k)
        res["speed_images_per_s"] = speed(a, m, dms[key])
        res["speed_model"] = key
    a.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
