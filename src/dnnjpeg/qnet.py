"""The task-aware quantization network: choose each image's tables without running the classifier on them.

The per-image choice with the classifier in the loop (:mod:`dnnjpeg.select`) needs K + 1
forward passes of the full network per image. A QNet predicts, per image, each family member's
KL(pristine output ‖ output on the decoded member) from what is cheap at compression time, and
the same Lagrangian rule (:func:`dnnjpeg.evaluate.selection.choose`) picks the member: least
predicted KL + λ·KiB. It sees, per image:

* **one pass of a small probe network on the stored image** (default ``efficientnet-lite0@128``,
  the classifier's own weights on a 128² input, ≈ 1/3 of a full pass): how unsure it is
  (entropy, log top-1 probability, log margin to the second class). An unsure image moves
  more under the same error; this is the strongest single predictor measured;
* **each member's quantization error in the classifier's crop**, computed in the DCT domain
  without encoding or decoding (Parseval: the orthonormal 8×8 DCT keeps squared error), split
  into frequency bands of luma and the chroma total;
* **each member's file size** (the K encodes the choice makes anyway) and the image's size.

The predictor over these 12 numbers per member is a ridge regression of log KL, one per member,
fitted in closed form (deterministic; a file of a few kilobytes). The first form of this module
(a thumbnail CNN + sizes) learned no more than the sizes: BENCHMARKS.md has both.

Training needs no labels: the targets are the classifier's own KL on member encodes of
augmented images (random resized crops, flips, and a re-encode at a random quality, so a few
hundred design images give thousands of distinct samples). Judge it by what it decides — the
regret of its choice against the in-the-loop choice — not only by its error.

Why by hand: no library predicts a classifier's sensitivity to a JPEG table per image.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnnjpeg.codec import QuantTables, decode, encode
from dnnjpeg.families import TableFamily, register_family_kind

__all__ = [
    "QNetData",
    "augment",
    "quantization_error",
    "probe_stats",
    "member_features",
    "make_samples",
    "QNet",
    "train_qnet",
    "save_qnet",
    "load_qnet",
    "DEFAULT_PROBE",
    "FORMAT",
]

FORMAT = "dnnjpeg.qnet/2"
DEFAULT_PROBE = "efficientnet-lite0@128"
#: KL below this (nats) is "no change": the log target would otherwise chase float noise.
KL_FLOOR = 1e-5
#: the centre square the classifiers see of a stored image: crop 224 of a shorter side resized to 256
CROP_FRACTION = 0.875
#: luma DCT frequency bands by u + v (DC, low, mid, high, highest); chroma is one band
_UV = np.add.outer(np.arange(8), np.arange(8)).reshape(64)
BANDS = ((0, 0), (1, 2), (3, 5), (6, 9), (10, 14))
N_DQ = len(BANDS) + 1
#: error energies (per coefficient, squared levels) below this are "none" in the log features
_ERR_FLOOR = 1e-3
FEATURE_NAMES = (
    "log bpp",
    "log bits / finest",
    "log megapixels",
    *(f"log luma error u+v {a}-{b}" for a, b in BANDS),
    "log chroma error",
    "probe entropy",
    "probe log p1",
    "probe log margin",
)


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


def _dct_matrix() -> np.ndarray:
    """(8, 8) orthonormal DCT-II matrix D: a block's coefficients are D @ B @ D.T."""
    k, n = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    d = np.sqrt(2 / 8) * np.cos((2 * n + 1) * k * np.pi / 16)
    d[0] /= np.sqrt(2)
    return d.astype(np.float32)


_DCT = _dct_matrix()
#: JFIF RGB → YCbCr (rows Y, Cb, Cr; Cb and Cr without their +128 offset)
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)


def _block_dct(channel: np.ndarray) -> np.ndarray:
    """float (H, W) → (H//8, W//8, 64) orthonormal 8×8 DCT-II (JPEG's coefficient scale), natural order.

    Two small matrix products per block (batched by NumPy): faster here than scipy's dctn over
    the block axes, and float32 is enough for features that are logs of mean errors."""
    h, w = channel.shape
    hb, wb = h // 8, w // 8
    b = np.asarray(channel[: hb * 8, : wb * 8], np.float32).reshape(hb, 8, wb, 8).transpose(0, 2, 1, 3)
    return (_DCT @ b @ _DCT.T).reshape(hb, wb, 64)


