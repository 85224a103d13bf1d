"""Frequency networks on CIFAR-10's own JPEG coefficients against the pixel ResNet-8, same schedule.

The training files (q75 4:2:0 JPEG) are loaded twice: decoded to pixels (``load_image_folder``) and
as coefficient planes without decoding (``load_dct_folder``), each timed. For every seed: the pixel
ResNet-8 and the frequency network(s) with the same schedule (``dnnjpeg train`` / ``--input dct``);
test top-1 with the paired difference and its 95% t-interval over seeds. Then inference from file
bytes to logits on ``--infer`` test files, 2 threads, batch 256: Pillow decode + pixel network
against the compiled coefficient reader + frequency network.

    .venv/bin/python benchmarks/bench_dct_train.py ../shared/data/cifar10 --seeds 0,1,2 --epochs 6
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from dnnjpeg._runtime import tune_malloc
from dnnjpeg.codec import decode
from dnnjpeg.dct.nets import load_dct_folder, stack_planes
from dnnjpeg.dct.planes import planes_of
from dnnjpeg.dct.read import decode_coefficients
from dnnjpeg.nn.train import TrainConfig, load_image_folder, summarize_runs, train_classifier


def _throughput(fn, datas, batch=256) -> float:
    """Files per second from bytes to logits (best of 2 passes)."""
    best = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(datas), batch):
                fn(datas[i : i + batch])
        best = max(best, len(datas) / (time.perf_counter() - t0))
    return best


def main() -> None:
    tune_malloc()
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--frequencies", default="all,24", help="frequency networks: all and/or N (luma; N/4 chroma)")
    ap.add_argument("--infer", type=int, default=5000)
    ap.add_argument("--out", default="bench-dct-train.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    px_tr, px_te = load_image_folder(a.data / "train"), load_image_folder(a.data / "test")
    t1 = time.perf_counter()
    dc_tr, dc_te = load_dct_folder(a.data / "train"), load_dct_folder(a.data / "test")
    t2 = time.perf_counter()
    n_files = len(px_tr[0]) + len(px_te[0])
    loading = {"pixels_files_per_s": n_files / (t1 - t0), "dct_files_per_s": n_files / (t2 - t1)}
    print(f"loading {n_files} files: decode {loading['pixels_files_per_s']:.0f} files/s, coefficients "
          f"{loading['dct_files_per_s']:.0f} files/s", flush=True)  # fmt: skip
    runs, models = [], {}
    freqs = [None if f == "all" else int(f) for f in a.frequencies.split(",")]
    for s in (int(x) for x in a.seeds.split(",")):
        r = train_classifier(px_tr[:2], px_te[:2], TrainConfig(epochs=a.epochs, seed=s), keep_model=True)
        models["pixels"] = r.pop("model")
        runs.append(r)
        print(f"seed {s} pixels: {r['test_top1']:.2f}% ({r['wall_seconds']:.0f} s)", flush=True)
        for f in freqs:
            r = train_classifier(dc_tr[:2], dc_te[:2], TrainConfig(epochs=a.epochs, seed=s, input="dct", frequencies=f),
                                 keep_model=True)  # fmt: skip
            models[f"dct {f or 'all'}"] = r.pop("model")
            r["config"]["variant"] = f"dct {f or 'all'}"
            runs.append(r)
            print(f"seed {s} dct {f or 'all'}: {r['test_top1']:.2f}% ({r['wall_seconds']:.0f} s)", flush=True)
    summary = {}
    for f in freqs:
        name = f"dct {f or 'all'}"
        sub = [r for r in runs if r["config"]["input"] == "pixels" or r["config"].get("variant") == name]
        summary[name] = summarize_runs(sub)
        d = summary[name]["dct_difference"]
        print(f"{name} − pixels: {d['mean']:+.2f} points [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}] over {d['n']} seeds")
    files = sorted(p for p in (a.data / "test").rglob("*.jpg"))[: a.infer]
    datas = [p.read_bytes() for p in files]
    pix = models["pixels"]

    def pixel_path(chunk):
        x = np.stack([decode(d) for d in chunk])
        return pix(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0)

    speed = {"pixels (Pillow decode + ResNet-8)": _throughput(pixel_path, datas)}
    for name, m in models.items():
        if name == "pixels":
            continue

        def dct_path(chunk, m=m):
            planes = [planes_of(decode_coefficients(d)) for d in chunk]
            return m(torch.from_numpy(np.stack([stack_planes(p.y, p.cbcr) for p in planes])))

        speed[f"{name} (coefficient reader + frequency network)"] = _throughput(dct_path, datas)
    for k, v in speed.items():
        print(f"{k}: {v:.0f} images/s from bytes to logits")
    n_train = len(px_tr[0])
    train_speed = {r["config"].get("variant", "pixels"): n_train * a.epochs / r["wall_seconds"] for r in runs}
    res = {"loading": loading, "summary": summary, "inference_images_per_s": speed,
           "training_images_per_s": train_speed, "runs": runs}  # fmt: skip
    Path(a.out).write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
