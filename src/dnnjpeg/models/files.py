"""A user's own classifier from a file: a ``torch.export`` program (``.pt2``, ``torch.export.save``),
TorchScript (``.pt``/``.ts``/``.pth`` archives made by ``torch.jit.save``) or ONNX (``.onnx``, run by
onnxruntime), with its preprocessing and class names.

A model is named by one string everywhere (the command line, a compress record, a worker process that
loads it again): ``FILE``, optionally followed by ``;`` and options, ``FILE;size=224,resize=256,
interpolation=bilinear,mean=0.485/0.456/0.406,std=0.229/0.224/0.225,classes=classes.txt``. The same
options refine any other model name (``efficientnet-lite0;classes=mine.txt``), and ``weights=FILE``
gives a ``torchvision:ARCH`` or ``timm:ARCH`` network its weights from a local state-dict file
(nothing is downloaded). Unset preprocessing
keys keep the model's own (ImageNet's for a file: 224 from a 256 resize, bilinear, ImageNet mean/std).
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from dnnjpeg.models import _INTERP, MODEL_SUFFIXES, Model, ModelUnavailableError, Preprocess, is_model_file, load_model

__all__ = ["load_spec", "model_spec", "split_spec", "parse_preprocess", "read_classes", "load_file_model"]

_KEYS = ("size", "resize", "interpolation", "mean", "std", "classes", "weights")
#: a class-index file is small text; a bigger one is not one
_MAX_CLASSES_BYTES = 16 << 20


def model_spec(name: str, preprocess: str | None = None, classes: str | os.PathLike[str] | None = None) -> str:
    """One string naming ``name`` with ``--preprocess`` text and a ``--classes`` file folded in
    (what every command and worker passes on). Paths are made absolute, so the string means the
    same file in another working folder."""
    parts = [p for p in (preprocess or "").split(",") if p.strip()]
    if classes is not None:
        cpath = str(Path(classes).resolve())
        if any(c in cpath for c in ",;+"):
            raise ValueError(f"--classes {cpath}: a path holding ',', ';' or '+' cannot be named here (they "
                             "separate model options and committee members): rename the file or link it under "
                             "another name")  # fmt: skip
        parts.append(f"classes={cpath}")
    if ";" in name and os.path.lexists(name):
        raise ValueError(f"--model {name}: a path holding ';' cannot be named (it separates model options): rename "
                         "the file or link it under another name")  # fmt: skip
    base, _, old = name.partition(";")
    if is_model_file(base) and not os.path.isabs(base):
        base = str(Path(base).resolve())
    merged = [p for p in old.split(",") if p.strip()] + parts
    return base + (";" + ",".join(merged) if merged else "")


def split_spec(spec: str) -> tuple[str, dict[str, str]]:
    """(the model's name or file, its options) of a :func:`model_spec` string.

    Raises:
        ValueError: an option that is not key=value, or an unknown key (names the known ones).
    """
    base, _, rest = spec.partition(";")
    opts: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if eq and key in opts and opts[key] != value.strip():
            raise ValueError(f"model option {key} is given twice ({opts[key]} and {value.strip()}): give it once")
        if not eq or key not in _KEYS:
            raise ValueError(
                f"model option {item!r}: give key=value with key one of {', '.join(_KEYS)} "
                "(e.g. size=224,resize=256,interpolation=bilinear,mean=0.5/0.5/0.5,std=0.5/0.5/0.5)"
            )
        opts[key] = value.strip()
    return base, opts


def parse_preprocess(opts: dict[str, str], base):
    """``base`` (a :class:`~dnnjpeg.models.Preprocess`) with the preprocessing keys of ``opts`` applied.

    Raises:
        ValueError: a size or resize that is not a whole number of pixels in 8..4096, an
            interpolation Pillow lacks, or a mean/std that is not three numbers (std > 0).
    """
    kw: dict[str, object] = {}
    for key in ("size", "resize"):
        if key in opts:
            v = opts[key]
            if not v.isdigit() or not 8 <= int(v) <= 4096:
                raise ValueError(f"--preprocess {key}={v}: give the side in pixels, 8..4096")
            kw[key] = int(v)
    if "size" in kw and "resize" not in kw:
        kw["resize"] = round(int(kw["size"]) / 0.875)  # the usual 87.5% centre crop
    if "interpolation" in opts:
        if opts["interpolation"] not in _INTERP:
            raise ValueError(f"--preprocess interpolation={opts['interpolation']}: one of {', '.join(_INTERP)}")
        kw["interpolation"] = opts["interpolation"]
    for key in ("mean", "std"):
        if key in opts:
            try:
                vals = tuple(float(x) for x in opts[key].split("/"))
            except ValueError:
                vals = ()
            if len(vals) == 1:
                vals = vals * 3
            if len(vals) != 3 or not all(np.isfinite(vals)) or (key == "std" and min(vals) <= 0):
                raise ValueError(f"--preprocess {key}={opts[key]}: give R/G/B (three numbers, or one for all)")
            kw[key] = vals
    pre = replace(base, **kw)
    if pre.size > pre.resize:
        raise ValueError(f"--preprocess: the crop ({pre.size}) cannot be larger than the resize ({pre.resize})")
    return pre


def read_classes(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Class names in output order from a class-index file.

    Accepted: text with one name per line (line i = output i; a line ``wnid name`` or ``wnid,name``
    counts by its first field), a JSON list of names, or a JSON object ``{"0": name or [id, name]}``
    (the Keras ``imagenet_class_index.json`` shape; the id is taken).

    Raises:
        ValueError: unreadable, empty, or repeated names (the message names the file).
    """
    from dnnjpeg._fs import display, read_regular

    try:
        text = read_regular(path, _MAX_CLASSES_BYTES, "class-index file").decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"class-index file {display(path)}: {getattr(e, 'strerror', None) or e}") from None
    names: list[str]
    if text.lstrip().startswith(("[", "{")):
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise ValueError(f"class-index file {display(path)}: not valid JSON ({e})") from None
        if isinstance(doc, dict):
            try:
                items = sorted(((int(k), v) for k, v in doc.items()), key=lambda kv: kv[0])
            except ValueError:
                raise ValueError(f"class-index file {display(path)}: JSON object keys must be class indices") from None
            if [k for k, _ in items] != list(range(len(items))):
                raise ValueError(f"class-index file {display(path)}: indices must run 0..{len(items) - 1}")
            names = [str(v[0] if isinstance(v, list) and v else v) for _, v in items]
        else:
            names = [str(v) for v in doc]
    else:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        names = [ln.replace(",", " ").split()[0] for ln in lines]
    if not names:
        raise ValueError(f"class-index file {display(path)}: no class names")
    if len(set(names)) != len(names):
        raise ValueError(f"class-index file {display(path)}: a class name appears twice")
    return tuple(names)


