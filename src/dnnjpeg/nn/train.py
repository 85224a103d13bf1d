"""Train a small classifier on an ImageFolder tree, with or without a JPEG-DL layer in front.

Made for CPU-sized experiments (CIFAR-10's 32×32 images): the whole tree is
decoded into memory once, augmentation (random crop with 4-pixel reflection
padding, horizontal flip) runs on batches, the network is a small ResNet.  The
run with the layer and the run without share the seed, the data order, the
augmentation draws and the network's initial weights, so the difference between
them is the layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dnnjpeg.nn.layer import JPEGLayer

__all__ = ["SmallResNet", "TrainConfig", "Network", "pixel_network", "register_input_kind", "load_image_folder",
           "train_classifier", "summarize_runs"]  # fmt: skip


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x):
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.short(x))


def resnet_stages(width: int, blocks: int) -> nn.Sequential:
    """Three stages of ``blocks`` basic blocks, widths w, 2w, 4w, the last two starting at stride 2
    (from ``width`` channels in to 4·``width`` out)."""
    layers, cin = [], width
    for i, w in enumerate((width, 2 * width, 4 * width)):
        for j in range(blocks):
            layers.append(_Block(cin, w, 2 if (j == 0 and i > 0) else 1))
            cin = w
    return nn.Sequential(*layers)


class SmallResNet(nn.Module):
    """CIFAR-style ResNet (3 stages of ``blocks`` basic blocks, widths w, 2w, 4w) on [0, 1] RGB
    input (B, 3, H, W), normalized inside with ``mean``/``std``; → (B, classes) logits."""

    def __init__(
        self, classes: int = 10, width: int = 16, blocks: int = 1, mean=(0.491, 0.482, 0.447), std=(0.247, 0.243, 0.262)
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.layers = resnet_stages(width, blocks)
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x):
        x = self.layers(self.stem((x - self.mean) / self.std))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def load_image_folder(
    root: str | Path, limit_per_class: int | None = None, on_error=None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode an ImageFolder tree (``root/<class>/<image>``) of equal-size images into memory.

    Returns uint8 (N, H, W, 3), int64 labels (N,), class names. Unreadable files and images of
    another size are reported (see :func:`read_folder`) and the rest are read."""
    from dnnjpeg.codec import load_image

    # strict: regular files only, a libjpeg warning is an error
    return read_folder(root, lambda p: load_image(p, "RGB"), "image", limit_per_class, on_error)


def read_folder(root: str | Path, read, what: str, limit_per_class: int | None = None, on_error=None):
    """Every image file of an ImageFolder tree through ``read(path) → array`` (all of one shape), with
    labels from the sorted class folders: (stacked arrays, int64 labels, class names).

    Content decides what is an image (:func:`dnnjpeg.data.find_images`); FIFOs and other entries that
    cannot be opened are reported, not skipped silently. Every bad file — unreadable, or of another
    shape than the first — goes to ``on_error(path, message)`` and the rest are read; without
    ``on_error`` one ``ValueError`` names them all at the end.
    """
    from dnnjpeg._fs import describe_error, display, not_a_folder
    from dnnjpeg.data import find_images

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{display(root)}: {not_a_folder(root)}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.is_symlink())
    if not classes:
        raise ValueError(f"{display(root)}: no class folders (expected root/<class>/<image>)")
    xs, labels, shape, bad = [], [], None, []
    for k, c in enumerate(classes):
        files, problems = find_images(root / c)
        bad.extend((p, f"not read: {why}") for p, why in problems)
        for p in files[:limit_per_class]:
            try:
                a = read(p)
            except Exception as e:  # noqa: BLE001 — any reader failure is reported with its file
                bad.append((p, f"cannot read {what} ({describe_error(e)})"))
                continue
            if shape is None:
                shape = a.shape
            elif a.shape != shape:
                bad.append((p, f"shape {a.shape} differs from the first file's {shape}"))
                continue
            xs.append(a)
            labels.append(k)
    if on_error is not None:
        for p, msg in bad:
            on_error(p, msg)
    elif bad:
        listed = "; ".join(f"{display(p)}: {m}" for p, m in bad[:5])
        raise ValueError(f"{len(bad)} file(s) not read in {display(root)}: {listed}" + (" …" if len(bad) > 5 else ""))
    if not xs:
        raise ValueError(f"{display(root)}: no readable {what} files")
    return np.stack(xs), np.asarray(labels, np.int64), classes


