"""The batched classifier pipeline: many images' candidates through one network, any device.

Every network-in-the-loop path of dnnjpeg does the same thing: for each image, a few
inputs (the pristine model input and the decode of each candidate file) go through the
classifier, and the image's decision waits for all of its rows. Run image by image, the
network sees batches of K + 1 rows and waits for JPEG work in between. Here:

* :func:`candidates` makes one image's K candidate files and its K + 1 model inputs (pure
  JPEG work: runs in any process; :func:`bounded_map` keeps a process pool a fixed number of
  images ahead);
* :func:`score_stream` packs the rows of many images into fixed-size inference batches and
  yields each image, in input order, as soon as all its rows are scored; images with nothing
  to score (kept, failed) pass through in order. Memory holds the window ahead and one batch,
  whatever the number of images;
* :func:`measure_images` is both for images in memory (QNet targets).

:func:`resolve_device` turns ``--device auto|cpu|cuda|mps`` into a torch device, with a clear
error for one this machine does not have; :meth:`dnnjpeg.models.Model.to` puts a model there.

Written here because no library does it: torch's DataLoader batches samples of one row
each, and Ray's ``map_batches`` (the distributed engine, :mod:`dnnjpeg.engine`) batches
rows too; neither regroups rows into per-image decisions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEVICES",
    "Candidates",
    "bounded_map",
    "candidates",
    "measure_images",
    "model_inputs",
    "resolve_device",
    "score_stream",
]

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto"):
    """``auto`` (CUDA, else Apple's MPS, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` →
    a ``torch.device``.

    Raises:
        ValueError: an unknown name, or a device this machine's torch cannot use (says which).
    """
    import torch

    base = name.split(":", 1)[0]
    if base not in DEVICES or (":" in name and base != "cuda"):
        raise ValueError(f"--device must be one of {', '.join(DEVICES)} (or cuda:N), got {name!r}")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if base == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this torch ({torch.__version__}) sees no CUDA device")
    if base == "cuda" and ":" in name:
        idx = name.split(":", 1)[1]
        if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: {torch.cuda.device_count()} CUDA device(s) here")
    if base == "mps" and not has_mps:
        raise ValueError("--device mps: Apple's Metal backend is not available here")
    return torch.device(name)


@dataclass
class Candidates:
    """One image's candidates: ``datas`` the K JPEG files (bytes), ``bits`` int64 (K,) their sizes,
    ``inputs`` uint8 (K + 1, S, S, 3) the model inputs (row 0 the pristine image, row k + 1 the
    decode of file k), ``pixels`` the stored image's H·W."""

    datas: list[bytes]
    bits: np.ndarray
    inputs: np.ndarray
    pixels: int


def candidates(
    rgb: np.ndarray,
    family: Sequence,
    preprocess,
    weights=None,
    subsampling: str | Sequence[str] = "4:2:0",
    optimize: bool = True,
) -> Candidates:
    """Encode one stored image with every member and decode each file to the model's input.

    Args:
        rgb: uint8 (H, W, 3) or (H, W) stored pixels (gray: the network sees three equal channels).
        family: :class:`~dnnjpeg.families.CodecSpec` members (each encodes itself, SDQ included),
            or :class:`~dnnjpeg.codec.QuantTables` (encoded at ``subsampling`` — one, or one per
            member — with ``optimize``).
        preprocess: the model's :class:`~dnnjpeg.models.Preprocess` (resize and centre crop).
        weights: SDQ gradient weights of this image (from the choosing network), or None.
    """
    from dnnjpeg.codec import encode

    subs = [subsampling] * len(family) if isinstance(subsampling, str) else list(subsampling)
    datas = [t.encode(rgb, weights=weights) if hasattr(t, "encode") else encode(rgb, t, s, optimize)
             for t, s in zip(family, subs, strict=True)]  # fmt: skip
    bits = np.array([8 * len(d) for d in datas], np.int64)
    return Candidates(datas, bits, model_inputs(rgb, datas, preprocess), int(rgb.shape[0] * rgb.shape[1]))


def model_inputs(rgb: np.ndarray, datas: Sequence[bytes], preprocess) -> np.ndarray:
    """uint8 (1 + len(datas), S, S, 3): the stored image, then each decoded file, at the model's
    geometry (gray as three equal channels)."""
    from dnnjpeg.codec import decode

    rgb3 = np.repeat(rgb[..., None], 3, axis=2) if rgb.ndim == 2 else rgb
    return np.stack([preprocess.geometry(rgb3)] + [preprocess.geometry(decode(d)) for d in datas])


class _Item:
    __slots__ = ("key", "payload", "inputs", "out", "left")

    def __init__(self, key, payload, inputs):
        self.key, self.payload, self.inputs = key, payload, inputs
        self.out = None
        self.left = 0 if inputs is None else len(inputs)


def score_stream(
    items: Iterable[tuple[object, np.ndarray | None, object]],
    model,
    batch_size: int = 64,
) -> Iterator[tuple[object, np.ndarray | None, object]]:
    """Classify the rows of many items in fixed-size batches; yield each item when it is complete.

    Args:
        items: (key, inputs uint8 (n, S, S, 3) or None, payload) per item; n may differ per item.
        model: a :class:`~dnnjpeg.models.Model` (on any device).
        batch_size: rows per forward pass (every pass but the last is full).
    Yields:
        (key, logits float32 (n, C) or None, payload), in the order of ``items``.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be ≥ 1, got {batch_size}")
    pending: deque[_Item] = deque()
    queue: deque[list] = deque()  # [item, first row not yet queued for a batch]
    queued = 0

    def ready():
        while pending and pending[0].left == 0:
            it = pending.popleft()
            yield it.key, it.out, it.payload

    for key, inputs, payload in items:
        it = _Item(key, payload, inputs)
        pending.append(it)
        if it.left:
            queue.append([it, 0])
            queued += it.left
        while queued >= batch_size:
            queued -= _score_rows(queue, batch_size, model)
        yield from ready()
    while queued:
        queued -= _score_rows(queue, min(queued, batch_size), model)
    yield from ready()


def _score_rows(queue: deque, n: int, model) -> int:
    """One forward pass over the next ``n`` queued rows (from one item or several); each item's logits
    land in its own array. Returns ``n``."""
    parts, owners, left = [], [], n
    while left:
        seg = queue[0]
        it, lo = seg
        take = min(left, len(it.inputs) - lo)
        parts.append(it.inputs[lo : lo + take])
        owners.append((it, lo, take))
        left -= take
        if lo + take == len(it.inputs):
            queue.popleft()
        else:
            seg[1] = lo + take
    x = parts[0] if len(parts) == 1 else np.concatenate(parts)
    logits = model.logits(x, batch_size=len(x))
    at = 0
    for it, lo, take in owners:
        if it.out is None:
            it.out = np.empty((len(it.inputs), logits.shape[1]), logits.dtype)
        it.out[lo : lo + take] = logits[at : at + take]
        at += take
        it.left -= take
        if it.left == 0:
            it.inputs = None  # the pixels are no longer needed
    return n


def bounded_map(pool: Executor | None, fn: Callable, items: Iterable, window: int) -> Iterator:
    """``map(fn, items)`` in order, at most ``window`` calls in flight in ``pool`` (None: here)."""
    if pool is None:
        yield from map(fn, items)
        return
    futs: deque = deque()
    for x in items:
        futs.append(pool.submit(fn, x))
        if len(futs) >= window:
            yield futs.popleft().result()
    while futs:
        yield futs.popleft().result()


def measure_images(
    images: Iterable[np.ndarray],
    family: Sequence,
    model,
    batch_size: int = 64,
    weights: Callable[[np.ndarray], object] | None = None,
) -> Iterator[tuple[Candidates, np.ndarray]]:
    """Every member's file and KL on each image, many images' candidates per forward pass.

    Args:
        images: uint8 (H, W, 3) or (H, W) stored images.
        family: CodecSpec members; ``model``: the classifier.
        weights: per image, SDQ gradient weights (or None) for the members that take them.
    Yields:
        (the image's :class:`Candidates` with ``inputs`` dropped, KL float64 (K,) nats of the
        network's output on each decoded file from its output on the stored image), in order.
    """
    from dnnjpeg.evaluate.trial import outcome

    def items():
        for i, img in enumerate(images):
            c = candidates(img, family, model.preprocess, weights(img) if weights else None)
            yield i, c.inputs, c

    for _, logits, c in score_stream(items(), model, batch_size):
        c.inputs = None
        _, kl = outcome(np.repeat(logits[:1], len(logits) - 1, 0), logits[1:])
        yield c, kl
