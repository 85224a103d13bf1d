"""Is a bit budget met as written? The stacked family of issue 39 under ``--target-bpp``, run as a user
would, and the bits per pixel of the files written measured independently (output bytes over the
sources' pixels)::

    .venv/bin/python benchmarks/bench_budget.py --data ../shared/data/imagenet-sample --every 10 --targets 0.45,0.7

Each target runs ``dnnjpeg compress SRC DST --choose network --family S --family sdq:crop:S --family
sdq:gradient:S --target-bpp B --allow-larger --strip-metadata --check 0`` with
S = preset:efficientnet-lite0-420-original-sweep, on every ``--every``-th image of ``--data``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

S = "preset:efficientnet-lite0-420-original-sweep"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/imagenet-sample")
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--targets", default="0.45,0.7")
    a = ap.parse_args(argv)
    from PIL import Image

    files = sorted(p for p in Path(a.data).resolve().iterdir() if p.is_file())[:: a.every]
    exe = str(Path(sys.executable).with_name("dnnjpeg"))
    print(f"{len(files)} images of {a.data}\n")
    print("| target (bpp) | λ found (nats/KiB) | bpp written (measured here) | off | exit | minutes |")
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for f in files:
            os.symlink(f, src / f.name)
        pixels = sum(Image.open(f).size[0] * Image.open(f).size[1] for f in files)
        for target in map(float, a.targets.split(",")):
            dst = Path(tmp) / f"dst-{target}"
            t = time.monotonic()
            argv = [exe, "compress", str(src), str(dst), "--choose", "network", "--family", S, "--family",
                    f"sdq:crop:{S}", "--family", f"sdq:gradient:{S}", "--target-bpp", str(target), "--allow-larger",
                    "--strip-metadata", "--check", "0"]  # fmt: skip
            r = subprocess.run(argv, capture_output=True, text=True)
            minutes = (time.monotonic() - t) / 60
            lam = next((ln.split("= ")[1].split(" ")[0] for ln in r.stderr.splitlines() if "gives" in ln), "?")
            bits = 8 * sum(p.stat().st_size for p in dst.iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))
            bpp = bits / pixels
            off = 100 * (bpp / target - 1)
            print(f"| {target:g} | {lam} | {bpp:.4f} | {off:+.2f}% | {r.returncode} | {minutes:.1f} |", flush=True)
            if r.returncode not in (0, 1):
                print(r.stderr[-2000:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
