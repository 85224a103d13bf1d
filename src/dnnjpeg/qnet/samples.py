"""Training samples: the classifier's own KL on every member of augmented design images, kept per image
so a killed run resumes (each file checked against its recipe and source bytes)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnnjpeg.families import TableFamily
from dnnjpeg.qnet.features import augment, member_features, probe_stats, quantization_error


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
    from dnnjpeg._io import atomic_write_bytes
    from dnnjpeg.codec import load_image

    parts, tick = [], progress or (lambda k: None)
    folder = Path(cache) if cache is not None else None
    recipe = _recipe_digest(family, model, probe, augmentations, seed)
    for i, item in enumerate(images):
        f = folder / f"{i:06d}.npz" if folder is not None else None
        part = None
        try:
            key = _sample_key(recipe, item) if f is not None else ""
            part = _saved(f, key, (1 + augmentations, len(family)), on_note)
            if part is None:
                img = load_image(item, "RGB") if isinstance(item, (str, Path)) else np.asarray(item)
        except Exception as e:
            if on_error is None:
                raise
            on_error(item, e)
            tick(1)
            continue
        if part is None:
            part = _image_samples(img, family, model, probe, augmentations, np.random.default_rng([seed, i]))
            if f is not None:
                atomic_write_bytes(f, part.to_bytes(key))
        parts.append(part)
        tick(1)
    if not parts:
        raise ValueError("no readable images to make samples from")
    return QNetData.concat(parts)


def _saved(f: Path | None, key: str, shape: tuple[int, int], on_note) -> QNetData | None:
    """A saved sample file when it is whole and carries ``key``; else None (said to ``on_note``)."""
    from dnnjpeg._fs import display, read_regular

    if f is None or not os.path.lexists(f):
        return None
    try:
        return QNetData.from_bytes(read_regular(f), key, shape)
    except (OSError, ValueError) as e:
        if on_note is not None:
            on_note(f"{display(f)}: {e}; measured again")
        return None


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