def quantization_error(rgb: np.ndarray, family: TableFamily) -> np.ndarray:
    """Each member's quantization error in the classifier's centre crop, without encoding.

    Args:
        rgb: uint8 (H, W, 3) stored pixels, or (H, W) gray.
        family: K members (luma table for Y; chroma table for Cb, Cr at 4:2:0, 2×2 means).
    Returns:
        float32 (K, 6): log of the mean squared error per block (squared levels of the
        orthonormal DCT, i.e. of pixels, summed over the coefficients of the band) for the luma
        bands :data:`BANDS` and for Cb + Cr. Blocks whose centre lies in the centre square of
        side 0.875 × the shorter side count (what a resize-and-crop classifier sees).
    """
    a = np.asarray(rgb)
    h, w = a.shape[:2]
    side = CROP_FRACTION * min(h, w)
    y0, x0 = (h - side) / 2, (w - side) / 2
    # Work on the 16-aligned window around the crop (the block grids of both 4:2:0 planes start at
    # the image's corner, so a 16-aligned window keeps them): the rest of the image never counts.
    r0, c0 = int(max(0.0, y0 - 12) // 16 * 16), int(max(0.0, x0 - 12) // 16 * 16)
    r1, c1 = min(h, int(-(-(y0 + side + 12) // 16) * 16)), min(w, int(-(-(x0 + side + 12) // 16) * 16))
    x = np.asarray(a[r0:r1, c0:c1], np.float32)
    if x.ndim == 2:
        comps = [(x - 128.0, 1, True)]
    else:
        # JFIF's YCbCr (what libjpeg encodes); chroma at 4:2:0 as 2×2 means
        ycc = x.reshape(-1, 3) @ _YCC.T
        ycc = ycc.reshape(x.shape)
        h2, w2 = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2

        def sub(c):
            return 0.25 * (c[0:h2:2, 0:w2:2] + c[1:h2:2, 0:w2:2] + c[0:h2:2, 1:w2:2] + c[1:h2:2, 1:w2:2])

        comps = [(ycc[..., 0] - 128.0, 1, True), (sub(ycc[..., 1]), 2, False), (sub(ycc[..., 2]), 2, False)]
    ql = np.stack([t.luma.reshape(64) for t in family.members]).astype(np.float32)
    qc = np.stack([t.chroma.reshape(64) for t in family.members]).astype(np.float32)
    luma = np.zeros((len(family), 64), np.float64)
    chroma = np.zeros(len(family), np.float64)
    for comp, f, is_luma in comps:
        # only the blocks whose centres lie in the crop are transformed (a contiguous range)
        cy = r0 + (np.arange(comp.shape[0] // 8) * 8 + 4) * f
        cx = c0 + (np.arange(comp.shape[1] // 8) * 8 + 4) * f
        rows, cols = np.flatnonzero((cy >= y0) & (cy < y0 + side)), np.flatnonzero((cx >= x0) & (cx < x0 + side))
        if len(rows) and len(cols):
            comp = comp[rows[0] * 8 : (rows[-1] + 1) * 8, cols[0] * 8 : (cols[-1] + 1) * 8]
        c = _block_dct(comp).reshape(-1, 64)
        if not len(c):
            continue
        q = ql if is_luma else qc
        err = np.empty((len(family), 64))
        for k in range(len(family)):  # per member keeps memory at one (blocks, 64) array
            e = c - q[k] * np.round(c / q[k])
            err[k] = np.einsum("nf,nf->f", e, e, dtype=np.float64) / len(c)
        if is_luma:
            luma += err
        else:
            chroma += err.sum(1)
    bands = [luma[:, (_UV >= a) & (_UV <= b)].sum(1) for a, b in BANDS]
    return np.log(np.stack([*bands, chroma], 1) + _ERR_FLOOR).astype(np.float32)


def probe_stats(images: Sequence[np.ndarray], probe) -> np.ndarray:
    """How unsure the probe network is on each stored image.

    Args:
        images: uint8 (H, W, 3) (or (H, W)) stored pixels.
        probe: a :class:`dnnjpeg.models.Model` (its own resize and crop).
    Returns:
        float32 (N, 3): entropy of the softmax (nats), log top-1 probability, log(p1 / p2).
    """
    if not len(images):
        return np.zeros((0, 3), np.float32)
    pre = probe.preprocess
    x = np.stack([pre.geometry(np.repeat(a[..., None], 3, 2) if a.ndim == 2 else a) for a in images])
    logits = probe.logits(x, batch_size=len(x)).astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    p = np.exp(logp)
    top2 = np.sort(logp, 1)[:, -2:]
    return np.stack([-(p * logp).sum(1), top2[:, 1], top2[:, 1] - top2[:, 0]], 1).astype(np.float32)


def member_features(bits: np.ndarray, pixels: np.ndarray, dq: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """The predictor's input per image and member, float32 (N, K, 12) (names: :data:`FEATURE_NAMES`).

    Args:
        bits: (N, K) member file sizes in bits; ``pixels``: (N,) stored pixels per image;
        dq: (N, K, 6) :func:`quantization_error`; ``stats``: (N, 3) :func:`probe_stats`.
    """
    bits = np.asarray(bits, np.float64)
    n, k = bits.shape
    px = np.asarray(pixels, np.float64).reshape(n, 1)
    size = np.stack([np.log(bits / px), np.log(bits / bits.max(1, keepdims=True)), np.log(px / 1e6).repeat(k, 1)], 2)
    st = np.broadcast_to(np.asarray(stats, np.float64)[:, None, :], (n, k, 3))
    return np.concatenate([size, np.asarray(dq, np.float64), st], 2).astype(np.float32)


@dataclass
class QNetData:
    """Training samples. ``bits`` (N, K) member file sizes; ``pixels`` (N,); ``dq`` (N, K, 6)
    quantization errors; ``stats`` (N, 3) probe statistics; ``kl`` (N, K) the classifier's KL (nats)."""

    bits: np.ndarray
    pixels: np.ndarray
    dq: np.ndarray
    stats: np.ndarray
    kl: np.ndarray

    def __len__(self) -> int:
        return len(self.bits)

    def _arrays(self):
        return (self.bits, self.pixels, self.dq, self.stats, self.kl)

    def split(self, n_first: int) -> tuple[QNetData, QNetData]:
        """The first ``n_first`` samples and the rest."""
        return QNetData(*(x[:n_first] for x in self._arrays())), QNetData(*(x[n_first:] for x in self._arrays()))

    @staticmethod
    def concat(parts: Sequence[QNetData]) -> QNetData:
        """All samples of ``parts`` in order."""
        return QNetData(*(np.concatenate(xs) for xs in zip(*(p._arrays() for p in parts))))

    def features(self) -> np.ndarray:
        """(N, K, 12) :func:`member_features`."""
        return member_features(self.bits, self.pixels, self.dq, self.stats)

    def to_bytes(self, key: str = "") -> bytes:
        """An ``.npz`` of the arrays (a cache file), carrying ``key``: the digest of the recipe and
        the source image that made it (:func:`make_samples` reuses it only for the same)."""
        import io

        buf = io.BytesIO()
        np.savez(buf, key=np.array(key), **dict(zip(("bits", "pixels", "dq", "stats", "kl"), self._arrays())))
        return buf.getvalue()

    @staticmethod
    def from_bytes(data: bytes, key: str | None = None, shape: tuple[int, int] | None = None) -> QNetData:
        """The inverse of :meth:`to_bytes` (``key``: the digest it must carry, see :meth:`to_bytes`).

        Args:
            shape: (samples, members) the arrays must have.
        Raises:
            ValueError: not such a file, another key, other shapes, or values that are not finite.
        """
        import io
        import zipfile

        try:
            z = np.load(io.BytesIO(data), allow_pickle=False)
            arrays = {k: z[k] for k in ("bits", "pixels", "dq", "stats", "kl")}
            got = str(z["key"]) if "key" in z.files else None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"not a samples file ({type(e).__name__}: {e})") from None
        if key is not None and got != key:
            raise ValueError("made from another image or another recipe")
        n, k = arrays["kl"].shape if arrays["kl"].ndim == 2 else (-1, -1)
        want = {"bits": (n, k), "pixels": (n,), "dq": (n, k, 6), "stats": (n, 3), "kl": (n, k)}
        if n < 1 or any(arrays[a].shape != s for a, s in want.items()) or (shape is not None and (n, k) != shape):
            raise ValueError(f"arrays of the wrong shapes ({', '.join(f'{a} {v.shape}' for a, v in arrays.items())})")
        if not all(np.isfinite(v.astype(np.float64)).all() for v in arrays.values()) or (arrays["kl"] < 0).any():
            raise ValueError("values that are not finite numbers, or a negative KL")
        return QNetData(*(arrays[a] for a in ("bits", "pixels", "dq", "stats", "kl")))


def _image_samples(img, family, model, probe, augmentations, rng) -> QNetData:
    from dnnjpeg.pipeline import measure_images

    copies = [img] + [augment(img, rng) for _ in range(augmentations)]
    bits, kls = [], []
    # every copy's K + 1 inputs in shared forward passes (dnnjpeg.pipeline)
    for c, kl in measure_images(copies, family.points, model, batch_size=32):
        bits.append(c.bits)
        kls.append(kl)
    return QNetData(
        np.array(bits, np.int64),
        np.array([a.shape[0] * a.shape[1] for a in copies], np.int64),
        np.stack([quantization_error(a, family) for a in copies]),
        probe_stats(copies, probe),
        np.array(kls, np.float64),
    )


def make_samples(
    images: Sequence[np.ndarray | str | Path],
    family: TableFamily,
    model,
    probe,
    augmentations: int = 4,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    cache: str | Path | None = None,
    on_error: Callable[[object, Exception], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> QNetData:
    """Targets from the classifier itself, features from the probe: for every image as given and
    ``augmentations`` augmented copies of it, every member's file size, KL,
    quantization error, and the probe's statistics (K encodes, K + 1 passes, 1 probe pass).

    Args:
        images: uint8 (H, W, 3) stored images or their paths (the design split: never the eval split).
        family: the members to choose among (JPEG of the stored image).
        model: the classifier whose KL is predicted; ``probe``: the network the QNet runs itself.
        seed: image i's augmentations draw from ``default_rng([seed, i])``, so a resumed run
            makes the same samples as an uninterrupted one.
        progress: called with 1 per finished image.
        cache: a folder: each image's samples are written there (atomically) as they finish,
            and images already there are not measured again (a killed run resumes). A saved file is
            reused only when it carries the digest of this recipe (family, model, probe,
            augmentations, seed) and of the source's bytes, and its arrays are whole; any other is
            measured again, with one line to ``on_note``.
        on_error: called with (image, exception) for an image that cannot be read; it is
            skipped. Without it the error propagates.
    """
    from dnnjpeg._fs import display, read_regular
    from dnnjpeg._io import atomic_write_bytes
    from dnnjpeg.codec import load_image

    parts = []
    folder = Path(cache) if cache is not None else None
    recipe = _recipe_digest(family, model, probe, augmentations, seed)
    for i, item in enumerate(images):
        f = folder / f"{i:06d}.npz" if folder is not None else None
        part = None
        try:
            key = _sample_key(recipe, item) if f is not None else ""
            if f is not None and os.path.lexists(f):
                try:
                    part = QNetData.from_bytes(read_regular(f), key, (1 + augmentations, len(family)))
                except (OSError, ValueError) as e:
                    if on_note is not None:
                        on_note(f"{display(f)}: {e}; measured again")
            if part is None:
                img = load_image(item, "RGB") if isinstance(item, (str, Path)) else np.asarray(item)
        except Exception as e:
            if on_error is None:
                raise
            on_error(item, e)
            if progress:
                progress(1)
            continue
        if part is None:
            part = _image_samples(img, family, model, probe, augmentations, np.random.default_rng([seed, i]))
            if f is not None:
                atomic_write_bytes(f, part.to_bytes(key))
        parts.append(part)
        if progress:
            progress(1)
    if not parts:
        raise ValueError("no readable images to make samples from")
    return QNetData.concat(parts)


def _recipe_digest(family: TableFamily, model, probe, augmentations: int, seed: int) -> str:
    """What decides an image's samples besides the image: 16 hex digits."""
    doc = {
        "family": [t.to_dict() for t in family.members], "subsamplings": list(family.subsamplings),
        "model": getattr(model, "name", str(model)), "probe": getattr(probe, "name", str(probe)),
        "augment": augmentations, "seed": seed,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _sample_key(recipe: str, item) -> str:
    """The recipe's digest and the source's content digest (its bytes, not its size or mtime)."""
    from dnnjpeg._fs import read_regular

    data = read_regular(item) if isinstance(item, (str, Path)) else np.ascontiguousarray(item).tobytes()
    return f"{recipe}-{hashlib.sha256(data).hexdigest()[:32]}"


#: probe networks loaded by name in this process
_PROBES: dict[str, object] = {}


def _log_kl(kl: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(kl, np.float64), KL_FLOOR))


@dataclass
class QNet:
    """A trained chooser for one family and one classifier: per member k, a ridge regression
    log KL_k ≈ w_k · (x − mean_k) / std_k + b_k over :func:`member_features`.

    ``weights`` (K, 13) (12 features + intercept), ``mean`` / ``std`` (K, 12); ``model_name`` the
    classifier it predicts; ``probe_name`` the network it runs itself (``probe``: a loaded
    :class:`~dnnjpeg.models.Model`, loaded by name on first use when None).
    """

    weights: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    family: TableFamily
    model_name: str
    probe_name: str
    info: dict = field(default_factory=dict)
    probe: object = None

    def predict_kl(self, bits: np.ndarray, pixels: np.ndarray, dq: np.ndarray, stats: np.ndarray) -> np.ndarray:
        """(N, K) predicted KL in nats from :func:`member_features`' inputs."""
        x = (member_features(bits, pixels, dq, stats) - self.mean) / self.std
        with np.errstate(over="ignore", invalid="ignore"):
            kl = np.exp(np.einsum("nkf,kf->nk", x, self.weights[:, :-1]) + self.weights[:, -1])
        if not np.isfinite(kl).all():  # argmin over inf/NaN would pick member #0 for no reason
            raise ValueError("the QNet's predicted KL is not a finite number for this image")
        return kl

    def get_probe(self):
        """The probe network: ``probe`` when attached, else loaded by name once per process (a QNet
        travels to compress's pool workers without it; each worker loads it once)."""
        if self.probe is not None:
            return self.probe
        if self.probe_name not in _PROBES:
            from dnnjpeg._runtime import one_torch_thread_in_pool_workers
            from dnnjpeg.models import load_model

            one_torch_thread_in_pool_workers()
            _PROBES[self.probe_name] = load_model(self.probe_name)
        return _PROBES[self.probe_name]

    def predict_image(self, rgb: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """(K,) predicted KL (nats) for one stored image uint8 (H, W, 3) whose members' files are ``bits`` (K,)."""
        dq = quantization_error(rgb, self.family)
        st = probe_stats([rgb], self.get_probe())
        return self.predict_kl(np.asarray(bits)[None], np.array([rgb.shape[0] * rgb.shape[1]]), dq[None], st)[0]

    def digest(self) -> str:
        """16 hex digits naming the predictor (recorded beside compress outputs)."""
        h = hashlib.sha256(np.ascontiguousarray(self.weights, np.float64).tobytes())
        h.update(np.ascontiguousarray(self.mean, np.float64).tobytes() + self.probe_name.encode())
        return h.hexdigest()[:16]


def train_qnet(
    data: QNetData,
    family: TableFamily,
    model_name: str,
    probe_name: str = DEFAULT_PROBE,
    alpha: float = 10.0,
) -> QNet:
    """Fit the predictor: per member, ridge regression of log KL on standardized features.

    Closed form, so deterministic: the same samples give the same QNet. ``alpha`` is the ridge
    penalty (10: with the last 50 design images held out, the least regret of 0.1…300 by a hair; it matters
    little).
    """
    if data.kl.shape[1] != len(family):
        raise ValueError(f"the samples hold {data.kl.shape[1]} members, the family {len(family)}")
    if len(data) < 2:
        raise ValueError(f"{len(data)} samples: a QNet needs at least 2")
    x = data.features().astype(np.float64)  # N, K, F
    y = _log_kl(data.kl)
    k, f = x.shape[1], x.shape[2]
    mean, std = x.mean(0), x.std(0) + 1e-6
    weights = np.zeros((k, f + 1))
    pen = alpha * np.eye(f + 1)
    pen[-1, -1] = 0.0  # the intercept is not shrunk
    for j in range(k):
        a = np.c_[(x[:, j] - mean[j]) / std[j], np.ones(len(x))]
        weights[j] = np.linalg.solve(a.T @ a + pen, a.T @ y[:, j])
    return QNet(
        weights, mean.astype(np.float64), std, family, model_name, probe_name, {"n_samples": len(data), "alpha": alpha}
    )


#: the largest |weight| a QNet file may hold (trained ones stay below 100: standardized features, ridge)
MAX_WEIGHT = 1e4


def _numbers(x, key: str) -> np.ndarray:
    """A nested list of JSON numbers as float64; strings, booleans and nulls are refused (NumPy
    would quietly read "1.5" as 1.5)."""
    stack = [x]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{key!r} holds {v!r}, not a number")
    a = np.asarray(x, np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{key!r} holds values that are not finite numbers")
    return a


def save_qnet(q: QNet, path: str | Path) -> Path:
    """A small JSON file: the predictor, the family's tables, the classifier's and the probe's names (atomic)."""
    from dnnjpeg._io import atomic_write_text

    doc = {
        "format": FORMAT,
        "model": q.model_name,
        "probe": q.probe_name,
        "family_name": q.family.name,
        "family": [t.to_dict() for t in q.family.members],
        "subsamplings": list(q.family.subsamplings),
        "optimize": bool(q.family.points[0].optimize),
        "features": list(FEATURE_NAMES),
        "weights": np.asarray(q.weights).tolist(),
        "mean": np.asarray(q.mean).tolist(),
        "std": np.asarray(q.std).tolist(),
        "info": q.info,
    }
    return atomic_write_text(Path(path), json.dumps(doc, indent=1))


def _preset_path(name: str) -> Path:
    from importlib import resources

    f = resources.files("dnnjpeg.presets").joinpath("qnet", f"{name}.json")
    if not name or "/" in name or not f.is_file():
        raise ValueError(f"unknown QNet preset {name!r}; shipped: efficientnet-lite0-qnet")
    return Path(str(f))


def load_qnet(path: str | Path, family: TableFamily | None = None, model_name: str | None = None) -> QNet:
    """Read a QNet file (or ``preset:NAME``, a shipped one); with ``family`` / ``model_name`` check
    it was trained for them.

    Raises:
        ValueError: not a QNet file, the first form's (retrain it), or trained for other tables
            or another classifier (named).
    """
    from dnnjpeg._fs import display, open_regular, read_json
    from dnnjpeg.families import CodecSpec

    if isinstance(path, str) and path.startswith("preset:"):
        path = _preset_path(path.split(":", 1)[1])
    with open_regular(path) as f:
        if f.read(2) == b"PK":
            raise ValueError(f"{display(path)}: a QNet of the first form (dnnjpeg.qnet/1, a thumbnail CNN): retrain it")
    try:
        doc = read_json(path)  # size and nesting depth capped before parsing
    except ValueError as e:
        raise ValueError(f"{display(path)}: not a QNet file ({str(e).removeprefix(display(path) + ': ')})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{display(path)}: not a QNet file (format {got!r}, expected {FORMAT!r})")
    try:
        members = [QuantTables.from_dict(t) for t in doc["family"]]
        subs = [str(s) for s in doc["subsamplings"]]
        opt = bool(doc.get("optimize", True))
        w, mean, std = (_numbers(doc[k], k) for k in ("weights", "mean", "std"))
        k, nf = len(members), len(FEATURE_NAMES)
        if len(subs) != k or w.shape != (k, nf + 1) or mean.shape != (k, nf) or std.shape != (k, nf):
            raise ValueError(f"shapes {w.shape}, {mean.shape}, {std.shape} do not fit {k} members × {nf} features")
        # A ridge fit on standardized features has small weights; huge ones overflow exp() to inf
        # for every member, and the choice then falls on member #0 whatever the image.
        if not (np.abs(w).max() <= MAX_WEIGHT and np.abs(mean).max() <= 1e12 and (std > 0).all()
                and std.max() <= 1e12):  # fmt: skip
            raise ValueError(f"weights outside a trained QNet's range (|weight| ≤ {MAX_WEIGHT:g}, std > 0)")
        model, probe, name = str(doc["model"]), str(doc["probe"]), str(doc["family_name"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{display(path)}: a broken QNet file ({type(e).__name__}: {e})") from None
    points = tuple(CodecSpec(t, s, opt, tag=f"#{i}") for i, (t, s) in enumerate(zip(members, subs)))
    fam = TableFamily(name, points, "tables")
    if family is not None and (family.members != fam.members or family.subsamplings != fam.subsamplings):
        raise ValueError(f"{display(path)}: trained for the family {name!r}, not for {family.name!r}")
    if model_name is not None and model_name != model:
        raise ValueError(f"{display(path)}: trained to predict {model}, not {model_name}")
    return QNet(w, mean, std, fam, model, probe, dict(doc.get("info") or {}))


def _qnet_family(text: str, arg: str, subsampling: str | None) -> TableFamily:
    """``qnet:FILE`` / ``qnet:preset:NAME``: the QNet's own family, carrying the QNet (its choice)."""
    from dataclasses import replace

    if not arg:
        raise ValueError(f"--codec {text!r}: give a QNet file or preset, e.g. qnet:preset:efficientnet-lite0-qnet")
    if subsampling is not None:
        raise ValueError(f"--codec {text!r}: a QNet chooses among its own family's subsamplings; drop @{subsampling}")
    q = load_qnet(arg)
    return replace(q.family, name=f"qnet:{arg} members", qnet=q)


register_family_kind("qnet", _qnet_family)
