"""jpegli, the encoder a user would try first, as a peer codec (through pyjpegli).

jpegli picks its own tables for a quality (fixed per quality, read back here from a tiny
encode), adds adaptive quantization per block, and writes baseline 4:2:0 files with
optimized Huffman codes. dnnjpeg measures it beside the libjpeg ladder; it cannot write
dnnjpeg's tables, so it is a codec for ``evaluate``, not for ``compress``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dnnjpeg.codec.header import parse_header_bytes
from dnnjpeg.codec.tables import QuantTables

__all__ = ["encode_jpegli", "jpegli_tables"]


def encode_jpegli(image: np.ndarray, quality: int) -> bytes:
    """Encode uint8 (H, W, 3) RGB (or (H, W) gray, sent as RGB) with jpegli at ``quality`` 1..100.

    Returns the complete JPEG file (baseline, 4:2:0 as jpegli chooses).
    """
    import pyjpegli

    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"image array must be uint8, got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"image array must be (H, W, 3) or (H, W), got shape {a.shape}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"jpegli quality must be in 1..100, got {quality}")
    return pyjpegli.encode(np.ascontiguousarray(a).tobytes(), a.shape[1], a.shape[0], int(quality))


@lru_cache(maxsize=128)
def jpegli_tables(quality: int) -> QuantTables:
    """The luma/chroma tables jpegli writes at ``quality`` (natural order), read from a 16×16 encode."""
    h = parse_header_bytes(encode_jpegli(np.full((16, 16, 3), 128, np.uint8), quality))
    return h.quant_tables()
