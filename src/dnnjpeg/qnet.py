"""A task-aware quantization network (first form): choose each image's tables without the classifier.

The per-image choice with the classifier in the loop (:mod:`dnnjpeg.select`) needs K + 1
forward passes of the network per image. Here a small network sees only what is cheap at
compression time — the image as a 64×64 thumbnail, its size, and every family member's file
size (the K encodes the choice makes anyway) — and predicts each member's KL(pristine output ‖
output on the decoded member). The same Lagrangian rule (:func:`dnnjpeg.evaluate.selection.choose`)
then picks the member: least predicted KL + λ·KiB.

Training needs no labels: the targets are the classifier's own KL on member encodes of
augmented images (random resized crops, flips, and a re-encode at a random quality, so that
a few hundred design images give thousands of distinct samples). It is judged by what it
decides — the regret of its choice against the in-the-loop choice — not only by its error.

Why by hand: no library predicts a classifier's sensitivity to a JPEG table per image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnnjpeg.codec import QuantTables, decode, encode
from dnnjpeg.families import TableFamily

__all__ = [
    "QNetData",
    "augment",
    "make_samples",
    "thumbnail",
    "features",
    "QNet",
    "train_qnet",
    "save_qnet",
    "load_qnet",
]

THUMB = 64
#: KL below this (nats) is "no change": the log target would otherwise chase float noise.
KL_FLOOR = 1e-5


def thumbnail(image: np.ndarray, size: int = THUMB) -> np.ndarray:
    """uint8 (H, W, 3) or (H, W) → uint8 (size, size, 3), bilinear (aspect not kept: the size is a feature)."""
    from PIL import Image

    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR))


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new stored image from ``image`` (uint8 (H, W, 3)): a random crop of 30–100% of the area
    (aspect 3:4…4:3), scaled by 0.6–1, maybe flipped, re-encoded by the IJG ladder at quality 60–98
    and decoded — so sizes, content and the source's own JPEG history all vary."""
    from PIL import Image

    h, w = image.shape[:2]
    area = rng.uniform(0.3, 1.0) * h * w
    ar = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    ch, cw = max(8, min(h, round(math.sqrt(area / ar)))), max(8, min(w, round(math.sqrt(area * ar))))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = image[y : y + ch, x : x + cw]
    s = rng.uniform(0.6, 1.0)
    im = Image.fromarray(np.ascontiguousarray(crop)).resize(
        (max(8, round(cw * s)), max(8, round(ch * s))), Image.BILINEAR
    )
    a = np.asarray(im)
    if rng.random() < 0.5:
        a = a[:, ::-1]
    q = int(rng.integers(60, 99))
    return decode(encode(np.ascontiguousarray(a), QuantTables.standard(q), "4:2:0", optimize=True))


