"""Images per second of the network's per-image choice on this machine: every member, the local search
image by image (how ``--choose climb`` ran before), and the local search batched across images::

    .venv/bin/python benchmarks/bench_choice_speed.py --data ../shared/data/imagenet-sample --limit 200

Each run compresses the same files into a fresh folder (lite0, the 8-member sweep, λ = 0.002 nats/KiB,
no check); the time includes reading and writing and making the network fast (torch.compile ≈ 30 s,
the onnxruntime export ≈ 1 s), not loading the model.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dnnjpeg._runtime import tune_malloc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/imagenet-sample")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--split", default="eval")
    ap.add_argument("--only", default="", help="run only the ways whose name holds this text")
    a = ap.parse_args(argv)
    tune_malloc()
    import dnnjpeg.compress.run as run_mod
    from dnnjpeg.choosers import make_chooser
    from dnnjpeg.compress import compress_tree
    from dnnjpeg.data import discover
    from dnnjpeg.models import load_model

    model = load_model("efficientnet-lite0")
    fam = ["preset:efficientnet-lite0-420-original-sweep"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for r in discover(a.data).subset(a.split, a.limit).records:
            shutil.copy(r.path, src / r.path.name)
        n = len(list(src.iterdir()))
        batchable = run_mod._batchable
        runs = (("every member", "all", True, "none"), ("climb, image by image", "climb", False, "none"),
                ("climb, batched", "climb", True, "none"), ("every member, compiled", "all", True, "compile"),
                ("climb, batched, compiled", "climb", True, "compile"),
                ("every member, onnxruntime", "all", True, "onnx"),
                ("climb, batched, onnxruntime", "climb", True, "onnx"))  # fmt: skip
        for name, search, batched, how in runs:
            if a.only and a.only not in name:
                continue
            run_mod._batchable = batchable if batched else (lambda ch, search="all": False)
            ch = make_chooser(family=fam, model=model, lam=0.002, search=search)
            t = time.perf_counter()
            rep = compress_tree(src, Path(tmp) / name.replace(" ", "-").replace(",", ""), ch, accelerate=how)
            dt = time.perf_counter() - t
            print(f"{name:<30} {n} images in {dt:6.1f} s: {n / dt:5.1f} images/s ({rep.written} written)", flush=True)
        run_mod._batchable = batchable
    return 0


if __name__ == "__main__":
    sys.exit(main())
