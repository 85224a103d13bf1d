"""Carrying a JPEG's metadata over to its re-encode: EXIF (with its orientation), XMP, ICC profile,
IPTC and comments.

Pillow writes a fresh header (JFIF APP0, tables, frame); the segments that describe the picture
rather than its coding are copied from the source bytes as they are. Copied: APP1 (EXIF, XMP),
APP2 (ICC profile, in as many chunks as it had), APP13 (IPTC/Photoshop) and COM. Not copied: APP0
(the encoder writes its own), APP14 (Adobe's colour transform flag describes the *source's* coding
and would make a decoder read the new YCbCr file wrongly), and every other APPn (vendor data about
the old coding). The MPF index of an MPO file (APP2 "MPF") is not copied: it points at frames after
the first image's end, which a re-encode does not carry. An ICC profile of a four-component (CMYK
or YCCK) source is not copied either: it describes ink, and the re-encode is RGB (a colour-managed
viewer would apply it to the wrong values).
"""

from __future__ import annotations

from dnnjpeg.codec.errors import CorruptJpegError
from dnnjpeg.codec.header import _segments

__all__ = ["KEPT_MARKERS", "metadata_segments", "with_metadata", "without_metadata"]

#: the marker bytes whose segments a re-encode keeps: APP1, APP2, APP13, COM
KEPT_MARKERS = (0xE1, 0xE2, 0xED, 0xFE)


def metadata_segments(jpeg: bytes) -> list[bytes]:
    """The whole segments (marker, length and payload) of ``jpeg`` worth keeping, in file order.

    Args:
        jpeg: a JPEG file's bytes (anything else gives []).
    Returns:
        a list of byte strings, each ``FF xx LL LL payload``; [] when the header cannot be parsed.
    """
    if jpeg[:2] != b"\xff\xd8":
        return []
    out, components = [], None
    try:
        for marker, at, payload in _segments(jpeg, "<source>", True, []):
            if marker == 0xDA:  # start of scan: the header is over
                break
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and len(payload) > 5:
                components = payload[5]  # a frame header: precision, height, width, then Nf
            if marker in KEPT_MARKERS and not (marker == 0xE2 and payload[:4] == b"MPF\x00"):
                out.append((marker, jpeg[at : at + 4 + len(payload)]))
    except CorruptJpegError:
        return []
    ink = components == 4  # (the profile may come before the frame header: filtered at the end)
    return [seg for marker, seg in out if not (ink and marker == 0xE2 and seg[4:16] == b"ICC_PROFILE\x00")]


def with_metadata(encoded: bytes, segments: list[bytes]) -> bytes:
    """``encoded`` (a JPEG Pillow wrote) with ``segments`` inserted after its SOI and JFIF APP0, where
    readers look for EXIF; the encoder's own segments are kept. Unchanged when ``segments`` is empty."""
    if not segments:
        return encoded
    pos = 2
    if encoded[2:4] == b"\xff\xe0":  # the encoder's JFIF APP0 stays first, as the JFIF format wants
        pos = 4 + int.from_bytes(encoded[4:6], "big")
    # EXIF readers expect APP1 right after SOI/APP0; an APP0 of the source is never among ``segments``
    return encoded[:pos] + b"".join(segments) + encoded[pos:]


def without_metadata(jpeg: bytes) -> bytes:
    """``jpeg`` with every segment of :data:`KEPT_MARKERS` removed from its header (EXIF, XMP, ICC,
    MPF, IPTC, comments): a lossless edit, the coded picture byte for byte (``--strip-metadata`` on a
    source kept as it is). Unchanged when the header cannot be parsed (it is then no JPEG to keep)."""
    if jpeg[:2] != b"\xff\xd8":
        return jpeg
    cut = []
    try:
        for marker, at, payload in _segments(jpeg, "<source>", True, []):
            if marker == 0xDA:
                break
            if marker in KEPT_MARKERS:
                cut.append((at, at + 4 + len(payload)))
    except CorruptJpegError:
        return jpeg
    parts, pos = [], 0
    for a, b in cut:
        parts.append(jpeg[pos:a])
        pos = b
    return b"".join(parts) + jpeg[pos:]
