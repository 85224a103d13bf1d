"""Builders of JPEG test files with known properties (Pillow and jpeglib write them)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def noise_image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth-ish content so quantization matters but files stay small
    base = rng.integers(0, 256, (max(1, h // 4 + 1), max(1, w // 4 + 1), channels), dtype=np.uint8)
    img = np.asarray(Image.fromarray(base[..., 0] if channels == 1 else base).resize((w, h), Image.BILINEAR))
    return img


def pillow_jpeg(img: np.ndarray, **save_args) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", **save_args)
    return buf.getvalue()


def exif_with_orientation(o: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = o
    return ex.tobytes()


def jpeglib_jpeg(img: np.ndarray, sampling_hv: tuple[tuple[int, int], ...], path: Path, quality: int = 75) -> Path:
    import jpeglib

    im = jpeglib.from_spatial(img)
    im.samp_factor = np.array([(v, h) for h, v in sampling_hv])  # jpeglib wants (v, h)
    im.write_spatial(str(path), qt=quality)
    return path


def set_sof(data: bytes, marker: int, precision: int | None = None) -> bytes:
    """Rewrite the SOF marker type (and precision) of a baseline JPEG's header."""
    i = data.index(b"\xff\xc0")
    b = bytearray(data)
    b[i + 1] = marker
    if precision is not None:
        b[i + 4] = precision
    return bytes(b)


def insert_app_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """Insert an APPn segment right after SOI (payloads over 65533 bytes are split)."""
    out = bytearray(data[:2])
    for k in range(0, len(payload), 65533):
        chunk = payload[k : k + 65533]
        out += bytes([0xFF, marker]) + (len(chunk) + 2).to_bytes(2, "big") + chunk
    return bytes(out + data[2:])
