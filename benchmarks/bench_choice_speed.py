"""Images per second of the network's per-image choice on this machine: every member, the local search
image by image (how ``--choose climb`` ran before), and the local search batched across images::

    .venv/bin/python benchmarks/bench_choice_speed.py --data ../shared/data/imagenet-sample --limit 200

Each run compresses the same files into a fresh folder (lite0, the 8-member sweep, λ = 0.002 nats/KiB,
no check); the time includes reading and writing, not loading the model.
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
        t = time.perf_counter()
        fast = model.compiled(32)  # what compress does from COMPILE_FROM images on
        print(f"torch.compile of {model.name} for batches of 32: {time.perf_counter() - t:.1f} s")
        for name, search, batched, m in (("every member", "all", True, model),
                                         ("climb, image by image", "climb", False, model),
                                         ("climb, batched", "climb", True, model),
                                         ("every member, compiled", "all", True, fast),
                                         ("climb, batched, compiled", "climb", True, fast)):  # fmt: skip
            run_mod._batchable = batchable if batched else (lambda ch, search="all": False)
            ch = make_chooser(family=fam, model=m, lam=0.002, search=search)
            t = time.perf_counter()
            rep = compress_tree(src, Path(tmp) / name.replace(" ", "-").replace(",", ""), ch, compile=False)
            dt = time.perf_counter() - t
            print(f"{name:<26} {n} images in {dt:6.1f} s: {n / dt:5.1f} images/s ({rep.written} written)")
        run_mod._batchable = batchable
    return 0


if __name__ == "__main__":
    sys.exit(main())
