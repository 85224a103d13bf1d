"""The batched classifier pipeline: per-image choice throughput against the model alone.

    .venv/bin/python benchmarks/bench_pipeline.py --images 100 --batch 32 [--workers 2] [--device cpu]
    .venv/bin/python benchmarks/bench_pipeline.py --gradients 16     # SDQ gradient weights, batched or not
    .venv/bin/python benchmarks/bench_pipeline.py --breakdown --images 100   # one candidate's JPEG work

On ``--images`` imagenet-sample files (copied to a scratch folder, names sorted), the family
``preset:efficientnet-lite0-420-original-sweep`` (K = 8), lite0, λ = 0.002 nats/KiB:

* model only: lite0's forward pass on the images' pristine crops, ``--batch`` per pass
  (the ceiling: what the network alone does at that batch size; best of 3 after a warm-up);
* per image: the earlier path, one image's K + 1 inputs per pass, JPEG work between passes
  (``select_encode`` image after image);
* batched: ``compress --choose network`` through :mod:`dnnjpeg.pipeline` (JPEG work in threads beside
  the network, candidates of many images in batches of ``--batch``), files written.

Candidates/s counts the K decoded files (not the pristine input) per image per second.
Printed as a Markdown table; model loading is excluded from every timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dnnjpeg._runtime import tune_malloc

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imagenet-sample"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", default="2", help="compress --workers for the batched path, comma-separated")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--family", default="preset:efficientnet-lite0-420-original-sweep")
    ap.add_argument("--gradients", type=int, default=0,
                    help="also time SDQ gradient weights on this many 224² crops: one image per backward pass "
                    "against passes of 4 and 8 (gradient_weights_batch)")  # fmt: skip
    ap.add_argument("--breakdown", action="store_true",
                    help="also time one candidate's JPEG steps on one thread")  # fmt: skip
    args = ap.parse_args(argv)
    tune_malloc()
    if args.gradients:
        return _gradients(args.gradients)
    if args.breakdown:
        return _breakdown(args.images, args.family)

    import numpy as np
    import torch

    from dnnjpeg.choosers import make_chooser
    from dnnjpeg.codec import load_image
    from dnnjpeg.compress import compress_tree
    from dnnjpeg.engine import LocalEngine
    from dnnjpeg.models import load_model
    from dnnjpeg.pipeline import resolve_device
    from dnnjpeg.select import select_encode

    files = sorted(SHARED.glob("*.JPEG"))[: args.images]
    if not files:
        sys.exit(f"no images under {SHARED}")
    model = load_model("efficientnet-lite0").to(resolve_device(args.device))
    chooser = make_chooser(family=[args.family], model=model, lam=0.002)
    K = len(chooser.family)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for f in files:
            shutil.copy(f, src / f.name)
        imgs = [load_image(str(f)) for f in sorted(src.iterdir())]
        pre = model.preprocess
        crops = np.stack([pre.geometry(np.repeat(i[..., None], 3, 2) if i.ndim == 2 else i) for i in imgs])

        def model_only(bs: int) -> float:
            model.logits(crops[:bs], bs)  # warm-up: each new batch shape builds its kernels once
            model.logits(crops[: len(crops) % bs or bs], bs)
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                model.logits(crops, bs)
                best = min(best, time.perf_counter() - t)
            return len(crops) / best

        ref = model_only(args.batch)
        rows.append((f"model only, batch {args.batch} (pristine crops)", f"{ref:.1f}", "", ""))
        rows.append((f"model only, batch {K + 1}", f"{model_only(K + 1):.1f}", "", ""))

        t = time.perf_counter()
        for img in imgs:
            select_encode(img, chooser.family.points, model, 0.002, chooser.family.subsamplings, True)
        dt = time.perf_counter() - t
        rows.append(("per image (K + 1 per pass)", "", f"{len(imgs) / dt:.2f}", f"{K * len(imgs) / dt:.1f}"))

        for w in [int(x) for x in args.workers.split(",")]:
            out = Path(tmp) / f"out{w}"
            t = time.perf_counter()
            rep = compress_tree(src, out, chooser, engine=LocalEngine(w), batch_size=args.batch)
            dt = time.perf_counter() - t
            assert rep.ok and rep.written == len(imgs), rep.failures
            name = f"batched compress, workers={w} ({max(1, min(8, w // 2))} JPEG thread(s))"
            rows.append((name, "", f"{len(imgs) / dt:.2f}", f"{K * len(imgs) / dt:.1f}"))
    print(f"\n{len(files)} images, K = {K}, batch {args.batch}, device {args.device}, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} cores\n")  # fmt: skip
    print("| path | model images/s | images/s | candidates/s |\n|---|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    best = max(float(r[3]) for r in rows[3:])
    print(f"\nbatched candidates/s / model-only images/s at batch {args.batch}: {best / ref:.2f}")
    return 0


def _breakdown(n: int, family: str) -> int:
    """Milliseconds per candidate of each JPEG step, mean over ``n`` images and the family's members."""
    import torch

    from dnnjpeg.codec import decode, load_image
    from dnnjpeg.families import parse_family
    from dnnjpeg.models import load_model

    torch.set_num_threads(1)
    pre = load_model("efficientnet-lite0").preprocess
    pts = parse_family(family).points
    t = {"source decode": 0.0, "encode": 0.0, "decode": 0.0, "resize + crop": 0.0}
    files = sorted(SHARED.glob("*.JPEG"))[:n]
    for f in files:
        t0 = time.perf_counter()
        img = load_image(str(f), "RGB")
        t1 = time.perf_counter()
        datas = [p.encode(img) for p in pts]
        t2 = time.perf_counter()
        decs = [decode(d) for d in datas]
        t3 = time.perf_counter()
        for x in [img, *decs]:
            pre.geometry(x)
        t4 = time.perf_counter()
        t["source decode"] += (t1 - t0) / len(files)
        t["encode"] += (t2 - t1) / len(files) / len(pts)
        t["decode"] += (t3 - t2) / len(files) / len(pts)
        t["resize + crop"] += (t4 - t3) / len(files) / (len(pts) + 1)
    k = len(pts)
    per_image = t["source decode"] + k * (t["encode"] + t["decode"]) + (k + 1) * t["resize + crop"]
    print("| step | ms (one thread) |\n|---|---:|")
    for name, v in t.items():
        print(f"| {name} {'(per image)' if name == 'source decode' else '(per candidate)'} | {1e3 * v:.2f} |")
    print(f"| all JPEG work of one image (K = {k}) | {1e3 * per_image:.1f} |")
    return 0


def _gradients(n: int) -> int:
    import numpy as np

    from dnnjpeg.codec import load_image
    from dnnjpeg.models import load_model
    from dnnjpeg.sdq.weights import gradient_weights_batch

    m = load_model("efficientnet-lite0")
    crops = [m.preprocess.geometry(load_image(str(f), "RGB")) for f in sorted(SHARED.glob("*.JPEG"))[:n]]
    gradient_weights_batch(crops[:1], m, at="input")  # warm-up
    ref = None
    print("| images per backward pass | images/s | max relative difference from one at a time |\n|---:|---:|---:|")
    for b in (1, 4, 8):
        t = time.perf_counter()
        w = gradient_weights_batch(crops, m, at="input", batch=b)
        dt = time.perf_counter() - t
        ref = ref or w
        diff = max(np.abs(x - y).max() / np.abs(y).max() for p, q in zip(w, ref) for x, y in zip(p, q))
        print(f"| {b} | {len(crops) / dt:.2f} | {diff:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
