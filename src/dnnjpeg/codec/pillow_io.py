"""Encode with given quantization tables and decode, through Pillow's libjpeg-turbo.

Pillow is the encoder of record: the bytes it writes are what a user's files
will hold, so every rate dnnjpeg reports is the length of a real file.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from dnnjpeg.codec.errors import CorruptJpegError, NotAJpegError
from dnnjpeg.codec.header import sniff_format
from dnnjpeg.codec.tables import QuantTables
from dnnjpeg.conventions import SUBSAMPLINGS, Subsampling

__all__ = ["SUBSAMPLINGS", "Subsampling", "encode", "decode", "decode_file", "as_pil", "resize_shorter", "RESAMPLE"]

#: The chroma subsamplings Pillow's encoder can write.


def as_pil(image: np.ndarray | Image.Image) -> Image.Image:
    """uint8 array (H, W, 3) RGB or (H, W) gray, or a PIL image → PIL image in RGB or L."""
    if isinstance(image, Image.Image):
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"image array must be uint8, got {a.dtype}")
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
        return Image.fromarray(a.reshape(a.shape[0], a.shape[1]), "L")
    if a.ndim == 3 and a.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(a), "RGB")
    raise ValueError(f"image array must be (H, W, 3) or (H, W), got shape {a.shape}")


def encode(
    image: np.ndarray | Image.Image,
    tables: QuantTables,
    subsampling: str = "4:2:0",
    optimize: bool = True,
    progressive: bool = False,
) -> bytes:
    """Encode an image as a JPEG file with exactly ``tables``.

    Args:
        image: uint8 (H, W, 3) RGB or (H, W) gray array, or a PIL image.
        tables: luma/chroma tables in natural order (baseline: entries 1..255).
        subsampling: "4:4:4", "4:2:2" or "4:2:0" (ignored for gray images).
        optimize: optimal Huffman tables (two-pass); the honest rate of a stored file.
        progressive: write a progressive JPEG instead of baseline sequential.

    Returns:
        The complete JPEG file as bytes.
    """
    if tables.extended:
        raise ValueError("Pillow writes 8-bit (baseline) tables only; got extended tables with entries > 255")
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"subsampling {subsampling!r} is not one Pillow can write; use one of {SUBSAMPLINGS}")
    im = as_pil(image)
    buf = io.BytesIO()
    # qtables without quality: Pillow hands the natural-order tables to
    # jpeg_add_quant_table unscaled (scale 100, force_baseline).
    im.save(
        buf,
        "JPEG",
        qtables=tables.pillow_qtables(1 if im.mode == "L" else 2),
        subsampling=subsampling,
        optimize=optimize,
        progressive=progressive,
    )
    return buf.getvalue()


def _open(src: io.BytesIO | str, label: str) -> Image.Image:
    try:
        im = Image.open(src)
        if im.format != "JPEG":
            raise NotAJpegError(label, f"not a JPEG (Pillow reads it as {im.format})", im.format)
        im.load()
        return im
    except UnidentifiedImageError as e:
        head = src.getvalue()[:64] if isinstance(src, io.BytesIO) else open(src, "rb").read(64)
        fmt = sniff_format(head)
        raise NotAJpegError(label, f"cannot be read as an image (content looks like {fmt})", fmt) from e
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, (NotAJpegError, FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise CorruptJpegError(label, f"decode failed: {e}") from e


def decode(data: bytes, mode: str = "RGB", path: str = "<bytes>") -> np.ndarray:
    """Decode JPEG bytes to a uint8 array: (H, W, 3) for ``mode="RGB"``, (H, W) for ``"L"``.

    Raises NotAJpegError / CorruptJpegError (truncated data included).
    """
    if not data:
        raise NotAJpegError(path, "empty data (0 bytes)", "empty")
    im = _open(io.BytesIO(data), path)
    return np.asarray(im.convert(mode) if im.mode != mode else im)


def decode_file(path: str | os.PathLike[str], mode: str = "RGB") -> np.ndarray:
    """Decode a JPEG file to uint8 (H, W, 3) RGB (or (H, W) for ``mode="L"``); errors name the file.

    Only a regular file is opened, anything but a JPEG is a :class:`NotAJpegError`, and a libjpeg
    warning (corrupt or truncated scan data) is an error: the strict reader of
    :func:`dnnjpeg.codec.files.load_image`, one decode per file.
    """
    from dnnjpeg._fs import display, read_regular
    from dnnjpeg.codec.files import decode_image_bytes

    p = os.fspath(path)
    return decode_image_bytes(read_regular(p), display(p), mode, require_jpeg=True)


#: Pillow's resampling filters by name (antialiased when they shrink: the filter support scales).
RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST, "lanczos": Image.LANCZOS}


def resize_shorter(image: np.ndarray, side: int, interpolation: str = "bilinear") -> np.ndarray:
    """``image`` with its shorter side brought down to ``side`` pixels, aspect kept, never enlarged.

    The new size is (round(W·s), round(H·s)) with s = side / min(W, H), the rounding a classifier's
    resize uses (:meth:`dnnjpeg.models.Preprocess.geometry`): resized here with the classifier's own
    filter, its preprocessing then resizes by exactly 1 (Pillow copies) and reads the same pixels.

    Args:
        image: uint8 (H, W, 3) RGB or (H, W) gray.
        side: the shorter side in pixels (≥ 1).
        interpolation: a key of :data:`RESAMPLE`.
    Returns:
        uint8 (H', W'[, 3]); ``image`` itself when min(H, W) ≤ ``side``.
    """
    if side < 1:
        raise ValueError(f"resize to a shorter side of {side} px: must be ≥ 1")
    if interpolation not in RESAMPLE:
        raise ValueError(f"interpolation {interpolation!r} not in {sorted(RESAMPLE)}")
    h, w = image.shape[:2]
    if min(h, w) <= side:
        return image
    s = side / min(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((nw, nh), RESAMPLE[interpolation]))
