"""Pretrained pixel classifiers that read JPEG coefficients: a DCT-domain stem in place of the
network's high-resolution layers, the rest of the network unchanged.

A pixel classifier is cut at its stride-8 stage (:func:`split_model`): for efficientnet-lite0 the
output of block 4, 40 channels at 28×28 for a 224×224 input, which is exactly the block grid of a
224×224 JPEG. :class:`DctStem` maps the file's dequantized coefficients (Y (64, H/8, W/8), Cb+Cr
(128, H/16, W/16), :mod:`dnnjpeg.dct.planes`) to that stage's activations; it is trained by
distillation (:mod:`dnnjpeg.dct.distill`). :class:`DctNet` = stem + the pixel model's tail.

Rules (one per kind of input, stated where they apply):
- 4:2:0 files are read as they are; 4:4:4 chroma is reduced to the 4:2:0 grid by the DCT-domain
  ½ down-scale (:func:`dnnjpeg.dct.planes.downscale`), gray files have zero chroma;
- pixels (a pristine crop, or any caller of :meth:`dnnjpeg.models.Model.logits`) are read through
  their exact, unquantized DCT (:meth:`DctNet.forward`, differentiable), as a 4:2:0 encoder would
  compute it before quantization;
- a file of another size than the model's input is read by :func:`fit_geometry`: down-scaled in the
  DCT domain by ½ or ¼ while its shorter side stays at least the model's input side, then a
  block-grid centre crop of the input's blocks (zeros, i.e. mid-gray, where the image is smaller).
"""

from __future__ import annotations

import copy
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dnnjpeg.models import Model, register_model_kind

__all__ = ["DctStem", "DctNet", "DctModel", "split_model", "fit_geometry", "load_dct_model", "save_stem",
           "stem_for", "assemble", "STEM_FORMAT", "SHIPPED", "SPLITS", "GEOMETRIES"]  # fmt: skip

STEM_FORMAT = "dnnjpeg.dct-stem/2"
#: where each supported classifier is cut: (blocks kept in the pixel head, the stride-8 stage's channels)
SPLITS = {"efficientnet-lite0": (5, 40)}
#: stems that ship with dnnjpeg: ``dct:NAME`` → file in the package
SHIPPED = {"efficientnet-lite0": "dct-efficientnet-lite0.pt"}


