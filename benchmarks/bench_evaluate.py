"""Trial throughput against model-only throughput, measured in the same run.

Model-only: classify the cached pristine model inputs (no JPEG at all).
Trial: encode every cached image with one codec setting, count bytes, decode,
(for --at original: resize/crop), classify — what every point of a curve and
every search trial costs.  Target: trial >= 0.9x model-only.

    .venv/bin/python benchmarks/bench_evaluate.py [--data DIR] [--n 300] [--at input|original]

Run it twice to see the malloc effect: as is, and with DNNJPEG_NO_MALLOC_TUNING=1.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from dnnjpeg._runtime import tune_malloc

TUNED = tune_malloc()

import torch  # noqa: E402

from dnnjpeg.codec import QuantTables  # noqa: E402
from dnnjpeg.data import discover  # noqa: E402
from dnnjpeg.evaluate import CodecSpec, build_pristine, run_trial  # noqa: E402
from dnnjpeg.models import load_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenet-sample"))
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--at", default="input")
    ap.add_argument("--quality", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    ds = discover(a.data).subset("all", a.n)
    m = load_model(a.model)
    pr = build_pristine(ds, m, a.at)
    spec = CodecSpec(QuantTables.standard(a.quality), "4:2:0")
    m.logits(pr.inputs[: a.batch_size])  # warm-up
    run_trial(spec, pr, m, batch_size=a.batch_size, workers=a.workers)
    best_model, best_trial = 0.0, 0.0
    for _ in range(a.repeat):  # interleaved, best of each: both see the same machine state
        t0 = time.perf_counter()
        m.logits(pr.inputs, batch_size=a.batch_size)
        best_model = max(best_model, len(pr) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        run_trial(spec, pr, m, batch_size=a.batch_size, workers=a.workers)
        best_trial = max(best_trial, len(pr) / (time.perf_counter() - t0))
    print(
        f"images: {len(pr)} · model {a.model} · JPEG at {a.at} · q={a.quality} 4:2:0 · batch {a.batch_size} · "
        f"JPEG workers {a.workers} · torch threads {torch.get_num_threads()} · malloc tuned: {TUNED} "
        f"(MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_')})"
    )
    print(f"model only : {best_model:7.1f} images/s")
    print(f"full trial : {best_trial:7.1f} images/s  -> {best_trial / best_model:.2f}x model-only")


if __name__ == "__main__":
    main()