class OnnxModule:
    """An onnxruntime session behind the small part of ``nn.Module`` that :class:`Model` uses:
    called on a float tensor (N, 3, S, S) it returns (N, C) logits as a tensor. CPU only; no gradients
    (SDQ gradient weights and QNet training need a TorchScript export)."""

    def __init__(self, path: str, data: bytes | None = None) -> None:
        """``path``: the .onnx file, or with ``data`` (the model's bytes, e.g. an export made in memory
        by :func:`dnnjpeg.models.fast.onnx_model`) only the name errors give."""
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ModelUnavailableError(f"{path}: an ONNX model needs onnxruntime (pip install onnxruntime)") from e
        import torch

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # as many threads as torch is given (the engine's setting), and none spinning between runs: the
        # JPEG work of a network choice runs on the other threads meanwhile
        opts.intra_op_num_threads = max(1, torch.get_num_threads())
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path, self.data = path, data
        self.session = ort.InferenceSession(path if data is None else data, opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x):
        import torch

        out = self.session.run(None, {self.input: np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)})[0]
        return torch.from_numpy(np.asarray(out, np.float32))

    def eval(self) -> OnnxModule:
        return self

    def to(self, device=None, **kwargs) -> OnnxModule:
        import torch

        if isinstance(device, (str, torch.device)) and torch.device(device).type != "cpu":
            raise ValueError(f"{self.path}: ONNX models run on the CPU here (onnxruntime's CPU provider)")
        return self

    def parameters(self):
        raise ValueError(
            f"{self.path}: an ONNX model gives no gradients; export the network with torch.jit.trace/torch.jit.save "
            "(a .pt file) for SDQ gradient weights and QNet training"
        )

    def __getstate__(self):
        return {"path": self.path, "data": self.data}

    def __setstate__(self, state) -> None:
        self.__init__(state["path"], state.get("data"))


