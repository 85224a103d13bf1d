"""Codec settings: one point (:class:`CodecSpec`) and a curve of them (:class:`CodecCurve`).

The text form used by ``--codec``::

    standard                      IJG ladder, default qualities
    standard:10,30,50,70,90       IJG ladder at these qualities
    tables:design.json            a designed table, swept by --scales
    sweep:design.json             a designer's own family of tables (its "sweep": one table
                                  per rate, e.g. design --method fisher), unscaled
    preset:efficientnet-lite0-420 a table shipped with dnnjpeg (see dnnjpeg.presets), at the
                                  subsampling it was designed for unless @ says otherwise;
                                  a preset that holds a sweep is that family of tables
    standard:10,50@4:4:4          any form, with its own chroma subsampling
    jpegli[:10,50,90]             jpegli (pyjpegli) at these qualities (default: the ladder's);
                                  its own tables and adaptive quantization, always 4:2:0
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from dnnjpeg._fs import read_json
from dnnjpeg.codec import QuantTables, encode
from dnnjpeg.conventions import LADDER_QUALITIES, SUBSAMPLINGS

__all__ = ["CodecSpec", "CodecCurve", "parse_codec", "sweep_of", "DEFAULT_SCALES"]

#: What writes the file: Pillow's libjpeg-turbo with exactly the given tables, or jpegli.
ENCODERS = ("libjpeg", "jpegli")
DEFAULT_SCALES = (0.25, 0.4, 0.6, 0.8, 1.0, 1.3, 1.7, 2.2, 3.0, 4.0)


@dataclass(frozen=True)
class CodecSpec:
    """One JPEG setting: exactly the tables, subsampling and Huffman mode to encode with.

    ``quality`` / ``scale`` only describe where the tables came from (for labels).
    ``encoder`` "libjpeg" (Pillow's libjpeg-turbo, exactly these tables) or "jpegli" (jpegli at
    ``quality``: its own tables, given here as it writes them, and adaptive quantization).
    """

    tables: QuantTables
    subsampling: str = "4:2:0"
    optimize: bool = True
    quality: int | None = None
    scale: float | None = None
    tag: str | None = None  # a label for tables of a set (e.g. "λ=0.05")
    encoder: str = "libjpeg"

    def __post_init__(self) -> None:
        if self.subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling {self.subsampling!r} not in {SUBSAMPLINGS}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder {self.encoder!r} not in {ENCODERS}")
        if self.encoder == "jpegli" and (self.quality is None or self.subsampling != "4:2:0"):
            raise ValueError("a jpegli setting needs a quality and writes 4:2:0 only")

    def encode(self, image) -> bytes:
        """The JPEG file for uint8 (H, W, 3) RGB or (H, W) gray ``image`` with this setting."""
        if self.encoder == "jpegli":
            from dnnjpeg.codec.jpegli import encode_jpegli

            return encode_jpegli(image, self.quality)
        return encode(image, self.tables, self.subsampling, self.optimize)

    @property
    def label(self) -> str:
        if self.quality is not None:
            return f"q={self.quality}"
        if self.scale is not None:
            return f"x{self.scale:g}"
        return self.tag or "tables"

    def to_dict(self) -> dict:
        return {
            "quality": self.quality,
            "scale": self.scale,
            "tag": self.tag,
            "subsampling": self.subsampling,
            "optimize": self.optimize,
            "encoder": self.encoder,
            "tables": self.tables.to_dict(),
        }


@dataclass(frozen=True)
class CodecCurve:
    """A named family of settings that traces one rate/accuracy curve."""

    name: str
    points: tuple[CodecSpec, ...]
    kind: str = "standard"  # standard | tables | jpegli
    # (model, at) a designed table was made for, when its file says so: a measurement elsewhere is a transfer
    designed_for: tuple[str | None, str | None] | None = None

    @staticmethod
    def standard(
        qualities=LADDER_QUALITIES, subsampling: str = "4:2:0", optimize: bool = True, name: str | None = None
    ) -> CodecCurve:
        """The IJG quality ladder."""
        pts = tuple(
            CodecSpec(QuantTables.standard(q), subsampling, optimize, quality=q) for q in sorted(set(qualities))
        )
        return CodecCurve(name or f"standard {subsampling}", pts, "standard")

    @staticmethod
    def jpegli(qualities=LADDER_QUALITIES, name: str = "jpegli") -> CodecCurve:
        """jpegli's own quality ladder (4:2:0, optimized Huffman, adaptive quantization)."""
        from dnnjpeg.codec.jpegli import jpegli_tables

        pts = tuple(
            CodecSpec(jpegli_tables(q), "4:2:0", True, quality=q, encoder="jpegli") for q in sorted(set(qualities))
        )
        return CodecCurve(name, pts, "jpegli")

    @staticmethod
    def from_tables(
        tables: QuantTables,
        scales=DEFAULT_SCALES,
        subsampling: str = "4:2:0",
        optimize: bool = True,
        name: str = "tables",
    ) -> CodecCurve:
        """A designed table swept into a curve by scaling every entry (clamped to 1..255)."""
        pts = tuple(CodecSpec(tables.scaled(s), subsampling, optimize, scale=s) for s in sorted(set(scales)))
        return CodecCurve(f"{name} {subsampling}", pts, "tables")

    @staticmethod
    def from_table_set(
        tables, tags=None, subsampling: str = "4:2:0", optimize: bool = True, name: str = "tables"
    ) -> CodecCurve:
        """Several designed tables as the points of one curve (e.g. a designer's λ sweep), unscaled."""
        tables = list(tables)
        tags = tags or [f"#{i}" for i in range(len(tables))]
        return CodecCurve(
            f"{name} {subsampling}",
            tuple(CodecSpec(t, subsampling, optimize, tag=g) for t, g in zip(tables, tags)),
            "tables",
        )