def features(bits: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Scalar features, float32 (N, 2K + 1): log bpp of each member, log bits of each member over the
    finest member's (how fast the file shrinks along the family), and log megapixels."""
    bits = np.asarray(bits, np.float64).reshape(len(pixels), -1)
    px = np.asarray(pixels, np.float64)[:, None]
    lb = np.log(bits / px)
    rel = np.log(bits / bits[:, -1:])
    return np.concatenate([lb, rel, np.log(px / 1e6)], 1).astype(np.float32)


@dataclass
class QNetData:
    """Training samples: ``thumbs`` uint8 (N, 64, 64, 3), ``bits`` (N, K) member file sizes,
    ``pixels`` (N,), ``kl`` (N, K) the classifier's KL in nats."""

    thumbs: np.ndarray
    bits: np.ndarray
    pixels: np.ndarray
    kl: np.ndarray

    def __len__(self) -> int:
        return len(self.thumbs)

    def split(self, n_first: int) -> tuple[QNetData, QNetData]:
        """The first ``n_first`` samples and the rest."""
        arrays = (self.thumbs, self.bits, self.pixels, self.kl)
        return QNetData(*(x[:n_first] for x in arrays)), QNetData(*(x[n_first:] for x in arrays))


def make_samples(
    images: Iterable[np.ndarray],
    family: TableFamily,
    model,
    augmentations: int = 4,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> QNetData:
    """Targets from the classifier itself: for every image and each of ``augmentations`` augmented
    copies (0: the image as given), every member's file size and KL (K encodes, K + 1 passes).

    Args:
        images: uint8 (H, W, 3) stored images (the design split: never the eval split).
        family: the members to choose among (JPEG of the stored image).
        model: the classifier whose KL is predicted (:class:`dnnjpeg.models.Model`).
    """
    from dnnjpeg.select import select_encode

    rng = np.random.default_rng(seed)
    thumbs, bits, pixels, kls = [], [], [], []
    opt = family.points[0].optimize
    for img in images:
        copies = [img] if augmentations == 0 else [augment(img, rng) for _ in range(augmentations)]
        for a in copies:
            sel = select_encode(a, family.members, model, 0.0, family.subsamplings, opt)
            thumbs.append(thumbnail(a))
            bits.append(sel.bits)
            pixels.append(a.shape[0] * a.shape[1])
            kls.append(sel.kl)
            if progress:
                progress(1)
    return QNetData(np.stack(thumbs), np.array(bits, np.int64), np.array(pixels, np.int64), np.array(kls))


def _torch_net(k: int, n_feat: int):
    import torch
    from torch import nn

    class Net(nn.Module):
        """Thumbnail CNN (3 → 16 → 32 → 64 channels, stride 2, pooled) + scalar features → K log KL."""

        def __init__(self) -> None:
            super().__init__()
            layers, c = [], 3
            for w in (16, 32, 64):
                layers += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c = w
            self.conv = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Sequential(nn.Linear(64 + n_feat, 128), nn.ReLU(inplace=True), nn.Linear(128, k))
            self.register_buffer("f_mean", torch.zeros(n_feat))
            self.register_buffer("f_std", torch.ones(n_feat))

        def forward(self, thumbs, feats):
            x = thumbs.permute(0, 3, 1, 2).float().div(255.0).sub(0.5).div(0.25)
            f = (feats - self.f_mean) / self.f_std
            return self.head(torch.cat([self.conv(x), f], 1))

    return Net()


class QNet:
    """A trained chooser network for one family and one classifier.

    ``predict_kl(thumbs, bits, pixels)`` → (N, K) predicted KL in nats.
    """

    def __init__(self, net, family: TableFamily, model_name: str, history: list[dict] | None = None) -> None:
        self.net = net.eval()
        self.family = family
        self.model_name = model_name
        self.history = history or []

    def predict_kl(self, thumbs: np.ndarray, bits: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.net(torch.from_numpy(np.array(thumbs)), torch.from_numpy(features(bits, pixels)))
        return np.exp(out.double().numpy())


def _log_kl(kl: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(kl, np.float64), KL_FLOOR)).astype(np.float32)


def train_qnet(
    data: QNetData,
    family: TableFamily,
    model_name: str,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> QNet:
    """Fit the chooser network to log KL (mean squared error), Adam with a cosine rate, flips of the
    thumbnail as augmentation; deterministic under ``seed`` (single-threaded CPU math)."""
    import torch

    if data.kl.shape[1] != len(family):
        raise ValueError(f"the samples hold {data.kl.shape[1]} members, the family {len(family)}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    feats = torch.from_numpy(features(data.bits, data.pixels))
    net = _torch_net(len(family), feats.shape[1])
    net.f_mean.copy_(feats.mean(0))
    net.f_std.copy_(feats.std(0).clamp_min(1e-3))
    thumbs = torch.from_numpy(data.thumbs)
    target = torch.from_numpy(_log_kl(data.kl))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * max(1, math.ceil(len(data) / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history = []
    net.train()
    for e in range(epochs):
        perm = torch.randperm(len(data), generator=g)
        total = 0.0
        for i in range(0, len(data), batch_size):
            idx = perm[i : i + batch_size]
            t = thumbs[idx]
            flip = torch.rand(len(idx), generator=g) < 0.5
            t = torch.where(flip[:, None, None, None], t.flip(2), t)
            loss = torch.nn.functional.mse_loss(net(t, feats[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        history.append({"epoch": e + 1, "loss": total / len(data)})
        if progress:
            progress(e + 1, total / len(data))
    return QNet(net, family, model_name, history)


def save_qnet(q: QNet, path: str | Path) -> Path:
    """Weights with the family's tables and the classifier's name (atomic)."""
    import io

    import torch

    from dnnjpeg._io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(
        {
            "format": "dnnjpeg.qnet/1",
            "state": q.net.state_dict(),
            "family": [t.to_dict() for t in q.family.members],
            "subsamplings": list(q.family.subsamplings),
            "family_name": q.family.name,
            "model": q.model_name,
            "history": q.history,
        },
        buf,
    )
    return atomic_write_bytes(Path(path), buf.getvalue())


def load_qnet(path: str | Path, family: TableFamily | None = None, model_name: str | None = None) -> QNet:
    """Read a QNet file; with ``family`` / ``model_name`` check it was trained for them.

    Raises:
        ValueError: not a QNet file, or trained for other tables or another classifier (named).
    """
    import io

    import torch

    from dnnjpeg._fs import display, read_regular

    try:
        doc = torch.load(io.BytesIO(read_regular(path)), weights_only=True)
    except Exception as e:  # noqa: BLE001 — any unreadable file is one clear error
        raise ValueError(f"{display(path)}: not a QNet file ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict) or doc.get("format") != "dnnjpeg.qnet/1":
        raise ValueError(
            f"{display(path)}: not a QNet file (format {doc.get('format') if isinstance(doc, dict) else '?'})"
        )
    from dnnjpeg.families import CodecSpec

    members = [QuantTables.from_dict(t) for t in doc["family"]]
    points = tuple(CodecSpec(t, s, True, tag=f"#{i}") for i, (t, s) in enumerate(zip(members, doc["subsamplings"])))
    fam = TableFamily(doc["family_name"], points, "tables")
    if family is not None and (family.members != fam.members or family.subsamplings != fam.subsamplings):
        raise ValueError(f"{display(path)}: trained for the family {doc['family_name']!r}, not for {family.name!r}")
    if model_name is not None and model_name != doc["model"]:
        raise ValueError(f"{display(path)}: trained to predict {doc['model']}, not {model_name}")
    net = _torch_net(len(members), 2 * len(members) + 1)
    net.load_state_dict(doc["state"])
    return QNet(net, fam, doc["model"], doc.get("history"))
