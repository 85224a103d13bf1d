"""Per-image quantization tables from a network (the task-aware quantization network's literal form).

A small network looks at an image (a 64×64 thumbnail of the classifier's input crop) and at the
rate weight λ, and outputs that image's 64 luma + 64 chroma steps. It is trained end to end
through the differentiable codec (:class:`dnnjpeg.nn.DiffJPEG`, straight-through rounding) and the
rate model (:class:`dnnjpeg.nn.RateModel`) with the classifier frozen, on

    KL(classifier on the image ‖ classifier on its JPEG) + λ · estimated bits per pixel,

λ drawn per sample (log-uniform), so one network serves every rate. Its output is rounded to
integer tables and written by the real encoder as an ordinary baseline file.

The log steps are the IJG quality-50 tables, plus a per-entry linear function of log λ (what a
global table sweep can do), plus a per-image correction in a smooth basis (6 numbers per table:
1, u, v, u², v², u·v) predicted from the thumbnail and λ. With ``per_image=False`` the correction
is off: the same network gives a λ-indexed global sweep, the control that shows what per-image
freedom adds. Everything runs at the classifier's input geometry (JPEG of the model-input crop,
``--at input``), where the differentiable codec is exact in its forward pass.

Why by hand: no library trains a JPEG table generator against a classifier.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnnjpeg._checkpoint import write_checkpoint
from dnnjpeg.codec import QuantTables

__all__ = ["TableNet", "train_tablenet", "save_tablenet", "load_tablenet", "LAMBDA_RANGE"]

FORMAT = "dnnjpeg.tablenet/1"
#: λ range (nats of KL per bit per pixel at the model input) drawn in training, log-uniform
LAMBDA_RANGE = (0.003, 3.0)
THUMB = 64


def _smooth_basis() -> np.ndarray:
    """(6, 64): 1, u, v, u², v², u·v on the 8×8 frequency grid, scaled to [0, 1]."""
    v, u = np.meshgrid(np.arange(8) / 7.0, np.arange(8) / 7.0, indexing="ij")
    return np.stack([np.ones_like(u), u, v, u * u, v * v, u * v]).reshape(6, 64).astype(np.float32)


def _module(width: int = 32):
    import torch
    from torch import nn

    class Net(nn.Module):
        """thumbnails (B, 3, 64, 64) in 0..255 and log λ (B,) → log steps (B, 2, 8, 8)."""

        def __init__(self) -> None:
            super().__init__()
            base = np.log(QuantTables.standard(50).as_array().reshape(2, 64).astype(np.float32))
            self.register_buffer("base", torch.from_numpy(base))
            self.register_buffer("phi", torch.from_numpy(_smooth_basis()))
            self.lam = nn.Linear(1, 128)  # the global sweep: each entry's log step linear in log λ
            nn.init.zeros_(self.lam.weight)
            nn.init.zeros_(self.lam.bias)
            layers, c = [], 3
            for w in (16, 32, width):
                layers += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c = w
            self.cnn = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Sequential(nn.Linear(width + 1, 64), nn.ReLU(inplace=True), nn.Linear(64, 12))
            nn.init.zeros_(self.head[-1].weight)  # starts as the global sweep: no per-image change
            nn.init.zeros_(self.head[-1].bias)
            self.per_image = True

        def forward(self, thumbs, log_lam):
            b = len(log_lam)
            z = ((log_lam - _LAM_MID) / _LAM_HALF).reshape(b, 1).to(self.base.dtype)
            out = self.base.reshape(1, 128) + self.lam(z)
            if self.per_image:
                g = self.cnn((thumbs / 255.0 - 0.5) / 0.25)
                out = out + (self.head(torch.cat([g, z], 1)).reshape(b, 2, 6) @ self.phi).reshape(b, 128)
            return out.reshape(b, 2, 8, 8).clamp(0.0, math.log(255.0))

    return Net()


_LAM_MID = 0.5 * (math.log(LAMBDA_RANGE[0]) + math.log(LAMBDA_RANGE[1]))
_LAM_HALF = 0.5 * (math.log(LAMBDA_RANGE[1]) - math.log(LAMBDA_RANGE[0]))


def _thumbs(x):
    """(B, 3, S, S) 0..255 → (B, 3, 64, 64), antialiased."""
    import torch.nn.functional as F

    return F.interpolate(x, size=(THUMB, THUMB), mode="bilinear", antialias=True, align_corners=False)


@dataclass
class TableNet:
    """A trained table generator for one classifier (``model_name``) at its input geometry.

    ``tables(crops, lam)``: uint8 (N, S, S, 3) model-input crops, λ nats/bpp → N :class:`QuantTables`.
    """

    net: object
    model_name: str
    subsampling: str = "4:2:0"
    history: list = field(default_factory=list)

    def log_steps(self, crops: np.ndarray, lam: float | Sequence[float], per_image: bool = True) -> np.ndarray:
        """float32 (N, 2, 8, 8) natural-log steps before rounding."""
        import torch

        x = torch.from_numpy(np.array(crops, np.float32)).permute(0, 3, 1, 2)
        lam = np.broadcast_to(np.asarray(lam, np.float64), (len(x),))
        self.net.eval()
        self.net.per_image = per_image
        try:
            with torch.no_grad():
                return self.net(_thumbs(x), torch.log(torch.from_numpy(lam.copy())).float()).numpy()
        finally:
            self.net.per_image = True

    def tables(self, crops: np.ndarray, lam: float | Sequence[float], per_image: bool = True) -> list[QuantTables]:
        """Each crop's tables: the steps rounded to integers in 1..255 (baseline)."""
        steps = np.clip(np.rint(np.exp(self.log_steps(crops, lam, per_image))), 1, 255).astype(np.int64)
        return [QuantTables(s[0], s[1]) for s in steps]


