"""The classifier of a per-image choice, made fast on the CPU.

The network choice runs the classifier 4–9 times per image, and on this project's 2 cores its forward
pass is most of the time. onnxruntime runs EfficientNet-lite0 **2.6×** faster than PyTorch eager here
(4.4 against 11.6 ms per image, at any batch size; logits within 1e-5) after a 1 s export made in
memory; ``torch.compile`` gives 1.5× after about 30 s of compiling (BENCHMARKS.md, "How fast the
network's choice runs"). onnxruntime gives no gradients, so a family whose SDQ members need the
image's gradient weights keeps PyTorch (compiled for large trees).

Nothing is written to disk and nothing is downloaded: the export is the network in memory.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import replace

import numpy as np

from dnnjpeg.models import Model

__all__ = ["ACCELERATORS", "ONNX_FROM", "COMPILE_FROM", "onnx_model", "fast_model", "needs_gradients"]

#: ``accelerate`` settings: "auto" (onnxruntime where it can, else torch.compile for large trees),
#: "onnx", "compile", "none"
ACCELERATORS = ("auto", "onnx", "compile", "none")
#: from this many images "auto" exports the network to onnxruntime (≈ 1 s; pays back from ~30 images)
ONNX_FROM = 32
#: from this many images "auto" compiles the network when onnxruntime cannot run it (≈ 30 s)
COMPILE_FROM = 5000
#: the largest |Δ logit| between the export and the network on a test batch that is float rounding
TOLERANCE = 1e-3


def needs_gradients(family) -> bool:
    """Whether any member of ``family`` (a :class:`~dnnjpeg.families.TableFamily`) is SDQ with the
    image's gradient weights, which need the network's backward pass."""
    return any(p.sdq and p.sdq[0] == "gradient" for p in family.points)


def onnx_model(model: Model) -> Model | None:
    """``model`` with its network exported to ONNX in memory and run by onnxruntime's CPU provider, or
    None with a warning saying why not (no onnxruntime or onnx, not on the CPU, an export that fails or
    whose logits on a test batch differ from the network's by more than :data:`TOLERANCE`).

    A committee's members are exported one by one. An ONNX model is returned as it is."""
    from dnnjpeg.models.committee import CommitteeModule
    from dnnjpeg.models.files import OnnxModule

    if isinstance(model.module, OnnxModule):
        return model
    if model.device != "cpu":
        return None
    if isinstance(model.module, CommitteeModule):
        members = [onnx_model(m) for m in model.module.members]
        if any(m is None for m in members):
            return None
        return replace(model, module=CommitteeModule(members, model.module.pre), info=model.info | {"onnx": True})
    try:
        import onnxruntime  # noqa: F401  (the export is useless without it)
        import torch

        s = model.preprocess.size
        buf = io.BytesIO()
        with warnings.catch_warnings():  # the exporter's deprecation and constant-folding notes
            warnings.simplefilter("ignore")
            torch.onnx.export(model.module.eval(), torch.zeros(1, 3, s, s), buf, input_names=["x"],
                              output_names=["logits"], dynamic_axes={"x": {0: "n"}}, dynamo=False)  # fmt: skip
        fast = replace(model, module=OnnxModule(f"{model.name} (exported)", buf.getvalue()),
                       info=model.info | {"onnx": True})  # fmt: skip
        test = np.random.default_rng(0).integers(0, 256, (2, s, s, 3), dtype=np.uint8)
        diff = float(np.abs(fast.logits(test) - model.logits(test)).max())
        if not diff <= TOLERANCE:
            raise ValueError(f"its logits differ from the network's by {diff:.2g} on a test batch")
        return fast
    except Exception as e:  # noqa: BLE001 — any failure: the network itself gives the same answers, slower
        warnings.warn(f"{model.name}: not run by onnxruntime ({type(e).__name__}: {str(e)[:200]}); "
                      "running it in PyTorch", RuntimeWarning, stacklevel=2)  # fmt: skip
        return None


def fast_model(model: Model, batch_size: int, images: int, gradients: bool = False, how: str = "auto") -> Model:
    """The fastest form of ``model`` worth making for ``images`` images in batches of ``batch_size``.

    Args:
        how: one of :data:`ACCELERATORS`. "auto": onnxruntime from :data:`ONNX_FROM` images unless
            ``gradients`` are needed, else ``torch.compile`` from :data:`COMPILE_FROM` images.
        gradients: whether the network's backward pass is needed (:func:`needs_gradients`); "onnx" is
            refused then.
    Returns:
        a :class:`Model` giving the same answers up to float rounding (a choice near a tie may differ).
    Raises:
        ValueError: an unknown ``how``, or "onnx" where gradients are needed.
    """
    if how not in ACCELERATORS:
        raise ValueError(f"accelerate must be one of {', '.join(ACCELERATORS)}, got {how!r}")
    if how == "onnx" and gradients:
        raise ValueError("--accelerate onnx: onnxruntime gives no gradients, which this family's SDQ members need")
    if how == "onnx" or (how == "auto" and not gradients and images >= ONNX_FROM):
        fast = onnx_model(model)
        if fast is not None or how == "onnx":
            return fast or model
    if how == "compile" or (how == "auto" and images >= COMPILE_FROM):
        return model.compiled(batch_size)
    return model