def load_file_model(path: str, opts: dict[str, str]):
    """A :class:`~dnnjpeg.models.Model` from a TorchScript or ONNX file.

    Args:
        path: the file (``.pt``, ``.ts``, ``.pth``: TorchScript; ``.onnx``).
        opts: :func:`split_spec`'s options (the preprocessing keys; :func:`load_spec` applies ``classes``).
    Raises:
        ModelUnavailableError: missing or not a regular file, not loadable (the loader's reason).
        ValueError: bad options; a network that does not map (1, 3, S, S) to (1, C) logits.
    """
    import torch

    from dnnjpeg._fs import display, open_regular

    kind = MODEL_SUFFIXES.get(Path(path).suffix.lower())
    try:
        with open_regular(path):  # refuses links to devices, FIFOs, folders before a loader opens it
            pass
    except OSError as e:
        raise ModelUnavailableError(f"--model {display(path)}: {e.strerror or e}") from None
    pre = parse_preprocess(opts, Preprocess(size=224, resize=256))
    if "weights" in opts:
        raise ValueError(f"--model {display(path)}: weights= gives a torchvision:ARCH or timm:ARCH network its "
                         "weights; a model file holds its own")  # fmt: skip
    try:
        if kind == "onnx":
            module = OnnxModule(path)
        elif kind == "export":  # an exported program's train/eval mode was fixed when it was exported
            with _quiet_torch():
                module = torch.export.load(path).module()
        else:
            module = torch.jit.load(path, map_location="cpu").eval()
    except ModelUnavailableError:
        raise
    except Exception as e:  # noqa: BLE001 — any loader failure is this file's problem, said as such
        what = {"onnx": "an ONNX model", "export": "a torch.export program (torch.export.save)"}.get(
            kind, "a TorchScript archive (torch.jit.save)"
        )
        raise ModelUnavailableError(
            f"--model {display(path)}: not {what}: {type(e).__name__}: {first_line(e)}"
        ) from None
    n = validate_module(module, pre.size, display(path))
    return Model(name=Path(path).name, module=module, preprocess=pre, num_classes=n,
                 labels="imagenet" if n == 1000 else "custom", info={"file": path, "format": kind})  # fmt: skip


def first_line(e: BaseException | str, limit: int = 300) -> str:
    """The first line of a foreign message (torch, onnxruntime, Ray), at most ``limit`` characters:
    their stacks and advice never reach the user; the caller's own words name the cause."""
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


class _quiet_torch:
    """Silence torch's loggers (``torch.export.load`` logs a whole traceback before it raises)."""

    def __enter__(self):
        import logging

        self.logger = logging.getLogger("torch")
        self.level = self.logger.level
        self.logger.setLevel(logging.CRITICAL)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.setLevel(self.level)


#: the batch sizes a model is tried on before any long work (one, and more than one)
_TRIAL_BATCHES = (1, 3)


def validate_module(module, size: int, name: str) -> int:
    """Run a network on real batches before any long work; returns its number of classes.

    It is given batches of 1 and of 3 noise images (N, 3, size, size), normalized as ImageNet's: it
    must return one tensor of shape (N, C), the same C each time, every value finite.

    Raises:
        ValueError: one line naming ``name`` and what it returned (a tuple, a fixed batch, NaN...).
    """
    import torch

    rng = np.random.default_rng(0)
    classes = None
    for n in _TRIAL_BATCHES:
        x = torch.from_numpy(rng.standard_normal((n, 3, size, size)).astype(np.float32))
        try:
            with torch.inference_mode(), _quiet_torch():
                out = module(x)
        except Exception as e:  # noqa: BLE001 — said in our words, with the first line of theirs
            if n > 1 and classes is not None:
                raise ValueError(f"--model {name} runs on a batch of 1 but not of {n} ({first_line(e, 160)}): it was "
                                 "exported with a fixed batch; export it with a dynamic batch dimension "
                                 "(torch.onnx.export(..., dynamic_axes={'x': {0: 'n'}}), or torch.export with "
                                 "dynamic_shapes)") from None  # fmt: skip
            raise ValueError(
                f"--model {name} does not run on a ({n}, 3, {size}, {size}) input: {first_line(e)}"
            ) from None
        classes = _checked_output(out, n, name, classes)
    return classes


