"""How much scan-data corruption does strict decoding catch, and how bad is what it misses?

Each of N JPEGs (default: the first 200 of ../shared/data/imagenet-sample) is damaged in
its entropy-coded data in five ways at a seeded random offset: one byte inverted, 100 bytes
XOR 0x55, 100 bytes zeroed, 2 KiB zeroed, and the file cut at 60%. Each damaged file is read
by Pillow alone (what dnnjpeg did before) and by ``dnnjpeg.codec.load_image`` (libjpeg's
warnings as errors). Reported per kind: the share each rejects, and for the files that
strict reading still accepts, the PSNR of their decode against the intact file's.

    .venv/bin/python benchmarks/bench_corruption.py [DIR] [--n 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from dnnjpeg.codec import JpegError, load_image


def _scan(data: bytes) -> tuple[int, int]:
    """[start, end) of the entropy-coded data after the first SOS (marker segments walked,
    so that bytes inside an APP segment are never taken for a marker)."""
    pos = 2
    while data[pos + 1] != 0xDA:
        pos += 2 + ((data[pos + 2] << 8) | data[pos + 3])
    return pos + 2 + ((data[pos + 2] << 8) | data[pos + 3]), len(data) - 2


def damage(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """One corrupted copy of ``data``: the damage lands inside the scan data."""
    a, b = _scan(data)
    n = {"flip 1 byte": 1, "xor 100 bytes": 100, "zero 100 bytes": 100, "zero 2 KiB": 2048}.get(kind, 0)
    if kind == "cut at 60%":
        return data[: int(0.6 * len(data))]
    i = int(rng.integers(a, max(a + 1, b - n)))
    d = bytearray(data)
    if kind == "flip 1 byte":
        d[i] ^= 0xFF
    elif kind == "xor 100 bytes":
        for k in range(i, min(b, i + n)):
            d[k] ^= 0x55
    else:
        d[i : min(b, i + n)] = bytes(min(b, i + n) - i)
    return bytes(d)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/imagenet-sample"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    files = sorted(Path(a.dir).iterdir())[: a.n]
    kinds = ["flip 1 byte", "xor 100 bytes", "zero 100 bytes", "zero 2 KiB", "cut at 60%"]
    print(f"{len(files)} files from {a.dir}, seed {a.seed}")
    print(
        f"{'damage':<16} {'Pillow rejects':>15} {'strict rejects':>15}  accepted by strict: PSNR (dB) median / min, "
        "share under 25 dB of all damaged files"
    )
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.jpg"
        for kind in kinds:
            pil_bad = strict_bad = 0
            psnrs = []
            for f in files:
                data = f.read_bytes()
                ref = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                bad = damage(data, kind, rng)
                try:
                    with Image.open(io.BytesIO(bad)) as im:
                        im.load()
                except Exception:  # noqa: BLE001 — any refusal counts
                    pil_bad += 1
                p.write_bytes(bad)
                try:
                    got = load_image(p, "RGB")
                except (JpegError, OSError):
                    strict_bad += 1
                    continue
                psnrs.append(_psnr(got, ref) if got.shape == ref.shape else 0.0)
            n = len(files)
            ps = np.array(psnrs)
            fin = ps[np.isfinite(ps)]
            med = f"{np.median(fin):5.1f} / {fin.min():5.1f}" if len(fin) else "    —"
            print(
                f"{kind:<16} {100 * pil_bad / n:14.1f}% {100 * strict_bad / n:14.1f}%  {med}, "
                f"{100 * np.sum(ps < 25) / n:.1f}%"
            )


if __name__ == "__main__":
    main()
