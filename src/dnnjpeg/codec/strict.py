"""libjpeg-turbo's own verdict on a JPEG file: every warning it would print is an error here.

Why: a decoder that warns ("Corrupt JPEG data: premature end of data segment", "N extraneous
bytes before marker", "Premature end of JPEG file") still hands back an image, made up where the
data was damaged. dnnjpeg refuses such files everywhere, so that the pixel path and the
coefficient path read exactly the same set of files.

Two routes, both libjpeg-turbo:

* simplejpeg (TurboJPEG API, ``strict=True``): fast, thread-safe; the check decodes at the
  smallest scale, so the entropy decoder (where the warnings arise) runs in full and the IDCT
  almost not at all.
* jpeglib's build of libjpeg-turbo 2.1, for the sampling layouts the TurboJPEG API refuses
  ("Could not determine subsampling level": 4:1:0, mixed factors) although libjpeg decodes them.
  Its warnings go to the process's stderr, which is captured around the call; the call holds a
  process-wide lock (these files are rare).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading

import numpy as np

from dnnjpeg.codec.errors import CorruptJpegError, JpegError

__all__ = ["libjpeg_check", "libjpeg_pixels", "jpeglib_turbo", "refused_layout"]

_LOCK = threading.RLock()
_VERSION = "turbo210"
_SET: list[bool] = []


def jpeglib_turbo():
    """The jpeglib module set to its libjpeg-turbo build (MJPEG frames without Huffman tables get the
    standard ones, as in every libjpeg-turbo; jpeglib's default, libjpeg 6b, refuses them)."""
    import jpeglib

    if not _SET:
        jpeglib.version.set(_VERSION)
        _SET.append(True)
    return jpeglib


def refused_layout(e: Exception) -> bool:
    """Whether a simplejpeg error is the TurboJPEG API refusing a sampling layout (not damage)."""
    return "subsampling level" in str(e)


def libjpeg_check(data: bytes, path: str = "<bytes>") -> None:
    """Raise :class:`CorruptJpegError` when libjpeg-turbo warns about or fails on ``data``.

    Args:
        data: a whole JPEG file (8-bit; the header is checked by the caller).
        path: names the file in the error.
    """
    import simplejpeg

    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True, min_height=1, min_width=1)
        return
    except ValueError as e:
        if not refused_layout(e):
            raise CorruptJpegError(path, f"libjpeg: {e}") from None
    _jpeglib_read(data, path, pixels=False)


def libjpeg_pixels(data: bytes, path: str = "<bytes>", gray: bool = False) -> np.ndarray:
    """Pixels of a file whose layout the TurboJPEG API refuses, by libjpeg-turbo through jpeglib,
    any warning an error: uint8 (H, W, 3) RGB, or (H, W, 1) with ``gray``."""
    return _jpeglib_read(data, path, pixels=True, gray=gray)


def _jpeglib_read(data: bytes, path: str, pixels: bool, gray: bool = False):
    """jpeglib on ``data`` (through a private temporary file: it reads paths), its stderr captured."""
    jpeglib = jpeglib_turbo()
    with _LOCK, tempfile.TemporaryDirectory(prefix="dnnjpeg-") as d:
        tmp = os.path.join(d, "image.jpg")
        with open(tmp, "wb") as f:
            f.write(data)
        out, failure = None, None
        with open(os.path.join(d, "messages"), "w+b") as log:
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(log.fileno(), 2)
            try:
                if pixels:
                    im = jpeglib.read_spatial(tmp, out_color_space=jpeglib.JCS_GRAYSCALE if gray else jpeglib.JCS_RGB)
                    out = np.ascontiguousarray(im.spatial)
                else:
                    d_ = jpeglib.read_dct(tmp)
                    _ = d_.Y  # reading the coefficients runs the whole entropy decoder
            except Exception as e:  # noqa: BLE001 — libjpeg's errors surface as assorted types
                failure = e
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            log.seek(0)
            text = log.read().decode("utf-8", "replace")
    # a line with an escape sequence is another thread's terminal output (a progress bar), not libjpeg
    messages = [ln.strip() for ln in text.splitlines() if ln.strip() and "\x1b" not in ln]
    if messages:
        raise CorruptJpegError(path, f"libjpeg: {messages[0]}")
    if failure is not None:
        if isinstance(failure, JpegError):
            raise failure
        raise CorruptJpegError(path, f"libjpeg: {failure}")
    return out
