"""Typed errors of the codec layer. Each names the file and the cause."""

from __future__ import annotations

__all__ = ["JpegError", "NotAJpegError", "CorruptJpegError", "UnsupportedJpegError"]


class JpegError(Exception):
    """Base of every error the codec raises about a file's content.

    Attributes:
        path: the file (or ``"<bytes>"`` for in-memory data).
        cause: a short human-readable reason.
    """

    def __init__(self, path: object, cause: str) -> None:
        from dnnjpeg._fs import display

        self.path = str(path)
        self.cause = cause
        super().__init__(f"{display(self.path)}: {cause}")


class NotAJpegError(JpegError):
    """The data does not start with a JPEG SOI marker (empty, PNG, random bytes...)."""

    def __init__(self, path: object, cause: str, detected_format: str | None = None) -> None:
        self.detected_format = detected_format
        super().__init__(path, cause)


class CorruptJpegError(JpegError):
    """The data starts as a JPEG but its marker structure is broken or truncated."""


class UnsupportedJpegError(JpegError):
    """A valid JPEG that this operation cannot handle (12-bit, arithmetic, lossless...)."""
