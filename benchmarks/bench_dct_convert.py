"""Exact DCT-domain conversion (dnnjpeg.dct.convert): accuracy against the number of frequencies φ
the ReLU approximations use (ASM and APX), on CIFAR-10 (ResNet-8 of ``dnnjpeg train``) and MNIST.

CIFAR-10: the pixel ResNet-8 is trained on the decoded training files (q75 4:2:0 JPEG); the first
``--test`` test files are read twice, decoded (the pixel model's input) and as coefficient planes
(the converted model's). MNIST: the digits padded to 32×32 and stored as gray quality-90 JPEG in
memory; a small CNN trained on the decoded digits. For each: top-1 of the pixel model on the
decoded files, on the converted model's reference decode (no rounding or clamping, replicated
chroma), of the converted model with exact ReLU (and its largest logit difference from the pixel
model on the reference decode), and with ASM and APX at each φ.

    .venv/bin/python benchmarks/bench_dct_convert.py --cifar ../shared/data/cifar10 --mnist ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dnnjpeg._runtime import tune_malloc
from dnnjpeg.codec import decode, encode
from dnnjpeg.codec.tables import QuantTables
from dnnjpeg.dct.convert import convert, reference_pixels, set_relu
from dnnjpeg.dct.planes import load_planes, planes_of
from dnnjpeg.dct.read import decode_coefficients


def _top1(fn, xs, ys, batch=100) -> float:
    correct = 0
    with torch.no_grad():
        for i in range(0, len(ys), batch):
            correct += int((fn(*(x[i : i + batch] for x in xs)).argmax(1).numpy() == ys[i : i + batch]).sum())
    return 100.0 * correct / len(ys)


def _table(name, pixel, y, cbcr, labels, decoded, layout, phis, body=None, mean=None, std=None) -> list[dict]:
    """``pixel``: the model on [0, 1] RGB; ``body`` (default ``pixel``): what is converted, with
    its input normalization ``mean``/``std`` when it does not normalize itself."""
    rows = []
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    ref = reference_pixels(t(y).double(), t(cbcr).double(), layout).float() / 255.0
    rows.append({"set": name, "model": "pixel, decoded files", "top1": _top1(pixel, [t(decoded)], labels)})
    rows.append({"set": name, "model": "pixel, reference decode", "top1": _top1(pixel, [ref], labels)})
    conv = convert(body if body is not None else pixel, "exact", 15, layout, mean=mean, std=std)
    for relu, ps in (("exact", [15]), ("asm", phis), ("apx", phis)):
        for phi in ps:
            set_relu(conv, relu, phi)
            t0 = time.perf_counter()
            acc = _top1(conv, [t(y), t(cbcr)], labels)
            row = {"set": name, "model": f"converted, {relu} ReLU", "phi": phi, "top1": acc,
                   "seconds": time.perf_counter() - t0}  # fmt: skip
            if relu == "exact":
                with torch.no_grad():
                    n = min(200, len(labels))
                    row["max_logit_diff"] = float((conv(t(y[:n]), t(cbcr[:n])) - pixel(ref[:n])).abs().max())
            rows.append(row)
            print(row, flush=True)
    return rows


def cifar(root: Path, epochs: int, n_test: int, phis, seed: int) -> list[dict]:
    from dnnjpeg.nn.train import TrainConfig, load_image_folder, train_classifier

    train = load_image_folder(root / "train")
    classes = sorted(d.name for d in (root / "test").iterdir() if d.is_dir())
    files = [(p, k) for k, c in enumerate(classes) for p in sorted((root / "test" / c).iterdir())]
    rng = np.random.default_rng(seed)
    pick = [files[i] for i in sorted(rng.choice(len(files), n_test, replace=False))]
    test_px = np.stack([decode(p.read_bytes()) for p, _ in pick])
    labels = np.array([k for _, k in pick])
    t0 = time.perf_counter()
    res = train_classifier(train, (test_px, labels), TrainConfig(epochs=epochs, seed=seed), keep_model=True)
    print(
        f"CIFAR ResNet-8: {res['test_top1']:.2f}% after {epochs} epochs, {time.perf_counter() - t0:.0f} s", flush=True
    )
    planes = [load_planes(p, "4:2:0") for p, _ in pick]
    y, cbcr = np.stack([q.y for q in planes]), np.stack([q.cbcr for q in planes])
    decoded = test_px.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return _table("CIFAR-10", res["model"], y, cbcr, labels, decoded, "4:2:0", phis)


def _idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist(root: Path, epochs: int, n_test: int, phis, seed: int) -> list[dict]:
    q = QuantTables.standard(90)

    def jpegs(imgs):
        padded = np.pad(imgs, ((0, 0), (2, 2), (2, 2)))
        return [encode(x, q) for x in padded]

    xtr, ytr = _idx(root / "train-images.idx3-ubyte.gz"), _idx(root / "train-labels.idx1-ubyte.gz").astype(np.int64)
    xte, yte = _idx(root / "t10k-images.idx3-ubyte.gz")[:n_test], _idx(root / "t10k-labels.idx1-ubyte.gz")[:n_test]

    def rgb(files):  # decoded as the pixel model sees them: (N, 3, 32, 32) in [0, 1]
        a = np.stack([decode(d) for d in files]).astype(np.float32) / 255.0
        return a.transpose(0, 3, 1, 2) if a.ndim == 4 else a[:, None].repeat(3, 1)

    tr = rgb(jpegs(xtr))
    te_files = jpegs(xte)
    te = rgb(te_files)
    torch.manual_seed(seed)
    mean, std = (0.5,) * 3, (0.5,) * 3
    net = nn.Sequential(  # no batch norm: its running statistics drift on these padded digits
        nn.Conv2d(3, 32, 3, 1, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 3, 2, 1),
        nn.ReLU(), nn.Conv2d(64, 128, 3, 1, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    xt, yt = torch.from_numpy(tr), torch.from_numpy(ytr)
    norm = _Norm()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt) - 127, 128):
            idx = perm[i : i + 128]
            loss = nn.functional.cross_entropy(net(norm(xt[idx])), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    pixel = nn.Sequential(_Norm(), net).eval()
    planes = [planes_of(decode_coefficients(d), "4:4:4") for d in te_files]
    y, cbcr = np.stack([p.y for p in planes]), np.stack([p.cbcr for p in planes])
    return _table("MNIST", pixel, y, cbcr, yte.astype(np.int64), te, "4:4:4", phis, net, mean, std)


class _Norm(nn.Module):
    def forward(self, x):
        return (x - 0.5) / 0.5


def main() -> None:
    tune_malloc()
    ap = argparse.ArgumentParser()
    ap.add_argument("--cifar", type=Path)
    ap.add_argument("--mnist", type=Path)
    ap.add_argument("--epochs-cifar", type=int, default=6)
    ap.add_argument("--epochs-mnist", type=int, default=3)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--phis", default="1,2,3,4,6,8,10,15")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench-dct-convert.json")
    a = ap.parse_args()
    phis = [int(p) for p in a.phis.split(",")]
    rows = []
    if a.mnist:
        rows += mnist(a.mnist, a.epochs_mnist, a.test, phis, a.seed)
    if a.cifar:
        rows += cifar(a.cifar, a.epochs_cifar, a.test, phis, a.seed)
    Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
