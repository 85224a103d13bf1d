"""Pristine cache and the trial: the one place where encoding and inference meet.

A trial encodes every cached image with one :class:`CodecSpec`, counts the
bytes of the real file, decodes it, and classifies the result.  JPEG work runs
in a thread pool (Pillow releases the GIL while it encodes, decodes and
resizes) a few batches ahead of the batched inference in the calling thread, so
the two overlap.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from dnnjpeg._fs import describe_error
from dnnjpeg.codec import decode, load_image
from dnnjpeg.conventions import AT_CHOICES
from dnnjpeg.data import Dataset
from dnnjpeg.evaluate.spec import CodecSpec
from dnnjpeg.models import Model

__all__ = ["Pristine", "TrialResult", "build_pristine", "run_trial"]


def _bmp_bytes(w: int, h: int) -> int:
    # 24-bit BMP: 54-byte header, rows padded to 4 bytes.
    return 54 + h * ((3 * w + 3) // 4 * 4)


@dataclass
class Pristine:
    """Decoded and (for ``at="input"``) resized images, computed once per evaluation.

    Attributes:
        at: "input" (JPEG the model-input crop) or "original" (JPEG the stored image).
        paths: the images that loaded, in dataset order.
        labels: int64 (N,) class indices; for unlabeled data the pristine top-1.
        sources: what a trial encodes: uint8 (S, S, 3) crops (input) or full images (original);
            empty in the summary :func:`dnnjpeg.evaluate.evaluate` keeps of its chunks.
        inputs: uint8 (N, S, S, 3) pristine model inputs (None in that summary).
        logits: float32 (N, C) pristine logits.
        failures: (path, error message) of images that could not be read.
        labeled: whether ``labels`` are ground truth (else pristine predictions).
    """

    at: str
    paths: list[str]
    labels: np.ndarray
    sources: list[np.ndarray]
    inputs: np.ndarray
    logits: np.ndarray
    failures: list[tuple[str, str]]
    labeled: bool
    #: int64 (N,) pixels and 24-bit BMP bytes of each source (from ``sources`` when not given)
    pixels: np.ndarray | None = None
    bmp_bytes: np.ndarray | None = None
    #: SDQ gradient weights already computed, by (image index, resize, subsampling): every member of an
    #: sdq:gradient family shares its image's one backward pass
    weights: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pixels is None:
            self.pixels = np.array([s.shape[0] * s.shape[1] for s in self.sources], dtype=np.int64)
        if self.bmp_bytes is None:
            self.bmp_bytes = np.array([_bmp_bytes(s.shape[1], s.shape[0]) for s in self.sources], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)


def _load_rgb(path: str) -> np.ndarray:
    # The stored orientation is what a training pipeline reads; EXIF is not applied. Strict:
    # only regular files, a JPEG with any libjpeg warning is an error (dnnjpeg.codec.files).
    return load_image(path, "RGB")


def build_pristine(
    dataset: Dataset,
    model: Model,
    at: str = "input",
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 32,
) -> Pristine:
    """Decode every image once, prepare what trials encode, and classify the pristine inputs.

    Images that fail to load are listed in ``failures`` and skipped.
    ``progress(n)`` is called with the number of images just finished.
    """
    if at not in AT_CHOICES:
        raise ValueError(f"at must be one of {AT_CHOICES}, got {at!r}")
    pre = model.preprocess
    workers = workers or max(1, os.cpu_count() or 1)

    def load(rec):
        try:
            rgb = _load_rgb(str(rec.path))
            crop = pre.geometry(rgb)
            return rec, (crop if at == "input" else rgb), crop, None
        except Exception as e:  # any unreadable file is reported, never fatal
            return rec, None, None, describe_error(e)

    paths, labels, sources, crops = [], [], [], []
    failures = [(p, f"not read: {why}") for p, why in dataset.problems]
    with ThreadPoolExecutor(workers) as pool:
        for rec, src, crop, errmsg in pool.map(load, dataset.records):
            if progress:
                progress(1)
            if errmsg is not None:
                failures.append((str(rec.path), errmsg))
                continue
            paths.append(str(rec.path))
            labels.append(-1 if rec.label is None else rec.label)
            sources.append(src)
            crops.append(crop)
    size = pre.size
    inputs = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    logits = model.logits(inputs, batch_size=batch_size)
    lab = np.array(labels, dtype=np.int64)
    if not dataset.labeled:
        lab = logits.argmax(1).astype(np.int64) if len(logits) else lab
    return Pristine(at, paths, lab, sources, inputs, logits, failures, dataset.labeled)


@dataclass
class TrialResult:
    """Per-image outcome of one codec setting on a :class:`Pristine` set.

    Arrays are over the N images: ``bits`` int64 (file size × 8), ``top5`` int64 (N, 5)
    predicted classes best first, ``kl`` float64 KL(pristine ‖ compressed) in nats.
    """

    spec: CodecSpec
    bits: np.ndarray
    top5: np.ndarray
    kl: np.ndarray
    logits: np.ndarray | None = None


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(1, keepdims=True))


def outcome(pristine_logits: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top5 (N, 5), KL(pristine ‖ this) (N,)) from two (N, C) logit arrays."""
    lp0, lp1 = _log_softmax(pristine_logits), _log_softmax(logits)
    kl = (np.exp(lp0) * (lp0 - lp1)).sum(1)
    top5 = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    return top5.astype(np.int64), kl