def sweep_of(doc: dict, where: str = "table JSON") -> list[tuple[QuantTables, str]]:
    """The (tables, tag) points of a designed sweep stored under ``doc["design"]["sweep"]``, coarse
    to fine as stored; [] when the document holds a single table. ``where`` names the source in errors."""
    pts = (doc.get("design") or {}).get("sweep") or []
    out = []
    for i, p in enumerate(pts):
        try:
            tag = f"λ={p['lam']:.3g}" if "lam" in p else f"#{i}"
            out.append((QuantTables.from_dict(p["tables"]), tag))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: sweep point {i} is not a table: {e}") from None
    return out


def _designed_for(doc: dict) -> tuple[str | None, str | None] | None:
    d = doc.get("design") or {}
    return (d.get("model"), d.get("at")) if (d.get("model") or d.get("at")) else None


def parse_codec(text: str, subsampling: str = "4:2:0", scales=DEFAULT_SCALES, optimize: bool = True) -> CodecCurve:
    """Parse a ``--codec`` value (see module doc). Errors say what was expected."""
    body, _, ss = text.partition("@")
    explicit_ss = bool(ss)
    ss = ss or subsampling
    kind, _, arg = body.partition(":")
    if kind in ("standard", "jpegli"):
        if arg:
            try:
                qs = [int(x) for x in arg.split(",") if x.strip()]
            except ValueError:
                raise ValueError(f"--codec {text!r}: qualities must be integers, e.g. {kind}:10,50,90") from None
            bad = [q for q in qs if not 1 <= q <= 100]
            if bad or not qs:
                raise ValueError(f"--codec {text!r}: qualities must be in 1..100")
        else:
            qs = list(LADDER_QUALITIES)
        if kind == "standard":
            return CodecCurve.standard(qs, ss, optimize)
        if ss != "4:2:0":
            raise ValueError(f"--codec {text!r}: jpegli writes 4:2:0 only")
        return CodecCurve.jpegli(qs)
    if kind == "tables":
        if not arg:
            raise ValueError(f"--codec {text!r}: give a file, e.g. tables:design.json")
        curve = CodecCurve.from_tables(QuantTables.load(arg), scales, ss, optimize, name=Path(arg).stem)
        try:
            doc = read_json(arg)
        except ValueError:  # a plain table file (e.g. cjpeg text) carries no design record
            return curve
        return replace(curve, designed_for=_designed_for(doc) if isinstance(doc, dict) else None)
    if kind == "sweep":
        if not arg:
            raise ValueError(f"--codec {text!r}: give a designer's file, e.g. sweep:design.json")
        try:
            doc = read_json(arg)
        except (OSError, ValueError) as e:
            raise ValueError(f"{arg}: cannot read a designed sweep: {e}") from None
        pts = sweep_of(doc, arg)
        if len(pts) < 2:
            raise ValueError(
                f"{arg}: holds no sweep of tables (made by design --method fisher); use tables:{arg} to scale its table"
            )
        return replace(
            CodecCurve.from_table_set([t for t, _ in pts], [g for _, g in pts], ss, optimize, name=Path(arg).stem),
            designed_for=_designed_for(doc),
        )
    if kind == "preset":
        from dnnjpeg.presets import available_presets, load_preset, preset_info

        if not arg:
            raise ValueError(f"--codec {text!r}: name a preset: {', '.join(available_presets())}")
        if not explicit_ss:  # a preset was designed for one subsampling: use it unless told otherwise
            ss = preset_info(arg).get("design", {}).get("subsampling", ss)
        info = preset_info(arg)
        pts = sweep_of(info, f"preset {arg}")
        if len(pts) >= 2:
            return replace(
                CodecCurve.from_table_set([t for t, _ in pts], [g for _, g in pts], ss, optimize, name=f"preset:{arg}"),
                designed_for=_designed_for(info),
            )
        return replace(
            CodecCurve.from_tables(load_preset(arg), scales, ss, optimize, name=f"preset:{arg}"),
            designed_for=_designed_for(info),
        )
    raise ValueError(
        f"--codec {text!r}: unknown kind {kind!r}; use standard[:Q,...], tables:FILE.json, sweep:FILE.json, "
        "preset:NAME (optionally @4:4:4) or jpegli[:Q,...]"
    )