@dataclass
class TrainConfig:
    """Schedule of one run. SGD (momentum 0.9, Nesterov, weight decay) with a cosine learning
    rate for the network; Adam at ``layer_lr`` for the JPEG layer's steps."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    width: int = 16
    blocks: int = 1
    seed: int = 0
    jpeg_layer: bool = False
    layer_lr: float = 0.003
    layer_init: str = "mean_abs"  # mean_abs | standard
    layer_quality: int = 50  # IJG quality of the initial mean step (and of "standard")
    layer_subsampling: str = "4:4:4"
    #: "pixels" (uint8 images, :class:`SmallResNet`) or "dct" (coefficient planes (N, 192, h, w) from
    #: :func:`dnnjpeg.dct.nets.load_dct_folder`, :class:`dnnjpeg.dct.nets.FrequencyResNet`)
    input: str = "pixels"
    dct_width: int = 64
    #: with "dct": keep the first N luma and N/4 Cb and Cr frequencies in zig-zag order (None: all 192)
    frequencies: int | None = None


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b, _, h, w = x.shape
    p = F.pad(x, (4, 4, 4, 4), mode="reflect")
    oy = torch.randint(0, 9, (b,), generator=gen)
    ox = torch.randint(0, 9, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    out = torch.stack([p[i, :, oy[i] : oy[i] + h, ox[i] : ox[i] + w] for i in range(b)])
    out[flip] = out[flip].flip(-1)
    return out


def _accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i : i + batch])
            xb = xb if xb.dtype == torch.float32 else xb.permute(0, 3, 1, 2).float() / 255.0  # planes or pixels
            correct += int((model(xb).argmax(1).numpy() == y[i : i + batch]).sum())
    return 100.0 * correct / len(x)


@dataclass
class Network:
    """What the training loop trains: the module, how a batch is augmented, how an array becomes its
    input. ``prepare``: stored array (N, ...) → tensor; ``augment(batch, generator)`` → the module's input."""

    module: nn.Module
    prepare: Callable[[np.ndarray], torch.Tensor]
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def pixel_network(classes: int, cfg: TrainConfig) -> Network:
    """:class:`SmallResNet` on uint8 images (N, H, W, 3): random crops and flips, scaled to [0, 1]."""
    return Network(
        SmallResNet(classes, cfg.width, cfg.blocks),  # same init with and without the layer: seeded first
        lambda a: torch.from_numpy(a).permute(0, 3, 1, 2),
        lambda xb, gen: _augment(xb.float() / 255.0, gen),
    )


#: ``TrainConfig.input`` kinds: builders (classes, cfg) → :class:`Network`; kinds defined above this
#: module (the frequency networks of :mod:`dnnjpeg.dct.nets`) register themselves when imported
INPUT_KIND_MODULES: dict[str, str] = {"dct": "dnnjpeg.dct.nets"}
_INPUT_KINDS: dict[str, Callable[[int, TrainConfig], Network]] = {"pixels": pixel_network}


def register_input_kind(kind: str, build: Callable[[int, TrainConfig], Network]) -> None:
    """Let ``TrainConfig(input=KIND)`` train the network ``build(classes, cfg)`` returns."""
    _INPUT_KINDS[kind] = build


def _builder(kind: str) -> Callable[[int, TrainConfig], Network]:
    if kind not in _INPUT_KINDS and kind in INPUT_KIND_MODULES:
        import importlib

        importlib.import_module(INPUT_KIND_MODULES[kind])
    if kind not in _INPUT_KINDS:
        raise ValueError(
            f"input must be one of {', '.join(sorted({*_INPUT_KINDS, *INPUT_KIND_MODULES}))}, got {kind!r}"
        )
    return _INPUT_KINDS[kind]


def _check(cfg: TrainConfig, n: int) -> None:
    if cfg.input != "pixels" and cfg.jpeg_layer:
        raise ValueError(f"input must be pixels for the JPEG layer, got {cfg.input!r}")
    if cfg.epochs < 1 or cfg.batch_size < 1 or n < cfg.batch_size:
        raise ValueError(
            f"{n} training images, {cfg.epochs} epochs of batches of {cfg.batch_size}: no training step "
            "(give epochs ≥ 1 and a batch size no larger than the training set)"
        )
    if cfg.frequencies is not None and not 1 <= cfg.frequencies <= 64:
        raise ValueError(f"frequencies must be 1..64, got {cfg.frequencies}")


def _jpeg_layer(cfg: TrainConfig, images: np.ndarray) -> JPEGLayer | None:
    """The trainable JPEG layer, its steps started from the standard table (or scaled to the data)."""
    from dnnjpeg.codec import QuantTables

    if not cfg.jpeg_layer:
        return None
    std = QuantTables.standard(cfg.layer_quality)
    layer = JPEGLayer(std, subsampling=cfg.layer_subsampling)
    if cfg.layer_init == "mean_abs":
        sample = torch.from_numpy(images[:2000]).permute(0, 3, 1, 2).float() / 255.0
        layer.init_from_mean_abs(sample, mean_step=float(std.as_array().mean()))
    elif cfg.layer_init != "standard":
        raise ValueError(f"layer_init must be 'mean_abs' or 'standard', got {cfg.layer_init!r}")
    return layer