def _checked_output(out, n: int, name: str, classes: int | None) -> int:
    import torch

    if not isinstance(out, torch.Tensor):
        what = f"a {type(out).__name__}" + (f" of {len(out)}" if isinstance(out, (tuple, list)) else "")
        raise ValueError(f"--model {name}: expected one tensor of (batch, classes) logits, got {what}")
    shape = tuple(out.shape)
    if len(shape) != 2 or shape[1] < 1:
        raise ValueError(f"--model {name}: expected ({n}, classes) logits for a batch of {n}, got shape {shape}")
    if shape[0] != n:
        raise ValueError(f"--model {name} returns {shape[0]} rows for a batch of {n}: export it with a batch "
                         "dimension (one row of logits per image)")  # fmt: skip
    if classes is not None and shape[1] != classes:
        raise ValueError(f"--model {name}: {classes} classes for one batch, {shape[1]} for another")
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"--model {name} returns values that are not finite (NaN or inf) on ordinary inputs")
    return int(shape[1])


def load_spec(spec: str) -> Model:
    """A model named with options (:func:`model_spec`): a TorchScript or ONNX file, or any other
    name with its preprocessing or class names replaced; ``info["spec"]`` keeps the string."""
    base, opts = split_spec(spec)
    if is_model_file(base):
        m = load_file_model(base, opts)  # (its preprocessing already from opts)
    else:
        m = _with_weights(base, opts["weights"]) if "weights" in opts else load_model(base)
        m = replace(m, preprocess=parse_preprocess(opts, m.preprocess))
    if "classes" in opts:
        classes = read_classes(opts["classes"])
        if len(classes) != m.num_classes:
            raise ValueError(
                f"--classes {opts['classes']} names {len(classes)} classes; {base} outputs {m.num_classes}"
            )
        m = replace(m, labels="custom", info=m.info | {"classes": list(classes)})
    return replace(m, name=spec, info=m.info | {"spec": spec})


def _with_weights(base: str, weights: str):
    """``torchvision:ARCH`` / ``timm:ARCH`` built without pretrained weights, then given ``weights``
    (a local state-dict file, loaded strictly with ``weights_only``): no hub, no download."""

    from dnnjpeg._fs import display, open_regular
    from dnnjpeg.models import _prepare, timm_preprocess

    kind, _, arch = base.partition(":")
    if kind not in ("torchvision", "timm"):
        raise ValueError(f"weights={weights}: a weights file is for torchvision:ARCH or timm:ARCH, not {base!r}")
    from dnnjpeg._checkpoint import load_tensors

    try:
        with open_regular(weights) as fh:
            state = load_tensors(fh.read())
    except (OSError, ValueError) as e:  # a missing, foreign or non-tensor file, said as such
        why = getattr(e, "strerror", None) or e
        raise ModelUnavailableError(f"weights={display(weights)}: not a readable state dict: {why}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint's usual wrapping
    try:
        lib = importlib.import_module(kind)
    except Exception as e:  # ImportError, or the operator error of a wheel built for another torch
        raise ModelUnavailableError(f"{base} needs {kind} (pip install {kind}, built for this torch): {e}") from e
    if kind == "timm":
        net = lib.create_model(arch, pretrained=False)
        pre = timm_preprocess(net.pretrained_cfg)
    else:
        net = lib.models.get_model(arch, weights=None)
        pre = Preprocess(size=224, resize=256)  # torchvision's ImageNet classifiers' evaluation transform
    try:
        net.load_state_dict(state, strict=True)
    except Exception as e:  # noqa: BLE001 — the wrong file for this architecture
        raise ModelUnavailableError(f"weights={display(weights)} do not fit {base}: {e}") from None
    n = validate_module(net.eval(), pre.size, base)
    return _prepare(net, base, pre, num_classes=n, labels="imagenet" if n == 1000 else "custom",
                    info={"weights": str(weights)})  # fmt: skip