#: what a table generator's checkpoint holds
CHECKPOINT_KEYS = ("state", "opt", "rng", "history", "recipe")


def tablenet_recipe(crops: np.ndarray, model_name: str, subsampling: str, seed: int, per_image: bool,
                    batch_size: int, lr: float, lam_lr: float) -> str:  # fmt: skip
    """What a resumed run must share with the run that saved the checkpoint (a digest, 16 hex digits):
    the crops' bytes, the classifier and every setting but the number of epochs (a run may go on longer)."""
    import hashlib

    h = hashlib.sha256(np.ascontiguousarray(crops).tobytes())
    h.update(repr((model_name, subsampling, seed, per_image, batch_size, lr, lam_lr)).encode())
    return h.hexdigest()[:16]


def train_tablenet(
    crops: np.ndarray,
    model,
    epochs: int = 6,
    batch_size: int = 16,
    lr: float = 3e-3,
    lam_lr: float = 0.05,
    seed: int = 0,
    subsampling: str = "4:2:0",
    per_image: bool = True,
    progress: Callable[[int, float], None] | None = None,
    checkpoint: str | Path | None = None,
) -> TableNet:
    """Train a table generator through the differentiable codec, the classifier frozen.

    Args:
        crops: uint8 (N, S, S, 3) pristine model-input crops (``model.preprocess.geometry``) of
            the design images; flipped at random while training.
        model: the classifier (:class:`dnnjpeg.models.Model`); its parameters are left as they were.
        epochs: passes over the crops; λ is drawn per sample, log-uniform in :data:`LAMBDA_RANGE`.
        lr / lam_lr: Adam's rate for the per-image network / for the λ → log-steps part.
        per_image: False trains the λ-only part (a global sweep; the control).
        progress: called with (epoch, mean loss) after every epoch.
        checkpoint: a file: the state after every epoch is written there (atomically), and a
            run given the same file starts after the last finished epoch.
    Returns:
        a :class:`TableNet`; ``history`` holds per epoch the mean loss, KL and estimated bpp.
    """
    import torch

    from dnnjpeg.nn import DiffJPEG
    from dnnjpeg.nn.frozen import frozen
    from dnnjpeg.nn.rate import RateModel

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    tn = _module()
    tn.per_image = per_image
    opt = _optimizer(tn, per_image, lr, lam_lr)
    recipe = tablenet_recipe(crops, model.name, subsampling, seed, per_image, batch_size, lr, lam_lr)
    history, start = _resume(checkpoint, recipe, tn, opt, g)
    parts = (DiffJPEG(subsampling, "ste").train(), RateModel.default(subsampling), model.module, model.preprocess)
    x_all = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
    with frozen(model.module):
        for e in range(start, epochs):
            tn.train()
            perm = torch.randperm(len(x_all), generator=g)
            sums = np.zeros(3)
            for i in range(0, len(perm), batch_size):
                idx = perm[i : i + batch_size]
                sums += np.array(_batch_step(x_all[idx].float(), g, tn, parts, opt)) * len(idx)
            m = sums / len(perm)
            history.append({"epoch": e + 1, "loss": float(m[0]), "kl": float(m[1]), "est_bpp": float(m[2])})
            if checkpoint is not None:
                write_checkpoint(checkpoint, {"state": tn.state_dict(), "opt": opt.state_dict(), "rng": g.get_state(),
                                   "history": history, "recipe": recipe})  # fmt: skip
            if progress:
                progress(e + 1, m[0])
    tn.eval()
    return TableNet(tn, model.name, subsampling, history)