def train_classifier(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    cfg: TrainConfig,
    progress: Callable[[int, int, dict], None] | None = None,
    keep_model: bool = False,
    network: Callable[[int, TrainConfig], Network] | None = None,
) -> dict:
    """Train the network of ``cfg.input`` (:class:`SmallResNet` on pixels, with a :class:`JPEGLayer` in
    front when ``cfg.jpeg_layer``; "dct": :class:`dnnjpeg.dct.nets.FrequencyResNet` on coefficient
    planes), or the one ``network(classes, cfg)`` builds.

    Args:
        train, test: (uint8 images (N, H, W, 3), int64 labels (N,)); with ``cfg.input == "dct"``
            (float32 planes (N, 192, h, w), labels).
        progress: called after each epoch with (epoch, epochs, record).
    Returns:
        {"test_top1": % after the last epoch, "history": per-epoch records, "tables": learned
        steps as a tables dict (with the layer), "wall_seconds", "config"}; with ``keep_model`` also
        "model": the trained network in eval mode.
    """
    build = network or _builder(cfg.input)
    _check(cfg, len(train[0]))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    spec = build(int(max(train[1].max(), test[1].max())) + 1, cfg)
    layer = _jpeg_layer(cfg, train[0])
    model = nn.Sequential(layer, spec.module) if layer is not None else spec.module
    n = len(train[0])
    opt = torch.optim.SGD(spec.module.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)  # fmt: skip
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * (n // cfg.batch_size), pct_start=0.15
    )
    opts = [opt] + ([torch.optim.Adam(layer.param_groups(cfg.layer_lr))] if layer is not None else [])
    xs, ys = spec.prepare(train[0]), torch.from_numpy(train[1])
    history, t0 = [], time.perf_counter()
    for ep in range(cfg.epochs):
        loss = _epoch(model, spec, xs, ys, cfg.batch_size, gen, opts, sched)
        rec = {"epoch": ep + 1, "train_loss": loss, "test_top1": _accuracy(model, *test),
               "seconds": time.perf_counter() - t0}  # fmt: skip
        if layer is not None:
            s = layer.steps().detach()
            rec["mean_step_luma"], rec["mean_step_chroma"] = float(s[0].mean()), float(s[1].mean())
        history.append(rec)
        if progress:
            progress(ep + 1, cfg.epochs, rec)
    out = {"test_top1": history[-1]["test_top1"], "history": history, "wall_seconds": time.perf_counter() - t0,
           "config": dict(cfg.__dict__)}  # fmt: skip
    if layer is not None:
        out["tables"] = layer.to_quant_tables().to_dict()
    if keep_model:
        out["model"] = model.eval()
    return out


def _epoch(model, spec: Network, xs, ys, batch_size: int, gen, opts, sched) -> float:
    """One pass over a fresh permutation; the mean training loss."""
    model.train()
    n = len(xs)
    perm = torch.randperm(n, generator=gen)
    tot, cnt = 0.0, 0
    for i in range(n // batch_size):
        idx = perm[i * batch_size : (i + 1) * batch_size]
        loss = F.cross_entropy(model(spec.augment(xs[idx], gen)), ys[idx])
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o in opts:
            o.step()
        sched.step()
        tot += float(loss.detach()) * len(idx)
        cnt += len(idx)
    return tot / cnt


def summarize_runs(runs: list[dict]) -> dict:
    """Mean test top-1 per variant ("without_layer", "with_layer", "dct") and, for seeds run two
    ways, the paired difference with a 95% t-interval over seeds: "difference" (with − without the
    layer) and "dct_difference" (frequency network − pixel network without the layer)."""
    from scipy import stats

    def variant(c: dict) -> str:
        return "dct" if c.get("input", "pixels") == "dct" else "with_layer" if c["jpeg_layer"] else "without_layer"

    by: dict[str, dict] = {}
    for r in runs:
        by.setdefault(variant(r["config"]), {})[r["config"]["seed"]] = r["test_top1"]
    out: dict = {k: {"mean": float(np.mean(list(v.values()))), "per_seed": v} for k, v in by.items()}
    for name, a, b in (("difference", "with_layer", "without_layer"), ("dct_difference", "dct", "without_layer")):
        if a not in by or b not in by:
            continue
        seeds = sorted(set(by[a]) & set(by[b]))
        d = np.array([by[a][s] - by[b][s] for s in seeds])
        if not len(d):
            continue
        half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) >= 2 else float("nan")
        out[name] = {
            "mean": float(d.mean()),
            "ci": [float(d.mean() - half), float(d.mean() + half)],
            "n": int(len(d)),
            "per_seed": dict(zip(seeds, d.tolist())),
        }
    return out
