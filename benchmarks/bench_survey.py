"""Survey speed on a large tree, against reading every file's DCT coefficients.

Builds a synthetic ImageNet-like tree of --files files (default 120,000) by
hard-linking the imagenet-sample JPEGs into 1000 class folders (no extra disk),
warms the page cache, then times:
  * dnnjpeg.survey.survey with 1 process and with all cores (headers only);
  * the reference method: read_coefficients on every file (timed on a subset
    of --ref-files and reported as files/s);
  * the CLI end to end (`dnnjpeg survey --no-umap`), outputs included.

    .venv/bin/python benchmarks/bench_survey.py [--files 120000] [--tree /tmp/dnnjpeg-bench-tree]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dnnjpeg.codec import read_coefficients
from dnnjpeg.survey import survey


def build_tree(src: Path, dst: Path, n: int) -> int:
    files = sorted(p for p in src.iterdir() if p.is_file())
    if dst.exists() and sum(1 for _ in dst.rglob("*.JPEG")) == n:
        return n
    shutil.rmtree(dst, ignore_errors=True)
    for i in range(n):
        f = files[i % len(files)]
        cls = dst / f.name[:9]
        if i < len(files):
            cls.mkdir(parents=True, exist_ok=True)
        os.link(f, cls / f"{f.stem}_{i:07d}.JPEG")
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenet-sample"))
    ap.add_argument("--tree", default=os.path.join(tempfile.gettempdir(), "dnnjpeg-bench-tree"))
    ap.add_argument("--files", type=int, default=120_000)
    ap.add_argument("--ref-files", type=int, default=2000)
    a = ap.parse_args()
    tree = Path(a.tree)
    t0 = time.perf_counter()
    n = build_tree(Path(a.src), tree, a.files)
    print(f"tree: {n:,} files in {tree} (built in {time.perf_counter() - t0:.1f} s)")
    survey([tree], workers=1, chunk=4096)  # warm: page cache, dentries, imports
    res = {}
    for w in (1, os.cpu_count() or 1):
        t0 = time.perf_counter()
        df = survey([tree], workers=w, chunk=4096)
        dt = time.perf_counter() - t0
        assert len(df) == n and df["ok"].all()
        res[w] = n / dt
        print(f"survey, {w} process(es): {n / dt:10,.0f} files/s  ({dt:.2f} s)")
    ref = sorted(tree.rglob("*.JPEG"))[: a.ref_files]
    for f in ref[:50]:
        read_coefficients(f)
    t0 = time.perf_counter()
    for f in ref:
        read_coefficients(f)
    ref_rate = len(ref) / (time.perf_counter() - t0)
    print(f"reference (read_coefficients, 1 process): {ref_rate:10,.0f} files/s  (on {len(ref):,} files)")
    print(
        f"ratio: survey 1 process / reference = {res[1] / ref_rate:,.0f}x; "
        f"scaling {max(res)} processes / 1 = {res[max(res)] / res[1]:.2f}x"
    )
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "dnnjpeg"), "survey", str(tree), "--out", out, "--no-umap"],
            check=True,
            capture_output=True,
        )
        dt = time.perf_counter() - t0
        print(f"CLI end to end (walk, parse, Parquet, summary, plots; no UMAP): {dt:.1f} s = {n / dt:,.0f} files/s")


if __name__ == "__main__":
    main()