def _optimizer(tn, per_image: bool, lr: float, lam_lr: float):
    """Adam: the λ → table part moves log steps directly (as the gradient designer's Adam does, at its
    rate); the per-image part is an ordinary small network at ``lr``."""
    import torch

    groups = [{"params": list(tn.lam.parameters()), "lr": lam_lr}]
    if per_image:
        groups.append({"params": [p for n, p in tn.named_parameters() if not n.startswith("lam.")], "lr": lr})
    return torch.optim.Adam(groups)


def _resume(checkpoint, recipe: str, tn, opt, g) -> tuple[list[dict], int]:
    """(history, first epoch) from a checkpoint of the same recipe, else ([], 0)."""
    from dnnjpeg._checkpoint import resume

    ck = resume(checkpoint, CHECKPOINT_KEYS, recipe, tn, opt, "table generator")
    if ck is None:
        return [], 0
    g.set_state(ck["rng"])
    return list(ck["history"]), len(ck["history"])


def _batch_step(x, g, tn, parts, opt) -> tuple[float, float, float]:
    """One batch (B, 3, S, S) in 0..255: random flips and λ (log-uniform), KL + λ·bpp through the
    differentiable codec, one Adam step; (loss, mean KL, mean estimated bpp)."""
    import torch

    codec, rate, net, pre = parts
    lo, hi = math.log(LAMBDA_RANGE[0]), math.log(LAMBDA_RANGE[1])
    flip = torch.rand(len(x), generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    log_lam = lo + (hi - lo) * torch.rand(len(x), generator=g)
    with torch.no_grad():
        logp0 = torch.log_softmax(net(pre.normalize_tensor(x / 255.0)).float(), 1)
    steps = torch.exp(tn(_thumbs(x), log_lam))
    y, enc = codec(x, steps, return_levels=True)
    logq = torch.log_softmax(net(pre.normalize_tensor(y / 255.0)).float(), 1)
    kl = (logp0.exp() * (logp0 - logq)).sum(1)
    bpp = rate.bpp(enc.continuous())
    loss = (kl + torch.exp(log_lam) * bpp).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach()), float(kl.detach().mean()), float(bpp.detach().mean())


def save_tablenet(t: TableNet, path: str | Path) -> Path:
    """Weights, the classifier's name and the training history (atomic)."""
    import torch

    from dnnjpeg._io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "state": t.net.state_dict(),
            "model": t.model_name,
            "subsampling": t.subsampling,
            "history": t.history,
        },
        buf,
    )
    return atomic_write_bytes(Path(path), buf.getvalue())


def load_tablenet(path: str | Path, model_name: str | None = None) -> TableNet:
    """Read a table generator; with ``model_name`` check it was trained for that classifier.

    Raises:
        ValueError: not a table-generator file, or trained for another classifier (named).
    """
    import torch

    from dnnjpeg._checkpoint import load_tensors
    from dnnjpeg._fs import display, read_regular

    try:
        doc = load_tensors(read_regular(path))
    except OSError as e:
        raise ValueError(f"{display(path)}: not a table-generator file ({e.strerror or e})") from None
    except ValueError as e:
        raise ValueError(f"{display(path)}: not a table-generator file ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{display(path)}: not a table-generator file (expected format {FORMAT!r})")
    if not isinstance(doc.get("model"), str) or not isinstance(doc.get("state"), dict):
        raise ValueError(f"{display(path)}: a broken table-generator file (no classifier name or weights)")
    if model_name is not None and doc["model"] != model_name:
        raise ValueError(f"{display(path)}: trained for {doc['model']}, not {model_name}")
    net = _module()
    try:
        net.load_state_dict(doc["state"])
    except (RuntimeError, TypeError, KeyError) as e:
        raise ValueError(f"{display(path)}: a broken table-generator file ({str(e)[:200]})") from None
    if not all(torch.isfinite(v).all() for v in net.state_dict().values() if v.is_floating_point()):
        raise ValueError(f"{display(path)}: a broken table-generator file (weights that are not finite numbers)")
    return TableNet(net.eval(), str(doc["model"]), str(doc.get("subsampling", "4:2:0")), list(doc.get("history", [])))
