"""JPEG header parsing without decoding: a pure-Python walk over marker segments.

Why by hand: Pillow and jpeglib both start libjpeg's decoder, which allocates
and sets up far more than a survey needs (about 10× slower per file), and
neither reports everything at once (e.g. all DQT tables with their precision,
the SOF type, APP14's transform and EXIF orientation together).  The parser
reads a file's head only, falling back to the whole file when the start of scan
lies further (large APP segments such as ICC profiles or EXIF thumbnails).

It never hangs (every step advances) and raises only the typed errors of
:mod:`dnnjpeg.codec.errors`.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dnnjpeg._fs import open_regular
from dnnjpeg.codec.errors import CorruptJpegError, NotAJpegError
from dnnjpeg.codec.tables import INVERSE_ZIGZAG, QuantTables

__all__ = ["Component", "JpegHeader", "parse_header", "parse_header_bytes", "sniff_format", "subsampling_name"]

HEAD_BYTES = 16384  # first read; most headers (no ICC/EXIF thumbnail) fit in 1-2 KiB
# libjpeg skips any run of bytes that is not a marker; a header walk gives up after this
# many, so that a huge file of zeros (or 0xFF fill) after an SOI is not read to its end.
MAX_JUNK = 65536
TAIL_BYTES = 64  # where an end-of-image marker is looked for

# SOF marker -> (mode, arithmetic)
_SOF = {
    0xC0: ("baseline", False),
    0xC1: ("extended", False),
    0xC2: ("progressive", False),
    0xC3: ("lossless", False),
    0xC5: ("hierarchical", False),
    0xC6: ("hierarchical", False),
    0xC7: ("hierarchical", False),
    0xC9: ("extended", True),
    0xCA: ("progressive", True),
    0xCB: ("lossless", True),
    0xCD: ("hierarchical", True),
    0xCE: ("hierarchical", True),
    0xCF: ("hierarchical", True),
}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RST0..7 carry no length

_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"PK\x03\x04", "ZIP"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG2000"),
    (b"\xff\x4f\xff\x51", "JPEG2000"),
    (b"\xff\x0a", "JPEGXL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEGXL"),
    (b"8BPS", "PSD"),
    (b"\x1f\x8b", "GZIP"),
]


def sniff_format(head: bytes) -> str:
    """Name the real format of a file from its first bytes ("JPEG", "PNG", "WEBP", "empty", "unknown"...)."""
    if not head:
        return "empty"
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "AVIF" if brand in (b"avif", b"avis") else "HEIF" if brand[:3] in (b"hei", b"mif", b"hev") else "MP4"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    sample = head[:512]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return "text"
    return "unknown"


@dataclass(frozen=True, slots=True)
class Component:
    """One frame component: id, horizontal/vertical sampling factors, quantization table slot."""

    id: int
    h: int
    v: int
    tq: int


def subsampling_name(components: tuple[Component, ...]) -> str:
    """4:4:4, 4:2:2, 4:2:0, 4:1:1, 4:4:0, gray, or other — luma's factors over chroma's."""
    if len(components) == 1:
        return "gray"
    if len(components) not in (3, 4):
        return "other"
    c0, rest = components[0], components[1:]
    if len(components) == 4:
        # CMYK/YCCK: name it only when every channel shares one sampling.
        return "4:4:4" if all((c.h, c.v) == (c0.h, c0.v) for c in rest) else "other"
    c1, c2 = rest
    if (c1.h, c1.v) != (c2.h, c2.v) or c0.h % c1.h or c0.v % c1.v:
        return "other"
    return {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (4, 1): "4:1:1", (1, 2): "4:4:0"}.get(
        (c0.h // c1.h, c0.v // c1.v), "other"
    )


@dataclass(frozen=True, slots=True)
class JpegHeader:
    """Everything the marker segments up to the first SOS say about a JPEG.

    Sizes are in pixels; ``qtables`` maps DQT slot (0..3) → uint16 (8, 8) natural order.
    """

    path: str
    file_size: int
    width: int
    height: int
    precision: int
    components: tuple[Component, ...]
    subsampling: str
    qtables: dict[int, np.ndarray]
    qtable_bits: dict[int, int]
    sof_marker: int
    mode: str  # baseline | extended | progressive | lossless | hierarchical
    arithmetic: bool
    color: str  # gray | YCbCr | RGB | CMYK | YCCK | other
    adobe_transform: int | None
    jfif: bool
    exif: bool
    orientation: int | None
    restart_interval: int
    eoi_found: bool | None
    warnings: tuple[str, ...] = field(default=())

    @property
    def n_components(self) -> int:
        return len(self.components)

    @property
    def is_grayscale(self) -> bool:
        return len(self.components) == 1

    @property
    def progressive(self) -> bool:
        return self.mode == "progressive"

    @property
    def luma_table(self) -> np.ndarray | None:
        """Table used by the first component, (8, 8) natural order, or None if missing."""
        return self.qtables.get(self.components[0].tq)

    @property
    def chroma_table(self) -> np.ndarray | None:
        """Table used by the second component, or None for grayscale / missing."""
        if len(self.components) < 2:
            return None
        return self.qtables.get(self.components[1].tq)

    def quant_tables(self) -> QuantTables:
        """The luma/chroma pair as :class:`QuantTables` (chroma = luma for grayscale)."""
        luma = self.luma_table
        if luma is None:
            raise CorruptJpegError(
                self.path, f"component 0 uses quantization table {self.components[0].tq}, never defined"
            )
        chroma = self.chroma_table
        big = int(luma.max()) > 255 or (chroma is not None and int(chroma.max()) > 255)
        return QuantTables(luma, chroma, extended=big)

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown after applying EXIF orientation (5..8 swap axes)."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height

    def to_dict(self) -> dict:
        """JSON-ready summary (tables as 8×8 lists keyed by slot)."""
        return {
            "path": self.path,
            "file_size": self.file_size,
            "width": self.width,
            "height": self.height,
            "precision": self.precision,
            "components": [[c.id, c.h, c.v, c.tq] for c in self.components],
            "subsampling": self.subsampling,
            "mode": self.mode,
            "arithmetic": self.arithmetic,
            "color": self.color,
            "adobe_transform": self.adobe_transform,
            "jfif": self.jfif,
            "exif": self.exif,
            "orientation": self.orientation,
            "restart_interval": self.restart_interval,
            "eoi_found": self.eoi_found,
            "qtables": {str(k): v.astype(int).tolist() for k, v in sorted(self.qtables.items())},
            "qtable_bits": {str(k): v for k, v in sorted(self.qtable_bits.items())},
            "warnings": list(self.warnings),
        }


class _NeedMore(Exception):
    """The head ended before the start of scan: read more of the file."""


def _exif_orientation(seg: bytes) -> int | None:
    # seg starts after the marker length: b"Exif\0\0" + TIFF header + IFD0.
    tiff = seg[6:]
    if len(tiff) < 8:
        return None
    order = tiff[:2]
    if order == b"II":
        e = "<"
    elif order == b"MM":
        e = ">"
    else:
        return None
    try:
        (ifd,) = struct.unpack_from(e + "I", tiff, 4)
        (n,) = struct.unpack_from(e + "H", tiff, ifd)
        for i in range(min(n, 512)):
            tag, typ, count = struct.unpack_from(e + "HHI", tiff, ifd + 2 + 12 * i)
            if tag == 0x0112 and typ == 3 and count >= 1:
                (value,) = struct.unpack_from(e + "H", tiff, ifd + 2 + 12 * i + 8)
                return int(value) if 1 <= value <= 8 else None
    except struct.error:
        return None
    return None


def _color_name(components: tuple[Component, ...], adobe: int | None, jfif: bool) -> str:
    # Mirrors libjpeg's default_decompress_parms() guesses.
    n = len(components)
    if n == 1:
        return "gray"
    if n == 3:
        if adobe is not None:
            return "RGB" if adobe == 0 else "YCbCr"
        if jfif:
            return "YCbCr"
        if tuple(c.id for c in components) == (82, 71, 66):  # 'R', 'G', 'B'
            return "RGB"
        return "YCbCr"
    if n == 4:
        return "YCCK" if adobe == 2 else "CMYK"
    return "other"


def _segments(data: bytes, path: str, complete: bool, warnings: list[str]):
    """Yield (marker, offset, payload) for every marker segment after SOI, up to and including
    the first SOS; skip (and note in ``warnings``) what libjpeg skips. Raises _NeedMore when an
    incomplete head ends first, CorruptJpegError for broken structure."""
    n = len(data)

    def short() -> None:
        if not complete:
            raise _NeedMore
        raise CorruptJpegError(path, f"truncated: file ends at byte {n} before the start of scan")

    pos = 2
    while True:
        if pos >= n:
            short()
        if data[pos] != 0xFF:
            # libjpeg skips "extraneous bytes before marker"; do the same, but say so.
            nxt = data.find(b"\xff", pos, pos + MAX_JUNK + 1)
            if nxt < 0:
                if n - pos > MAX_JUNK:
                    raise CorruptJpegError(path, f"no marker in the {MAX_JUNK} bytes after offset {pos}")
                short()
            warnings.append(f"{nxt - pos} extraneous bytes before marker at offset {pos}")
            pos = nxt
        fill = pos
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
            if pos - fill > MAX_JUNK:
                raise CorruptJpegError(path, f"more than {MAX_JUNK} 0xFF fill bytes at offset {fill}")
        if pos >= n:
            short()
        marker = data[pos]
        pos += 1
        if marker == 0x00 or marker in _STANDALONE or marker == 0xD8:
            if marker == 0xD8:
                warnings.append(f"repeated SOI marker at offset {pos - 2}")
            continue
        if marker == 0xD9:
            raise CorruptJpegError(path, f"end-of-image marker at offset {pos - 2} before any scan: no image data")
        if pos + 2 > n:
            short()
        length = (data[pos] << 8) | data[pos + 1]
        if length < 2:
            raise CorruptJpegError(path, f"marker 0xFF{marker:02X} at offset {pos - 2} has invalid length {length}")
        end = pos + length
        if end > n:
            short()
        yield marker, pos - 2, data[pos + 2 : end]
        pos = end


def _read_dqt(seg: bytes, at: int, path: str, qtables: dict, qbits: dict) -> None:
    """Every table of one DQT segment into ``qtables`` (natural order) and ``qbits`` (8 or 16)."""
    i = 0
    while i < len(seg):
        pq, tq = seg[i] >> 4, seg[i] & 15
        if pq > 1 or tq > 3:
            raise CorruptJpegError(path, f"DQT at offset {at}: invalid precision/slot byte 0x{seg[i]:02X}")
        size = 128 if pq else 64
        raw = seg[i + 1 : i + 1 + size]
        if len(raw) < size:
            raise CorruptJpegError(path, f"DQT at offset {at}: table {tq} is cut short")
        zz = np.frombuffer(raw, dtype=">u2" if pq else np.uint8)
        qtables[tq] = zz[INVERSE_ZIGZAG].astype(np.uint16).reshape(8, 8)
        qbits[tq] = 16 if pq else 8
        i += 1 + size


def _read_sof(seg: bytes, at: int, path: str) -> tuple[int, int, int, tuple[Component, ...]]:
    """(precision, height, width, components) of a SOF segment."""
    if len(seg) < 6:
        raise CorruptJpegError(path, f"SOF segment at offset {at} too short")
    precision, height, width, nf = seg[0], (seg[1] << 8) | seg[2], (seg[3] << 8) | seg[4], seg[5]
    if len(seg) < 6 + 3 * nf or nf == 0:
        raise CorruptJpegError(path, f"SOF segment at offset {at} declares {nf} components but is {len(seg)} bytes")
    comps = []
    for k in range(nf):
        cid, hv, tq = seg[6 + 3 * k : 9 + 3 * k]
        h, v = hv >> 4, hv & 15
        if not (1 <= h <= 4 and 1 <= v <= 4):
            raise CorruptJpegError(path, f"component {cid} has invalid sampling factors {h}x{v}")
        comps.append(Component(cid, h, v, tq))
    if width == 0:
        raise CorruptJpegError(path, "image width is 0")
    return precision, height, width, tuple(comps)


def _parse(data: bytes, path: str, file_size: int, complete: bool, tail: bytes | None = None) -> JpegHeader:
    n = len(data)
    if n == 0:
        raise NotAJpegError(path, "empty file (0 bytes)", "empty")
    if data[:2] != b"\xff\xd8":
        fmt = sniff_format(data[:64])
        raise NotAJpegError(path, f"not a JPEG: no SOI marker (content looks like {fmt})", fmt)

    warnings: list[str] = []
    f = _markers(data, path, complete, warnings)
    if f["height"] == 0:
        warnings.append("height 0 in SOF: defined later by a DNL marker")
    mode, arithmetic = _SOF[f["sof"]]
    eoi = None
    if complete:
        eoi = data.rfind(b"\xff\xd9", max(0, n - TAIL_BYTES)) >= 0
    elif tail is not None:
        eoi = tail.rfind(b"\xff\xd9") >= 0
    comps = f["components"]
    return JpegHeader(
        path=path, file_size=file_size, width=f["width"], height=f["height"], precision=f["precision"],
        components=comps, subsampling=subsampling_name(comps), qtables=f["qtables"], qtable_bits=f["qbits"],
        sof_marker=f["sof"], mode=mode, arithmetic=arithmetic, color=_color_name(comps, f["adobe"], f["jfif"]),
        adobe_transform=f["adobe"], jfif=f["jfif"], exif=f["exif"], orientation=f["orientation"],
        restart_interval=f["restart"], eoi_found=eoi, warnings=tuple(warnings),
    )  # fmt: skip


def _markers(data: bytes, path: str, complete: bool, warnings: list[str]) -> dict:
    """What the segments before the first scan say: tables, the frame, restart interval, JFIF, EXIF, Adobe."""
    f = {"qtables": {}, "qbits": {}, "sof": None, "components": (), "width": 0, "height": 0, "precision": 0,
         "adobe": None, "jfif": False, "exif": False, "orientation": None, "restart": 0}  # fmt: skip
    for marker, at, seg in _segments(data, path, complete, warnings):
        if marker == 0xDB:
            _read_dqt(seg, at, path, f["qtables"], f["qbits"])
        elif marker in _SOF:
            if f["sof"] is not None:
                warnings.append(f"second SOF marker 0xFF{marker:02X} at offset {at} ignored")
            else:
                f["precision"], f["height"], f["width"], f["components"] = _read_sof(seg, at, path)
                f["sof"] = marker
        elif marker == 0xDD and len(seg) >= 2:
            f["restart"] = (seg[0] << 8) | seg[1]
        elif marker == 0xE0 and seg[:5] == b"JFIF\x00":
            f["jfif"] = True
        elif marker == 0xE1 and seg[:6] == b"Exif\x00\x00":
            f["exif"], f["orientation"] = True, _exif_orientation(seg)
        elif marker == 0xEE and seg[:5] == b"Adobe" and len(seg) >= 12:
            f["adobe"] = seg[11]
        elif marker == 0xDA:
            if f["sof"] is None:
                raise CorruptJpegError(path, "start of scan before any frame header (SOF)")
            break
    return f


def parse_header_bytes(data: bytes, path: str = "<bytes>") -> JpegHeader:
    """Parse the header of a complete JPEG held in memory.

    Raises:
        NotAJpegError: empty data or no SOI marker (with the sniffed real format).
        CorruptJpegError: broken or truncated marker structure.
    """
    return _parse(bytes(data), path, len(data), complete=True)


def parse_header(path: str | os.PathLike[str], head_bytes: int = HEAD_BYTES, check_eoi: bool = True) -> JpegHeader:
    """Parse a JPEG file's header reading only its head (and last bytes for EOI).

    Args:
        path: the file.
        head_bytes: how much to read first; the whole file is read when the
            start of scan lies further.
        check_eoi: also read the last :data:`TAIL_BYTES` bytes and report in
            ``eoi_found`` whether an end-of-image marker is there (a missing
            one usually means a truncated file).

    Raises:
        NotAJpegError, CorruptJpegError: as :func:`parse_header_bytes`.
        OSError: the file cannot be opened or read (permission, missing...).
    """
    p = os.fspath(path)
    with open_regular(p) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(head_bytes)
        tail = None
        if len(head) < size and check_eoi:
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
            f.seek(len(head))
        # Read on in doubling steps until the start of scan: large APP segments cost what
        # they hold, and a file that is junk after its SOI stops after MAX_JUNK bytes.
        while True:
            complete = len(head) >= size
            try:
                hdr = _parse(head, p, size if not complete else len(head), complete, tail)
                break
            except _NeedMore:
                more = f.read(max(len(head), HEAD_BYTES))
                if not more:
                    size = len(head)  # the file shrank while being read
                head += more
    return hdr if check_eoi or tail is None else replace(hdr, eoi_found=None)


def read_head(path: str | os.PathLike[str], n: int = 64) -> bytes:
    """The first ``n`` bytes of a regular file (for format sniffing)."""
    with open_regular(Path(path)) as f:
        return f.read(n)
