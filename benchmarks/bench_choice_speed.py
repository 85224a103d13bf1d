"""Images per second of the network's per-image choice on this machine: every member, the local search
image by image (how ``--choose climb`` ran before), and the local search batched across images, looking one
member each way (``reach`` 1, before) or two (now)::

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
    from dnnjpeg.evaluate import selection
    from dnnjpeg.models import load_model

    reach_default = selection.CLIMB_REACH
    model = load_model("efficientnet-lite0")
    fam = ["preset:efficientnet-lite0-420-original-sweep"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for r in discover(a.data).subset(a.split, a.limit).records:
            shutil.copy(r.path, src / r.path.name)
        n = len(list(src.iterdir()))
        batchable = run_mod._batchable
        # (name, search, batched across images, accelerate, the climb's reach)
        runs = (("every member", "all", True, "none", 2), ("climb, image by image", "climb", False, "none", 1),
                ("climb, batched", "climb", True, "none", 1), ("every member, compiled", "all", True, "compile", 2),
                ("climb, batched, compiled", "climb", True, "compile", 1),
                ("every member, onnxruntime", "all", True, "onnx", 2),
                ("climb, batched, onnxruntime", "climb", True, "onnx", 1),
                ("climb reach 2, batched, onnxruntime", "climb", True, "onnx", 2))  # fmt: skip
        for name, search, batched, how, reach in runs:
            if a.only and a.only not in name:
                continue
            run_mod._batchable = batchable if batched else (lambda ch, search="all": False)
            selection.CLIMB_REACH = reach
            ch = make_chooser(family=fam, model=model, lam=0.002, search=search)
            t = time.perf_counter()
            rep = compress_tree(src, Path(tmp) / name.replace(" ", "-").replace(",", ""), ch, accelerate=how)
            dt = time.perf_counter() - t
            print(f"{name:<36} {n} images in {dt:6.1f} s: {n / dt:5.1f} images/s ({rep.written} written)", flush=True)
        selection.CLIMB_REACH = reach_default
        run_mod._batchable = batchable
    return 0


if __name__ == "__main__":
    sys.exit(main())