def _batch_weights(spec: CodecSpec, sources: list[np.ndarray], model: Model, at_input: bool,
                   cache: dict | None = None, keys: list | None = None) -> list:  # fmt: skip
    """SDQ with gradient weights: each image's, from the measuring model, images of one size sharing
    backward passes (:func:`~dnnjpeg.sdq.weights.gradient_weights_batch`); None for every other
    setting and for gray images. ``cache`` (by ``keys``, one per source) keeps them for the next
    member of the family: one backward pass per image, not one per member."""
    if not (spec.sdq and spec.sdq[0] == "gradient"):
        return [None] * len(sources)
    from dnnjpeg.sdq.weights import gradient_weights_batch

    cache = {} if cache is None else cache
    keys = list(range(len(sources))) if keys is None else keys
    colour = [i for i, s in enumerate(sources) if s.ndim == 3 and keys[i] not in cache]
    ws = gradient_weights_batch([sources[i] for i in colour], model, spec.subsampling,
                                at="input" if at_input else "original")  # fmt: skip
    out = {keys[i]: w for i, w in zip(colour, ws)}
    for k, w in out.items():  # kept up to 1 GiB a chunk (a chunk of huge photos computes again instead)
        size = sum(np.asarray(a).nbytes for a in w)
        if cache.get("bytes", 0) + size <= 1 << 30:
            cache[k] = w
            cache["bytes"] = cache.get("bytes", 0) + size
    return [out.get(k, cache.get(k)) for k in keys]


def _jpeg_batch(spec: CodecSpec, pristine: Pristine, model: Model, coefficients: bool, lo: int, hi: int):
    """Images lo..hi encoded with ``spec``: (bits (n,), decoded model inputs (n, S, S, 3) uint8, or the
    files' bytes for a model that reads coefficients)."""
    pre, at_input = model.preprocess, pristine.at == "input"
    bits = np.empty(hi - lo, np.int64)
    out = [] if coefficients else np.empty((hi - lo, pre.size, pre.size, 3), np.uint8)
    sources = [spec.resized(pristine.sources[i]) for i in range(lo, hi)]  # what is encoded
    keys = [(i, spec.resize, spec.subsampling) for i in range(lo, hi)]
    weights = _batch_weights(spec, sources, model, at_input, pristine.weights, keys)
    for k in range(hi - lo):
        data = spec.encode(sources[k], weights=weights[k])
        bits[k] = 8 * len(data)
        if coefficients:
            out.append(data)
            continue
        dec = decode(data)
        out[k] = dec if at_input else pre.geometry(dec)
    return bits, out


def _in_order(fn, bounds: list[tuple[int, int]], workers: int, lookahead: int):
    """((lo, hi), fn(lo, hi)) per batch, in order: inline (``workers`` 0: JPEG then inference, batch by
    batch; on a machine whose cores inference already saturates this beats a JPEG thread that preempts
    torch's synchronized worker threads, BENCHMARKS.md), or ``lookahead`` batches ahead in threads."""
    if workers == 0:
        for b in bounds:
            yield b, fn(*b)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending = deque((b, pool.submit(fn, *b)) for b in bounds[:lookahead])
        rest = iter(bounds[lookahead:])
        while pending:
            b, fut = pending.popleft()
            nxt = next(rest, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(fn, *nxt)))
            yield b, fut.result()


def run_trial(
    spec: CodecSpec,
    pristine: Pristine,
    model: Model,
    batch_size: int = 32,
    workers: int | None = None,
    lookahead: int = 3,
    keep_logits: bool = False,
    progress: Callable[[int], None] | None = None,
) -> TrialResult:
    """Encode, measure, decode and classify every pristine image with ``spec``.

    Args:
        workers: JPEG threads overlapping inference in this thread; 0 runs JPEG
            inline between inference batches; None picks: inline on 2 cores or
            fewer (measured best there, see BENCHMARKS.md), else the cores
            inference leaves (up to 4).
        lookahead: batches of JPEG work kept in flight ahead of inference.
    """
    if workers is None:
        cores = os.cpu_count() or 1
        workers = 0 if cores <= 2 else min(4, cores - 2)
    n = len(pristine)
    # A model that reads coefficients (dnnjpeg.dct.stem.DctModel) gets each file's own bytes: no
    # decode; its own rule fits a stored image (at original) to its input grid.
    coefficients = getattr(model, "reads_coefficients", False)
    bounds = [(lo, min(n, lo + batch_size)) for lo in range(0, n, batch_size)]
    jpeg = functools.partial(_jpeg_batch, spec, pristine, model, coefficients)
    bits_all = np.empty(n, np.int64)
    logits_all = []
    for (lo, hi), (bits, imgs) in _in_order(jpeg, bounds, workers, lookahead):
        bits_all[lo:hi] = bits
        # files encoded just now: decoded without libjpeg's verdict on either path (it is for a user's files)
        logits_all.append(model.logits_files(imgs, batch_size, verify=False) if coefficients
                          else model.logits(imgs, batch_size))  # fmt: skip
        if progress:
            progress(hi - lo)
    logits = np.concatenate(logits_all) if logits_all else np.zeros((0, pristine.logits.shape[1]), np.float32)
    top5, kl = outcome(pristine.logits, logits)
    return TrialResult(spec, bits_all, top5, kl, logits if keep_logits else None)
