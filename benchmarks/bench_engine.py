"""The Ray engine against the local process pool, and resume after a killed Ray worker or driver.

    .venv/bin/python benchmarks/bench_engine.py --images 1000 [--workers 2]

On ``--images`` imagenet-sample files (read in place; outputs in a scratch folder):

* ``survey`` and ``compress`` (the shipped lite0 table, 4:2:0) with the local pool of
  ``--workers`` processes, then on a local Ray cluster of ``--workers`` CPUs started here
  (its start-up timed apart): wall seconds, and whether Ray's outputs are byte-identical;
* ``compress --engine ray`` with one Ray worker process killed (SIGKILL) mid-run: every
  output must still be there, whole and identical to the pool's;
* the ``dnnjpeg compress --engine ray`` command killed itself (SIGKILL of the driver) mid-run,
  then run again with ``--resume``: the same check, and no temporary file left behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from dnnjpeg._runtime import tune_malloc

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imagenet-sample"
BIN = Path(sys.executable).parent


def _files(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()
            and not p.name.startswith(".")}  # fmt: skip


def _ray_workers() -> list[int]:
    """Pids of Ray worker processes running one of our tasks (their title names the function)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ray::_ray_call"):
                out.append(int(d.name))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    tune_malloc()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import ray

    from dnnjpeg.compress import compress_tree
    from dnnjpeg.engine import LocalEngine, make_engine
    from dnnjpeg.presets import load_preset
    from dnnjpeg.survey import survey

    t = load_preset("efficientnet-lite0-420-original")
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        src.mkdir()
        for f in sorted(SHARED.glob("*.JPEG"))[: args.images]:
            (src / f.name).write_bytes(f.read_bytes())
        n = len(list(src.iterdir()))
        pool = LocalEngine(args.workers)

        t0 = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, object_store_memory=256 << 20)
        eng = make_engine("ray")
        rows.append(("Ray local cluster start", f"{time.perf_counter() - t0:.2f}", "", ""))

        for name, run in (
            ("survey", lambda e: survey([src], workers=args.workers, engine=e)),
            ("compress", lambda e: compress_tree(src, tmp / f"out-{e.name}", t, engine=e)),
        ):
            res = {}
            for e in (pool, eng):
                t0 = time.perf_counter()
                res[e.name] = run(e)
                res[e.name + "_s"] = time.perf_counter() - t0
            same = (_files(tmp / "out-local") == _files(tmp / "out-ray")) if name == "compress" else (
                res["local"].drop(columns=["luma_table", "chroma_table"]).astype(str).equals(
                    res["ray"].drop(columns=["luma_table", "chroma_table"]).astype(str)))  # fmt: skip
            a, b = res["local_s"], res["ray_s"]
            rows.append((f"{name}, {n} files: pool / Ray", f"{a:.2f} / {b:.2f}", f"{b / a:.2f}×", str(same)))

        # a Ray worker killed mid-run
        killed = []

        def killer():
            deadline = time.time() + 60
            while time.time() < deadline and not killed:
                pids = _ray_workers()
                if pids:
                    time.sleep(0.5)
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                time.sleep(0.05)

        th = threading.Thread(target=killer)
        th.start()
        t0 = time.perf_counter()
        rep = compress_tree(src, tmp / "out-killed", t, engine=eng)
        dt = time.perf_counter() - t0
        th.join()
        same = _files(tmp / "out-killed") == _files(tmp / "out-local")
        rows.append((f"compress, Ray worker {killed} SIGKILLed", f"{dt:.2f}", f"{rep.written} written, "
                     f"{len(rep.failures)} failed", str(same)))  # fmt: skip
        ray.shutdown()

        # the driver killed mid-run, then --resume
        out = tmp / "out-driver"
        t.save(tmp / "table.json")
        cmd = [str(BIN / "dnnjpeg"), "compress", str(src), str(out), "--tables", str(tmp / "table.json")]
        cmd += ["--engine", "ray"]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 120 and len(list(out.glob("*.JPEG"))) < n // 3:
            time.sleep(0.1)
        p.send_signal(signal.SIGKILL)
        p.wait()
        before = len(list(out.glob("*.JPEG")))
        time.sleep(2)  # Ray ends the dead driver's job and its tasks
        t0 = time.perf_counter()
        r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
        dt = time.perf_counter() - t0
        parts = [q.name for q in out.rglob("*.part")]
        same = _files(out) == _files(tmp / "out-local")
        rows.append((f"driver SIGKILLed after {before} files, then --resume", f"{dt:.2f}",
                     f"exit {r.returncode}, {len(parts)} temporary files left", str(same)))  # fmt: skip
    print(f"\n{args.images} imagenet-sample files, {args.workers} workers, {os.cpu_count()} cores\n")
    print("| run | wall s | | outputs identical to the pool's |\n|---|---:|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