class _Inverted(nn.Module):
    """An inverted residual block on the block grid: 1×1 expand, k×k depthwise, 1×1 project, skip."""

    def __init__(self, width: int, expand: int, kernel: int) -> None:
        super().__init__()
        hid = width * expand
        self.body = nn.Sequential(
            nn.Conv2d(width, hid, 1, bias=False), nn.BatchNorm2d(hid), nn.ReLU6(inplace=True),
            nn.Conv2d(hid, hid, kernel, padding=kernel // 2, groups=hid, bias=False), nn.BatchNorm2d(hid),
            nn.ReLU6(inplace=True), nn.Conv2d(hid, width, 1, bias=False), nn.BatchNorm2d(width),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Detail(nn.Module):
    """All coefficients → a correction of the stride-8 features, on the block grid.

    Luma and chroma are joined late: each gets its own learned normalization and 1×1 projection
    (chroma at its own /16 grid, the cheaper side), chroma is then repeated onto the luma grid and
    both go through ``blocks`` inverted residual blocks (a 5×5 depthwise kernel sees 40×40 pixels)
    and a 1×1 projection to ``out_channels`` whose batch-norm scale starts at 0 (the stem starts
    as its coarse path alone).

    Shapes: (B, 64, h, w), (B, 128, ⌈h/2⌉, ⌈w/2⌉) → (B, out_channels, h, w).
    """

    def __init__(self, out_channels: int, width: int, chroma: int, blocks: int, expand: int, kernel: int) -> None:
        super().__init__()
        self.norm_y, self.norm_c = nn.BatchNorm2d(64), nn.BatchNorm2d(128)
        self.proj_y = nn.Conv2d(64, width - chroma, 1, bias=False)
        self.proj_c = nn.Conv2d(128, chroma, 1, bias=False)
        self.join = nn.BatchNorm2d(width)  # linear: the residual blocks add to it
        self.blocks = nn.Sequential(*[_Inverted(width, expand, kernel) for _ in range(blocks)])
        self.out = nn.Sequential(nn.Conv2d(width, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        nn.init.zeros_(self.out[1].weight)

    def forward(self, y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        c = self.proj_c(self.norm_c(cbcr))
        c = c.repeat_interleave(2, -2).repeat_interleave(2, -1)[..., :h, :w]
        return self.out(self.blocks(self.join(torch.cat([self.proj_y(self.norm_y(y)), c], 1))))


def _half_idct() -> torch.Tensor:
    """(16, 64): a block's coefficients (u·8 + v) → its 4×4 pixels (a·4 + b) as libjpeg's ½ scaled
    inverse DCT decodes them (:func:`dnnjpeg.dct.planes.reduced_idct`), before the level shift."""
    from dnnjpeg.dct.planes import reduced_idct

    r = torch.from_numpy(reduced_idct(2)).float()
    return torch.einsum("au,bv->abuv", r, r).reshape(16, 64)


class DctStem(nn.Module):
    """Coefficient planes → the activations of a pixel network's stride-8 stage.

    Two paths, both started from what the pixel network already knows:
    - coarse: the half-size image the coefficients hold (each block → its 4×4 pixels, libjpeg's ½
      scaled decode done as one small matrix per block; chroma repeated)
      through a trainable copy of the pixel network's own head, whose stride-16 output is brought to
      the block grid by a learned 1×1 convolution and depth-to-space (started as nearest up-sampling);
    - detail (:class:`Detail`): all coefficients on the block grid, added (started at zero).
    The head at half size costs a quarter of the pixel head; the distillation teaches the two paths
    to stand for it at full size.

    Shapes: ``forward(y (B, 64, h, w), cbcr (B, 128, ⌈h/2⌉, ⌈w/2⌉))`` → (B, out_channels, h, w).
    """

    def __init__(self, head: nn.Module, out_channels: int, mean, std, width: int = 32, chroma: int = 8,
                 blocks: int = 2, expand: int = 3, kernel: int = 5, coarse: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.config = {"width": width, "chroma": chroma, "blocks": blocks, "expand": expand, "kernel": kernel,
                       "coarse": coarse}  # fmt: skip
        # coarse=False: the detail path alone, trained from scratch (the control BENCHMARKS.md reports)
        self.head = head if coarse else None
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("idct", _half_idct())
        self.up = nn.Conv2d(out_channels, 4 * out_channels, 1)
        with torch.no_grad():  # nearest up-sampling: output channel c·4 + k copies input channel c
            self.up.weight.zero_()
            self.up.bias.zero_()
            self.up.weight[torch.arange(4 * out_channels), torch.arange(4 * out_channels) // 4] = 1.0
        self.detail = Detail(out_channels, width, chroma, blocks, expand, kernel)
        if not coarse:
            nn.init.ones_(self.detail.out[1].weight)

    def half_ycbcr(self, y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
        """YCbCr samples (B, 3, 4h, 4w), 0..255 scale, of the half-size image the planes hold: each
        block's 4×4 pixels as libjpeg's ½ scaled inverse DCT gives them (without its rounding),
        chroma repeated 2×2."""

        def pixels(planes: torch.Tensor, n: int) -> torch.Tensor:
            b, _, h, w = planes.shape
            px = torch.einsum("pk,bnkhw->bnphw", self.idct, planes.reshape(b, n, 64, h, w))
            return F.pixel_shuffle(px.reshape(b, 16 * n, h, w), 4)

        luma = pixels(y, 1) + 128.0
        chroma = (pixels(cbcr, 2) + 128.0).repeat_interleave(2, -2).repeat_interleave(2, -1)
        return torch.cat([luma, chroma[..., : luma.shape[-2], : luma.shape[-1]]], 1)

    def half_image(self, y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
        """The half-size image as the head takes it: normalized RGB (B, 3, 4h, 4w), channels last."""
        from dnnjpeg.nn import functional as J

        rgb = J.ycbcr_to_rgb(self.half_ycbcr(y, cbcr)).clamp(0, 255)
        return ((rgb - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    def forward(self, y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        if cbcr.shape[-2:] != ((h + 1) // 2, (w + 1) // 2):
            raise ValueError(f"chroma grid {tuple(cbcr.shape[-2:])} is not the 4:2:0 grid of luma's {(h, w)}")
        if self.head is None:
            return self.detail(y, cbcr)
        coarse = F.pixel_shuffle(self.up(self.head(self.half_image(y, cbcr))), 2)
        if coarse.shape[-2] < h or coarse.shape[-1] < w:
            coarse = F.pad(coarse, (0, max(0, w - coarse.shape[-1]), 0, max(0, h - coarse.shape[-2])))
        return coarse[..., :h, :w] + self.detail(y, cbcr)


class _Head(nn.Module):
    """A pixel classifier's layers up to its stride-8 stage (its own modules, not copies)."""

    def __init__(self, m: nn.Module, cut: int) -> None:
        super().__init__()
        self.conv_stem, self.bn0, self.act = m._conv_stem, m._bn0, m._swish
        self.blocks = nn.ModuleList(m._blocks[:cut])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn0(self.conv_stem(x)))
        for b in self.blocks:
            x = b(x)
        return x


class _Tail(nn.Module):
    """The rest: stride-8 features → logits, exactly as the whole network continues."""

    def __init__(self, m: nn.Module, cut: int) -> None:
        super().__init__()
        self.m, self.cut = m, cut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.m
        rate = m._global_params.drop_connect_rate if self.training else None
        for i, b in enumerate(m._blocks[self.cut :], self.cut):
            x = b(x, drop_connect_rate=rate * i / len(m._blocks) if rate else None)
        x = m._swish(m._bn1(m._conv_head(x)))
        return m._fc(m._dropout(m._avg_pooling(x).flatten(1)))


def split_model(module: nn.Module, name: str) -> tuple[nn.Module, nn.Module]:
    """(head, tail) of a pixel classifier at its stride-8 stage (:data:`SPLITS`).

    ``head(x)`` (B, 3, S, S) normalized → (B, C, S/8, S/8); ``tail`` maps that to (B, classes)
    logits, exactly as the whole network does (``tail(head(x)) == module(x)``). Both use the
    module's own layers (no copies).
    """
    if name not in SPLITS:
        raise ValueError(f"no DCT stem split is known for {name!r} (known: {', '.join(SPLITS)})")
    cut = SPLITS[name][0]
    return _Head(module, cut), _Tail(module, cut)


class DctNet(nn.Module):
    """Stem + the pixel network's tail: coefficients → logits.

    ``forward_planes(y, cbcr)``: (B, 64, h, w), (B, 128, ⌈h/2⌉, ⌈w/2⌉) dequantized coefficients
    (4:2:0) → (B, classes) logits. ``forward(x)``: a normalized pixel batch (B, 3, H, W), as the
    pixel model takes it → logits, through the exact unquantized DCT of the pixels (differentiable;
    the module's rule for pixels).
    """

    def __init__(self, stem: DctStem, tail: nn.Module, mean, std) -> None:
        super().__init__()
        from dnnjpeg.nn import DiffJPEG

        self.stem, self.tail = stem, tail
        self.codec = DiffJPEG("4:2:0")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward_planes(self, y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
        cl = torch.channels_last  # the depthwise layers run ~1.2× faster so on CPU (2.4× training)
        return self.tail(self.stem(y.contiguous(memory_format=cl), cbcr.contiguous(memory_format=cl)))

    def planes_of_pixels(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized pixels (B, 3, H, W) → unquantized 4:2:0 planes, as a file of them would hold."""
        h, w = x.shape[-2:]
        px = (x.float() * self.std + self.mean) * 255.0
        dy, dc = self.codec.transform(px.contiguous())
        y = dy[:, 0].permute(0, 3, 1, 2)[..., : -(-h // 8), : -(-w // 8)]
        c = dc.permute(0, 1, 4, 2, 3).reshape(dc.shape[0], 128, *dc.shape[2:4])
        return y.contiguous(), c.contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_planes(*self.planes_of_pixels(x))


GEOMETRIES = ("fit", "crop", "stored")


def fit_geometry(y: np.ndarray, cbcr: np.ndarray, size: int, mode: str = "fit") -> tuple[np.ndarray, np.ndarray]:
    """Planes of any size → what the model reads, in the DCT domain, by one of three rules.

    - ``fit`` (default): the largest of the ½ and ¼ down-scales (:func:`dnnjpeg.dct.planes.downscale`,
      libjpeg's reduced decode) that keeps the shorter side at least ``size`` pixels, then a centre
      crop of ``size/8`` blocks on the MCU grid (zero blocks, mid-gray, where the image is smaller);
    - ``crop``: the centre crop alone, at the stored scale;
    - ``stored``: everything, at the stored size (the network is convolutional with global pooling).
    Planes already at the input grid are returned as they are.

    Args:
        y: float32 (64, h, w); cbcr: float32 (128, ⌈h/2⌉, ⌈w/2⌉) (4:2:0); size: pixels, a
            multiple of 16.
    """
    from dnnjpeg.dct.planes import downscale

    if mode not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {mode!r}")
    n = size // 8
    if y.shape[1:] == (n, n) or mode == "stored":
        return y, cbcr
    f = 1
    while mode == "fit" and f < 4 and 8 * min(y.shape[1:]) // (2 * f) >= size:
        f *= 2
    if f > 1:
        y, cbcr = downscale(y, f), downscale(cbcr, f)
    h, w = y.shape[1:]
    top, left = max(0, (h - n) // 4 * 2), max(0, (w - n) // 4 * 2)  # even: the 4:2:0 MCU grid

    def cut(a, t, lft, k):
        out = np.zeros((a.shape[0], k, k), np.float32)
        part = a[:, t : t + k, lft : lft + k]
        out[:, : part.shape[1], : part.shape[2]] = part
        return out

    return cut(y, top, left, n), cut(cbcr, top // 2, left // 2, n // 2)


def save_stem(stem: DctStem, model_name: str, path: str | os.PathLike[str], meta: dict | None = None) -> Path:
    """The stem's weights, its configuration and the pixel classifier it belongs to (atomic)."""
    from dnnjpeg._io import atomic_write_bytes

    buf = io.BytesIO()
    state = {k: v.detach().clone() for k, v in stem.state_dict().items()}
    torch.save({"format": STEM_FORMAT, "model": model_name, "config": stem.config, "state": state,
                "meta": meta or {}}, buf)  # fmt: skip
    return atomic_write_bytes(Path(path), buf.getvalue())


def _read_stem(path: Path) -> dict:
    from dnnjpeg._checkpoint import load_tensors
    from dnnjpeg._fs import display, read_regular

    try:
        ck = load_tensors(read_regular(str(path)))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise ValueError(f"{display(path)}: not a DCT stem file ({getattr(e, 'strerror', None) or e})") from None
    if not isinstance(ck, dict) or ck.get("format") != STEM_FORMAT:
        raise ValueError(f"{display(path)}: not a DCT stem file (expected format {STEM_FORMAT})")
    return ck


@dataclass
class DctModel(Model):
    """A :class:`dnnjpeg.models.Model` whose network reads coefficients (``reads_coefficients``).

    ``module`` is a :class:`DctNet`: it takes normalized pixels as every model does (through their
    exact DCT), so the tool's pixel paths work unchanged; :meth:`logits_files` reads files' own
    coefficients instead, with :func:`fit_geometry` for files not at the input size.
    """

    reads_coefficients: bool = True
    #: how a file not at the input size is read (:func:`fit_geometry`): "fit", "crop" or "stored"
    geometry: str = "fit"

    def planes(self, data: bytes, path: str = "<bytes>", verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """A file's planes at the model's input grid (the module's rules); errors name ``path``;
        ``verify`` False for bytes dnnjpeg has just encoded (:func:`dnnjpeg.dct.read.decode_flat`)."""
        from dnnjpeg.dct.planes import downscale, planes_from_bytes

        p = planes_from_bytes(data, path, "file", verify)
        c = downscale(p.cbcr, 2) if p.layout == "4:4:4" else p.cbcr
        return fit_geometry(p.y, c, self.preprocess.size, self.geometry)

    def logits_files(self, datas: list[bytes], batch_size: int = 64, verify: bool = True) -> np.ndarray:
        """JPEG files' bytes → float32 (N, C) logits from their own coefficients (no decode); ``verify``
        False for files dnnjpeg has just encoded (:func:`dnnjpeg.dct.read.decode_flat`)."""
        out = np.zeros((len(datas), self.num_classes), np.float32)
        with torch.inference_mode():
            for i in range(0, len(datas), batch_size):
                pl = [self.planes(d, verify=verify) for d in datas[i : i + batch_size]]
                shapes: dict[tuple, list[int]] = {}  # at the stored size: one batch per grid size
                for k, (y, _) in enumerate(pl):
                    shapes.setdefault(y.shape, []).append(k)
                for ks in shapes.values():
                    y = torch.from_numpy(np.stack([pl[k][0] for k in ks])).to(self.device)
                    c = torch.from_numpy(np.stack([pl[k][1] for k in ks])).to(self.device)
                    out[[i + k for k in ks]] = self.module.forward_planes(y, c).float().cpu().numpy()
        return out


def stem_for(model, config: dict | None = None) -> DctStem:
    """A fresh stem for a loaded pixel :class:`~dnnjpeg.models.Model`: a copy of its head, its stage's
    channels, default or given detail-path sizes (:class:`DctStem` arguments)."""
    head, _ = split_model(model.module, model.name)
    head = copy.deepcopy(head)
    for p in head.parameters():
        p.requires_grad_(True)
    pre = model.preprocess
    return DctStem(head, SPLITS[model.name][1], pre.mean, pre.std, **dict(config or {}))


def assemble(model, stem: DctStem, name: str | None = None, info: dict | None = None) -> DctModel:
    """A :class:`DctModel` from a loaded pixel :class:`~dnnjpeg.models.Model` and a stem."""
    _, tail = split_model(model.module, model.name)
    stem = stem.to(memory_format=torch.channels_last)
    net = DctNet(stem, tail, model.preprocess.mean, model.preprocess.std).eval()
    return DctModel(name or f"dct:{model.name}", net, model.preprocess, model.num_classes, model.labels, info or {})


def load_dct_model(spec: str) -> DctModel:
    """``dct:FILE`` (a stem from ``dnnjpeg dct distill``) or ``dct:NAME`` (a shipped stem,
    :data:`SHIPPED`) → a model that reads coefficients; ``#crop`` or ``#stored`` after it picks the
    geometry rule for files not at the input size (:func:`fit_geometry`; default ``fit``).

    Raises:
        ModelUnavailableError: no such file or shipped stem, or the file is not a stem.
    """
    from importlib import resources

    from dnnjpeg._fs import display
    from dnnjpeg.models import ModelUnavailableError, load_model

    ref = spec.split(":", 1)[1] if spec.startswith("dct:") else spec
    ref, _, geometry = ref.partition("#")
    geometry = geometry or "fit"
    if geometry not in GEOMETRIES:
        raise ModelUnavailableError(f"{spec!r}: the geometry after '#' must be one of {', '.join(GEOMETRIES)}")
    if ref in SHIPPED:
        path = Path(str(resources.files("dnnjpeg.presets") / SHIPPED[ref]))
    else:
        path = Path(ref)
    try:
        ck = _read_stem(path)
    except FileNotFoundError:
        shipped = ", ".join(f"dct:{k}" for k in SHIPPED)
        raise ModelUnavailableError(f"{spec!r}: no such stem file (shipped: {shipped})") from None
    except ValueError as e:
        raise ModelUnavailableError(str(e)) from None
    try:
        if not isinstance(ck.get("model"), str) or not isinstance(ck.get("config"), dict):
            raise ValueError("no classifier name or configuration")
        base = load_model(ck["model"])
        stem = stem_for(base, ck["config"])
        stem.load_state_dict(ck["state"], strict=True)
        if not all(torch.isfinite(v).all() for v in stem.state_dict().values() if v.is_floating_point()):
            raise ValueError("weights that are not finite numbers")
        meta = ck.get("meta", {})
        info = {"stem": str(path), "model": ck["model"], **(meta if isinstance(meta, dict) else {})}
    except ModelUnavailableError:
        raise
    except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as e:
        why = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ModelUnavailableError(f"{display(path)}: a broken DCT stem file ({type(e).__name__}: {why})") from None
    m = assemble(base, stem.eval(), f"dct:{ref}" + (f"#{geometry}" if geometry != "fit" else ""), info)
    m.geometry = geometry
    return m


register_model_kind("dct", load_dct_model)
