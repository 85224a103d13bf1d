"""Throughput of `dnnjpeg compress` with each way of choosing an image's tables (wall time, CLI end to end).

Copies the first N files of a folder to a scratch tree, then runs `dnnjpeg compress` once per
chooser into a fresh destination and reports images per second, start-up (model loads) included
and, separately, without it (the same command on 8 files, subtracted).

    .venv/bin/python benchmarks/bench_choosers.py ../shared/data/imagenet-sample --n 200
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dnnjpeg.presets import load_preset

FAMILY = "preset:efficientnet-lite0-420-original-sweep"
CHOOSERS = {
    "one table (--tables, the lite0 original preset)": ["--tables", "{TABLES}"],
    "by rate (--choose rate)": ["--family", FAMILY, "--choose", "rate"],
    "QNet (--choose qnet:preset:efficientnet-lite0-qnet)": ["--choose", "qnet:preset:efficientnet-lite0-qnet"],
    "lite0 in the loop, every member": ["--family", FAMILY, "--choose", "network:efficientnet-lite0"],
    "lite0 in the loop, --choose climb": [
        "--family", FAMILY, "--choose", "climb:efficientnet-lite0",
    ],
    "lite0@160 in the loop, --choose climb": [
        "--family", FAMILY, "--choose", "climb:efficientnet-lite0@160",
    ],
}  # fmt: skip


def _run(src: Path, args: list[str]) -> float:
    dst = Path(tempfile.mkdtemp(prefix="bench-choosers-")) / "out"
    cmd = [str(Path(sys.executable).with_name("dnnjpeg")), "compress", str(src), str(dst), *args]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    shutil.rmtree(dst.parent, ignore_errors=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    files = sorted(p for p in Path(a.data).iterdir() if p.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "n", Path(tmp) / "small"
        big.mkdir()
        small.mkdir()
        for p in files[: a.n]:
            shutil.copyfile(p, big / p.name)
        for p in files[:8]:
            shutil.copyfile(p, small / p.name)
        tables = Path(tmp) / "tables.json"
        load_preset("efficientnet-lite0-420-original").save(tables)
        print(f"| chooser | wall s ({a.n} files) | images/s | images/s without start-up |")
        print("|---|---:|---:|---:|")
        for name, args in CHOOSERS.items():
            args = [str(tables) if x == "{TABLES}" else x for x in args]
            t_small, t_big = _run(small, args), _run(big, args)
            steady = (a.n - 8) / max(t_big - t_small, 1e-9)
            print(f"| {name} | {t_big:.1f} | {a.n / t_big:.1f} | {steady:.1f} |", flush=True)


if __name__ == "__main__":
    main()
