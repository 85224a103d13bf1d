"""Codec settings and families of tables: the values ``evaluate``, ``design``, ``select`` and
``compress`` all speak, and the one reader of every table document.

:class:`CodecSpec` is one JPEG setting (tables, subsampling, Huffman mode, encoder).
:class:`TableFamily` is a named set of them that traces one rate curve — the IJG ladder,
a table swept by scale, a designer's sweep (one table per rate), a preset, jpegli's ladder —
with, where a document records it, each member's mean KL (``kappa``, nats: what the choice
by rate alone uses) and what it was designed for (model, ``--at``, subsampling).

:func:`parse_family` reads the text form used by ``--codec`` and ``--family``::

    standard                      IJG ladder, default qualities
    standard:10,30,50,70,90       IJG ladder at these qualities
    tables:design.json            a designed table, swept by --scales
    sweep:design.json             a designer's own family of tables (its "sweep": one table
                                  per rate, e.g. design --method fisher), unscaled
    preset:efficientnet-lite0-420 a table shipped with dnnjpeg (see dnnjpeg.presets), at the
                                  subsampling it was designed for unless @ says otherwise;
                                  a preset that holds a sweep is that family of tables
    standard:10,50@4:4:4          any form, with its own chroma subsampling
    standard+resize:256           any form, the image's shorter side brought down to 256 px first
                                  (bits still per pixel of the image given)
    jpegli[:10,50,90]             jpegli (pyjpegli) at these qualities (default: the ladder's);
                                  its own tables and adaptive quantization, always 4:2:0
    qnet:qnet.json                a QNet's family ("qnet:FILE members"); evaluate also measures
    qnet:preset:efficientnet-lite0-qnet   the QNet's own choice per image ("qnet:FILE", at original)
    sdq:fisher                    soft-decision quantization (dnnjpeg.sdq): each block's levels
    sdq:fisher:0.01:r1:standard   searched with lite0's Fisher weights (or mse: the PSNR control)
                                  at λ = alpha × each table's weighted step error, optionally
                                  r1 table re-fit, in a family's tables (default: the shipped
                                  lite0 sweep; any family form above but jpegli and qnet)

Every table, sweep, design and preset document goes through :func:`family_from_document`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dnnjpeg._fs import read_json
from dnnjpeg.codec import QuantTables, encode, resize_shorter
from dnnjpeg.conventions import LADDER_QUALITIES, SUBSAMPLINGS

__all__ = [
    "CodecSpec", "TableFamily", "DesignedFor", "parse_family", "family_from_document", "sweep_of", "ENCODERS",
    "DEFAULT_SCALES",
]  # fmt: skip

#: What writes the file: Pillow's libjpeg-turbo with exactly the given tables, jpegli, or
#: soft-decision quantization (:mod:`dnnjpeg.sdq`: the given tables, each block's levels searched).
ENCODERS = ("libjpeg", "jpegli", "sdq")
DEFAULT_SCALES = (0.25, 0.4, 0.6, 0.8, 1.0, 1.3, 1.7, 2.2, 3.0, 4.0)


@dataclass(frozen=True)
class CodecSpec:
    """One JPEG setting: exactly the tables, subsampling and Huffman mode to encode with.

    ``quality`` / ``scale`` only describe where the tables came from (for labels).
    ``encoder`` "libjpeg" (Pillow's libjpeg-turbo, exactly these tables), "jpegli" (jpegli at
    ``quality``: its own tables, given here as it writes them, and adaptive quantization) or "sdq"
    (these tables, each block's levels chosen by soft-decision quantization with the weights
    ``sdq[0]`` (:data:`dnnjpeg.sdq.weights.WEIGHTS`) at λ = ``sdq[1]`` × the table's weighted step
    error, ``sdq[2]`` table re-fits; gray images are rounded as libjpeg does).
    """

    tables: QuantTables
    subsampling: str = "4:2:0"
    optimize: bool = True
    quality: int | None = None
    scale: float | None = None
    tag: str | None = None  # a label for tables of a set (e.g. "λ=0.05")
    encoder: str = "libjpeg"
    sdq: tuple | None = None  # (weights, alpha, refit) for encoder "sdq"
    #: the shorter side in px the image is brought down to before encoding (never enlarged; the
    #: classifiers' bilinear filter, :func:`dnnjpeg.codec.resize_shorter`): bits stay counted per
    #: pixel of the image given, so a smaller file is charged fairly
    resize: int | None = None

    def __post_init__(self) -> None:
        if self.subsampling not in SUBSAMPLINGS:
            raise ValueError(f"subsampling {self.subsampling!r} not in {SUBSAMPLINGS}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder {self.encoder!r} not in {ENCODERS}")
        if self.encoder == "jpegli" and (self.quality is None or self.subsampling != "4:2:0"):
            raise ValueError("a jpegli setting needs a quality and writes 4:2:0 only")
        if (self.encoder == "sdq") != (self.sdq is not None):
            raise ValueError("an sdq setting needs its (weights, alpha, refit), and only it has them")
        if self.encoder == "sdq" and (self.subsampling not in ("4:2:0", "4:4:4") or not self.optimize):
            raise ValueError("SDQ writes 4:2:0 or 4:4:4 with optimized Huffman tables")
        if self.resize is not None and not 1 <= self.resize <= 65535:
            raise ValueError(f"resize to a shorter side of {self.resize} px: must be 1..65535")

    def resized(self, image):
        """``image`` as this setting encodes it: its shorter side brought down to ``resize`` (a no-op
        when unset or already that small, so calling it twice is calling it once)."""
        return image if self.resize is None else resize_shorter(np.asarray(image), self.resize)

    def encode(self, image, weights=None) -> bytes:
        """The JPEG file for uint8 (H, W, 3) RGB or (H, W) gray ``image`` with this setting.

        ``weights``: this image's SDQ weights (three (rows, cols, 8, 8) arrays), which an "sdq"
        setting with gradient weights needs (:func:`dnnjpeg.sdq.weights.gradient_weights`), of the
        image as :meth:`resized` gives it."""
        image = self.resized(image)
        if self.encoder == "jpegli":
            from dnnjpeg.codec.jpegli import encode_jpegli

            return encode_jpegli(image, self.quality)
        if self.encoder == "sdq" and np.ndim(image) == 3:
            from dnnjpeg.sdq.encode import sdq_encode, table_lambda
            from dnnjpeg.sdq.weights import image_weights, rate_weights

            name, alpha, refit = self.sdq
            if name == "gradient" and weights is None:
                raise ValueError("SDQ with gradient weights needs this image's weights (dnnjpeg.sdq.gradient_weights)")
            w = weights if weights is not None else image_weights(name, image, self.subsampling)
            lam = table_lambda(self.tables, rate_weights(name), alpha)
            return sdq_encode(image, self.tables, lam, w, self.subsampling, refit=refit)[0]
        return encode(image, self.tables, self.subsampling, self.optimize)

    @property
    def label(self) -> str:
        if self.quality is not None:
            base = f"q={self.quality}"
        elif self.scale is not None:
            base = f"x{self.scale:g}"
        else:
            base = self.tag or "tables"
        return base if self.resize is None else f"{base} resized to {self.resize}"

    def to_dict(self) -> dict:
        return {
            "quality": self.quality,
            "scale": self.scale,
            "tag": self.tag,
            "subsampling": self.subsampling,
            "optimize": self.optimize,
            "encoder": self.encoder,
            **({"sdq": list(self.sdq)} if self.sdq else {}),
            **({"resize": self.resize} if self.resize else {}),
            "tables": self.tables.to_dict(),
        }


#: (model, at) a designed table was made for, when its document says so: a measurement elsewhere is a transfer.
DesignedFor = tuple[str | None, str | None]


@dataclass(frozen=True)
class TableFamily:
    """A named family of settings that traces one rate/accuracy curve.

    Attributes:
        name: e.g. "standard 4:2:0", "preset:efficientnet-lite0-420-original-sweep 4:2:0".
        points: the members, each a :class:`CodecSpec` (coarse to fine as given).
        kind: "standard" (IJG ladder), "tables" (scaled table or a sweep), "jpegli", "sdq" (a
            family's tables with soft-decision quantization), or "selected" (an evaluation's
            per-image choice curve; no members of its own).
        designed_for: (model, at) the tables were designed for, when the document says so.
        kappa: (K,) each member's mean KL in nats, when recorded (the choice by rate alone).
    """

    name: str
    points: tuple[CodecSpec, ...]
    kind: str = "standard"
    designed_for: DesignedFor | None = None
    kappa: tuple[float, ...] | None = None
    #: a :class:`dnnjpeg.qnet.QNet` that chooses among these members per image (``qnet:FILE``)
    qnet: object = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kappa is not None and len(self.kappa) != len(self.points):
            raise ValueError(f"{self.name}: {len(self.kappa)} mean KL values for {len(self.points)} members")

    def __len__(self) -> int:
        return len(self.points)

    @property
    def members(self) -> tuple[QuantTables, ...]:
        """The members' tables, in order."""
        return tuple(p.tables for p in self.points)

    @property
    def subsamplings(self) -> tuple[str, ...]:
        """Each member's chroma subsampling."""
        return tuple(p.subsampling for p in self.points)

    @property
    def labels(self) -> tuple[str, ...]:
        """Each member's label ("q=50", "x1.3", "λ=0.05", ...)."""
        return tuple(p.label for p in self.points)

    def with_kappa(self, kappa) -> TableFamily:
        """This family with each member's mean KL (nats, (K,)) recorded."""
        return replace(self, kappa=tuple(float(k) for k in kappa))

    def kappa_from_evaluation(self, result: dict, where: str = "results") -> TableFamily:
        """This family with each member's mean KL taken from a saved evaluation (a loaded
        ``results.json``, typically ``evaluate --split design``) that holds a curve with exactly
        these tables in this order.

        Raises:
            ValueError: naming ``where``, when no curve matches.
        """
        for c in result.get("curves", []):
            pts = c.get("points", [])
            if len(pts) == len(self) and all(
                p.get("tables") and QuantTables.from_dict(p["tables"]) == t for p, t in zip(pts, self.members)
            ):
                return self.with_kappa([p["kl"] for p in pts])
        raise ValueError(
            f"{where}: no curve with these {len(self)} tables (evaluate the same family there, e.g. on --split design)"
        )

    def resized(self, side: int) -> TableFamily:
        """Every member storing the image with its shorter side brought down to ``side`` px first
        (``FAMILY+resize:N``); the members' recorded mean KL is of other files, so it is dropped."""
        if self.qnet is not None:
            raise ValueError(f"{self.name}: a QNet chooses among JPEGs of the stored image; it cannot resize")
        pts = tuple(replace(p, resize=side) for p in self.points)
        return replace(self, name=f"{self.name} resized to {side}", points=pts, kappa=None)

    @staticmethod
    def union(families) -> TableFamily:
        """Every member of several families as one (e.g. two subsamplings chosen per image);
        kappa only when every part records it."""
        families = list(families)
        kap = None
        if all(f.kappa is not None for f in families):
            kap = tuple(k for f in families for k in f.kappa)
        name = " + ".join(f.name for f in families)
        return TableFamily(name, tuple(p for f in families for p in f.points), "tables", None, kap)

    @staticmethod
    def standard(
        qualities=LADDER_QUALITIES, subsampling: str = "4:2:0", optimize: bool = True, name: str | None = None
    ) -> TableFamily:
        """The IJG quality ladder."""
        pts = tuple(
            CodecSpec(QuantTables.standard(q), subsampling, optimize, quality=q) for q in sorted(set(qualities))
        )
        return TableFamily(name or f"standard {subsampling}", pts, "standard")

    @staticmethod
    def jpegli(qualities=LADDER_QUALITIES, name: str = "jpegli") -> TableFamily:
        """jpegli's own quality ladder (4:2:0, optimized Huffman, adaptive quantization)."""
        from dnnjpeg.codec.jpegli import jpegli_tables

        pts = tuple(
            CodecSpec(jpegli_tables(q), "4:2:0", True, quality=q, encoder="jpegli") for q in sorted(set(qualities))
        )
        return TableFamily(name, pts, "jpegli")

    @staticmethod
    def from_tables(
        tables: QuantTables,
        scales=DEFAULT_SCALES,
        subsampling: str = "4:2:0",
        optimize: bool = True,
        name: str = "tables",
    ) -> TableFamily:
        """A designed table swept into a curve by scaling every entry (clamped to 1..255)."""
        pts = tuple(CodecSpec(tables.scaled(s), subsampling, optimize, scale=s) for s in sorted(set(scales)))
        return TableFamily(f"{name} {subsampling}", pts, "tables")

    @staticmethod
    def from_table_set(
        tables, tags=None, subsampling: str = "4:2:0", optimize: bool = True, name: str = "tables"
    ) -> TableFamily:
        """Several designed tables as the points of one curve (e.g. a designer's λ sweep), unscaled."""
        tables = list(tables)
        tags = tags or [f"#{i}" for i in range(len(tables))]
        return TableFamily(
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
            # named by what it was designed for (a rate a person can read), else by its design λ
            tag = (f"≈{p['target_bpp']:g} bpp" if "target_bpp" in p else f"λ={p['lam']:.3g} nats/bit" if "lam" in p
                   else f"#{i}")  # fmt: skip
            out.append((QuantTables.from_dict(p["tables"]), tag))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: sweep point {i} is not a table: {e}") from None
    return out


def _designed_for(doc: dict) -> DesignedFor | None:
    d = doc.get("design") or {}
    return (d.get("model"), d.get("at")) if (d.get("model") or d.get("at")) else None


def family_from_document(
    doc: dict,
    where: str,
    *,
    name: str,
    subsampling: str = "4:2:0",
    scales=DEFAULT_SCALES,
    optimize: bool = True,
    sweep: bool | None = None,
) -> TableFamily:
    """The family a table, sweep, design or preset document describes.

    Args:
        doc: the loaded JSON: tables at the top (``QuantTables.to_dict``), and under ``"design"``
            how they were made, optionally with a ``"sweep"`` of tables (each with ``lam``, and
            ``kappa`` when its mean KL was recorded).
        where: names the document in errors.
        sweep: True → the document's sweep (error when it holds fewer than 2 tables); False →
            its one table swept by ``scales``; None → the sweep when there is one.
    """
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: a table document is a JSON object, got {type(doc).__name__}")
    pts = sweep_of(doc, where)
    if sweep is None:
        sweep = len(pts) >= 2
    if sweep:
        if len(pts) < 2:
            raise ValueError(
                f"{where}: holds no sweep of tables (made by design --method fisher); use tables: to scale its table"
            )
        fam = TableFamily.from_table_set([t for t, _ in pts], [g for _, g in pts], subsampling, optimize, name=name)
        kappa = [p.get("kappa") for p in doc["design"]["sweep"]]
        if all(isinstance(k, (int, float)) for k in kappa):
            fam = fam.with_kappa(kappa)
    else:
        try:
            tables = QuantTables.from_dict(doc)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        fam = TableFamily.from_tables(tables, scales, subsampling, optimize, name=name)
    return replace(fam, designed_for=_designed_for(doc))


def _qualities(text: str, kind: str, arg: str) -> list[int]:
    if not arg:
        return list(LADDER_QUALITIES)
    try:
        qs = [int(x) for x in arg.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--codec {text!r}: qualities must be integers, e.g. {kind}:10,50,90") from None
    if not qs or any(not 1 <= q <= 100 for q in qs):
        raise ValueError(f"--codec {text!r}: qualities must be in 1..100")
    return qs


#: family kinds defined outside this module: kind → the module that registers its parser when imported
#: (a plug-in registry: ``families`` stays below the modules that build on it, such as the QNet's)
FAMILY_KIND_MODULES: dict[str, str] = {"qnet": "dnnjpeg.qnet"}
_FAMILY_KINDS: dict[str, object] = {}


def register_family_kind(kind: str, parser) -> None:
    """Let ``KIND:ARG[@SS]`` values name families built elsewhere: ``parser(text, arg, subsampling or
    None) → TableFamily``, raising ValueError with the reason for a bad value."""
    _FAMILY_KINDS[kind] = parser


def family_kind(kind: str):
    """The registered parser of ``kind`` (importing the module that registers it), else None."""
    if kind not in _FAMILY_KINDS and kind in FAMILY_KIND_MODULES:
        import importlib

        importlib.import_module(FAMILY_KIND_MODULES[kind])
    return _FAMILY_KINDS.get(kind)


def parse_family(text: str, subsampling: str = "4:2:0", scales=DEFAULT_SCALES, optimize: bool = True) -> TableFamily:
    """Parse a ``--codec`` / ``--family`` value (see the module doc). Errors say what was expected."""
    head, plus, side = text.rpartition("+resize:")
    if plus:
        if not side.isdigit() or not 1 <= int(side) <= 65535:
            raise ValueError(f"--codec {text!r}: +resize:N takes the shorter side in pixels, e.g. +resize:256")
        return parse_family(head, subsampling, scales, optimize).resized(int(side))
    body, _, ss = text.partition("@")
    explicit_ss = bool(ss)
    ss = ss or subsampling
    kind, _, arg = body.partition(":")
    if kind == "standard":
        return TableFamily.standard(_qualities(text, kind, arg), ss, optimize)
    if kind == "jpegli":
        if ss != "4:2:0":
            raise ValueError(f"--codec {text!r}: jpegli writes 4:2:0 only")
        return TableFamily.jpegli(_qualities(text, kind, arg))
    if kind in ("tables", "sweep"):
        if not arg:
            raise ValueError(f"--codec {text!r}: give a file, e.g. {kind}:design.json")
        if kind == "tables":
            QuantTables.load(arg)  # its errors name the file and say what a table file must hold
        try:
            doc = read_json(arg)
        except (OSError, ValueError) as e:
            raise ValueError(f"{arg}: cannot read a table document: {e}") from None
        return family_from_document(
            doc, arg, name=Path(arg).stem, subsampling=ss, scales=scales, optimize=optimize, sweep=kind == "sweep"
        )
    if kind == "preset":
        from dnnjpeg.presets import available_presets, preset_info

        if not arg:
            raise ValueError(f"--codec {text!r}: name a preset: {', '.join(available_presets())}")
        doc = preset_info(arg)
        if not explicit_ss:  # a preset was designed for one subsampling: use it unless told otherwise
            ss = doc.get("design", {}).get("subsampling", ss)
        return family_from_document(
            doc, f"preset {arg}", name=f"preset:{arg}", subsampling=ss, scales=scales, optimize=optimize
        )
    if kind == "sdq":
        return _sdq_family(text, arg, ss if explicit_ss else None, subsampling, scales)
    parser = family_kind(kind)
    if parser is not None:
        return parser(text, arg, ss if explicit_ss else None)
    raise ValueError(
        f"--codec {text!r}: unknown kind {kind!r}; use standard[:Q,...], tables:FILE.json, sweep:FILE.json, "
        "preset:NAME (optionally @4:4:4), jpegli[:Q,...], qnet:FILE or sdq:WEIGHTS[:ALPHA[:FAMILY]]"
    )


#: ``sdq:`` default tables: the shipped lite0 sweep (alpha: :data:`dnnjpeg.sdq.weights.DEFAULT_ALPHA`)
SDQ_DEFAULT_FAMILY = "preset:efficientnet-lite0-420-original-sweep"


def _sdq_family(text: str, arg: str, explicit_ss: str | None, subsampling: str, scales) -> TableFamily:
    """``sdq:WEIGHTS[:ALPHA][:rN][:FAMILY]``: FAMILY's tables, each block's levels searched."""
    parts = arg.split(":")
    weights = parts.pop(0) if parts else ""
    from dnnjpeg.sdq.weights import DEFAULT_ALPHA, WEIGHTS

    if weights not in WEIGHTS:
        raise ValueError(
            f"--codec {text!r}: SDQ weights are {', '.join(WEIGHTS)}; e.g. sdq:fisher, sdq:gradient:0.01, "
            "sdq:mse:0.01:standard"
        )
    alpha, refit = DEFAULT_ALPHA[weights], 0
    if parts:
        try:
            alpha = float(parts[0])
            parts.pop(0)
        except ValueError:
            pass
    if not (alpha >= 0 and np.isfinite(alpha)):
        raise ValueError(f"--codec {text!r}: alpha must be a finite number ≥ 0")
    if parts and parts[0].startswith("r") and parts[0][1:].isdigit():
        refit = int(parts.pop(0)[1:])
    inner_text = ":".join(parts) or SDQ_DEFAULT_FAMILY
    inner = parse_family(inner_text + (f"@{explicit_ss}" if explicit_ss else ""), subsampling, scales, True)
    if inner.kind in ("jpegli", "sdq") or inner.qnet is not None:
        raise ValueError(f"--codec {text!r}: SDQ searches the levels of plain tables, not of {inner.name}")
    if any(s not in ("4:2:0", "4:4:4") for s in inner.subsamplings):
        raise ValueError(f"--codec {text!r}: SDQ writes 4:2:0 or 4:4:4")
    pts = tuple(replace(p, encoder="sdq", sdq=(weights, alpha, refit), optimize=True) for p in inner.points)
    tag = f"sdq:{weights}:{alpha:g}" + (f":r{refit}" if refit else "")
    return TableFamily(f"{tag} {inner.name}", pts, "sdq", inner.designed_for)
