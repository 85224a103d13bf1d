"""Reading a user's image file safely: regular files only, decoder warnings as errors.

Why not just ``Image.open``: Pillow opens a FIFO and waits forever, and it decodes
a JPEG whose scan data is corrupt (libjpeg's "Corrupt JPEG data", "premature end of
data segment") silently into garbage.  Here the file is read only if it is a
regular file, its header is checked (sizes, precision) before anything is
allocated, and a JPEG is first decoded strictly by libjpeg-turbo through
simplejpeg, whose ``strict`` mode turns libjpeg's warnings into errors — Pillow
discards them.  The pixels themselves still come from Pillow, the decoder of
record everywhere else in dnnjpeg.

What this cannot see: corruption that libjpeg itself decodes without a warning
(a Huffman stream that re-synchronizes after a flipped byte); see the README's
reliability section for how often that happens.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from dnnjpeg._fs import display, read_regular
from dnnjpeg.codec.errors import CorruptJpegError, JpegError, NotAJpegError, UnsupportedJpegError
from dnnjpeg.codec.header import parse_header_bytes, sniff_format
from dnnjpeg.codec.strict import libjpeg_check, libjpeg_pixels, refused_layout

__all__ = ["MAX_PIXELS", "ImageTooLargeError", "load_image", "decode_image_bytes", "check_jpeg_data"]

#: Pillow's decompression-bomb limit (about 89 megapixels): larger images are refused.
MAX_PIXELS: int = int(Image.MAX_IMAGE_PIXELS or 89_478_485)

# A decoder's warning is a per-file error: Pillow's decompression-bomb warning (between
# MAX_PIXELS and twice that; above, Pillow raises) must not let such an image through.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


class ImageTooLargeError(JpegError):
    """The image declares more pixels than :data:`MAX_PIXELS` (a decompression bomb?)."""


def _check_size(path: str, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageTooLargeError(
            path,
            f"{width}×{height} = {width * height:,} pixels, over the limit of {MAX_PIXELS:,} (a decompression bomb?)",
        )


def _strict_decode(data: bytes, path: str, pixels: str | None = None) -> tuple[np.ndarray | None, int]:
    """Decode ``data`` strictly; returns (pixels or None, component count). ``pixels="auto"``
    returns (H, W, 1) gray or (H, W, 3) RGB for 1- and 3-component files; else only a check."""
    import simplejpeg

    h = parse_header_bytes(data, path)
    if h.precision != 8:
        raise UnsupportedJpegError(path, f"{h.precision}-bit samples: only 8-bit JPEG can be decoded")
    if h.mode in ("lossless", "hierarchical"):
        raise UnsupportedJpegError(path, f"{h.mode} JPEG is not supported")
    _check_size(path, h.width, max(h.height, 1))
    if pixels is None or h.n_components not in (1, 3):
        # only a check: gray output skips chroma up-sampling and color conversion, while every
        # component's scan data is still entropy-decoded, which is where corruption shows
        colorspace, keep = ("CMYK" if h.n_components == 4 else "GRAY"), False
    else:
        colorspace, keep = ("GRAY" if h.n_components == 1 else "RGB"), True
    try:
        a = simplejpeg.decode_jpeg(data, colorspace=colorspace, strict=True)
    except ValueError as e:
        if not refused_layout(e):
            raise CorruptJpegError(path, f"libjpeg: {e}") from None
        # a layout the TurboJPEG API refuses (4:1:0, mixed factors) that libjpeg itself decodes
        if not keep:
            libjpeg_check(data, path)
            return None, h.n_components
        a = libjpeg_pixels(data, path, gray=h.n_components == 1)
    return (a if keep else None), h.n_components


def check_jpeg_data(data: bytes, path: str = "<bytes>") -> None:
    """Decode ``data`` strictly (libjpeg-turbo via simplejpeg) and raise on any warning.

    Raises:
        NotAJpegError, CorruptJpegError (libjpeg's warnings and errors, named),
        UnsupportedJpegError (not 8-bit, lossless, hierarchical), ImageTooLargeError.
    """
    _strict_decode(data, path)


def load_image(path: str | os.PathLike[str], mode: str | None = None) -> np.ndarray:
    """Decode an image file as stored (EXIF orientation not applied) to a uint8 array.

    Args:
        path: a regular file (or a link to one): JPEG, PNG, BMP, WebP, TIFF, PPM/PGM.
        mode: "RGB" → (H, W, 3); "L" → (H, W); None keeps gray images gray (H, W) and
            turns everything else into RGB (H, W, 3).
    Raises (each naming the file):
        NotRegularFileError (FIFO, device...), OSError (missing, unreadable),
        NotAJpegError (an unreadable non-image), CorruptJpegError (a JPEG with any
        libjpeg warning, truncated data, a broken file of another format),
        UnsupportedJpegError, ImageTooLargeError.
    """
    p = os.fspath(path)
    return decode_image_bytes(read_regular(p), display(p), mode)


def decode_image_bytes(data: bytes, name: str, mode: str | None = None, require_jpeg: bool = False) -> np.ndarray:
    """:func:`load_image` on bytes already read; ``name`` names the source in errors.

    ``require_jpeg``: anything but a JPEG is a :class:`NotAJpegError` (what ``decode_file`` wants).
    """
    if not data:
        raise NotAJpegError(name, "empty file (0 bytes)", "empty")
    fmt = sniff_format(data[:64])
    if require_jpeg and fmt != "JPEG":
        raise NotAJpegError(name, f"not a JPEG (content looks like {fmt})", fmt)
    if fmt == "JPEG":
        # Gray and YCbCr files: the strict decode's pixels are the image (libjpeg-turbo with the
        # same settings as Pillow's; identical on all 1000 imagenet-sample files and 144 Kodak
        # re-encodes, tested), so each file is decoded once. CMYK/YCCK go through Pillow after the check.
        a, nc = _strict_decode(data, name, "auto")
        if a is not None:
            if nc == 1:
                g = np.ascontiguousarray(a[..., 0])
                return np.repeat(g[..., None], 3, axis=2) if mode == "RGB" else g
            return np.asarray(Image.fromarray(a).convert("L")) if mode == "L" else a
    try:
        with Image.open(io.BytesIO(data)) as im:
            _check_size(name, *im.size)
            im.load()
            if mode is None:
                mode = "L" if im.mode in ("1", "L", "LA", "I;16", "I", "F") else "RGB"
            if im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")  # the direct conversion warns; the transparency is dropped either way
            return np.asarray(im if im.mode == mode else im.convert(mode))
    except JpegError:
        raise
    except UnidentifiedImageError:
        raise NotAJpegError(name, f"cannot be read as an image (content looks like {fmt})", fmt) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(name, str(e)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CorruptJpegError(name, f"decode failed ({fmt}): {e}") from None
