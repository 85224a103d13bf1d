"""How ``compress`` decides each image's tables: one :class:`Chooser` per run.

* :class:`FixedTables` — every image with the same tables.
* :class:`RateChoice` — per image, the family member with the least recorded mean KL
  (κ, nats) + λ · KiB: no network, runs in a process pool.
* :class:`NetworkChoice` — per image, the member whose decode the network's output moves
  least (KL to its output on the stored image) + λ · KiB: the network runs in this process.

A family chooser takes λ (nats per KiB) or a ``target_bpp`` (then compress measures every
member on every image first and finds the λ that fits). A new way to decide bits is one
class with these methods, not a new set of flags: QNet and SDQ choosers plug in here.
:func:`make_chooser` builds the right one from what a user has (the CLI's arguments).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from dnnjpeg._runtime import one_torch_thread_in_pool_workers
from dnnjpeg.codec import QuantTables, encode
from dnnjpeg.families import TableFamily

__all__ = [
    "Chooser", "FixedTables", "RateChoice", "NetworkChoice", "QNetChoice", "TableNetChoice", "SDQChoice",
    "make_chooser", "MAX_SCALE",
]  # fmt: skip

#: Beyond this every table entry is 255 already (entries are ≥ 1): a larger scale is a typo.
MAX_SCALE = 255.0


class Chooser(Protocol):
    """What compress asks of a way to decide each image's tables.

    ``in_process``: True when it holds a network and must run in the calling process; False
    when it is picklable and cheap, so compress spreads it over a process pool.
    ``target_bpp``: None, or the bits per pixel a family chooser must fit (compress then calls
    :meth:`measure` on every image, picks λ, and calls :meth:`encode_member`).
    """

    in_process: bool
    target_bpp: float | None

    def scaled(self, factor: float) -> Chooser:
        """The same chooser with every table entry × ``factor`` (clamped to 1..255)."""

    def settings(self) -> dict:
        """JSON-ready: everything that decides the output bytes (recorded beside the outputs)."""

    def describe(self) -> str:
        """One line for a person: what is chosen, among what, how."""

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        """uint8 (H, W, 3) or (H, W) stored pixels → (JPEG file, chosen member or None)."""

    def measure(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every member's (bits (K,), KL (K,) nats) on this image (family choosers only)."""

    def encode_member(self, pixels: np.ndarray, k: int) -> bytes:
        """The file of member ``k`` (family choosers only)."""

    def member_label(self, k: int) -> str:
        """A person's name for member ``k``."""


@dataclass(frozen=True)
class FixedTables:
    """Every image encoded with ``tables`` (natural order) at ``subsampling``."""

    tables: QuantTables
    subsampling: str = "4:2:0"
    optimize: bool = True
    in_process = False
    target_bpp = None

    def scaled(self, factor: float) -> FixedTables:
        return self if factor == 1.0 else replace(self, tables=self.tables.scaled(factor))

    def settings(self) -> dict:
        return {"tables": self.tables.to_dict(), "subsampling": self.subsampling, "optimize": self.optimize}

    def describe(self) -> str:
        return f"fixed tables at {self.subsampling}"

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        return encode(pixels, self.tables, self.subsampling, self.optimize), None

    def measure(self, pixels):
        raise ValueError("fixed tables have no members to measure: a bit budget needs a family chooser")

    def encode_member(self, pixels, k):
        raise ValueError("fixed tables have no members")

    def member_label(self, k: int) -> str:
        return "tables"


def _check_rate(lam: float | None, target_bpp: float | None) -> None:
    if (lam is None) == (target_bpp is None):
        raise ValueError("give λ or a target bits per pixel (which finds λ), not both and not neither")
    if lam is not None and not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"λ must be a finite number ≥ 0 nats/KiB, got {lam}")
    if target_bpp is not None and not (math.isfinite(target_bpp) and target_bpp > 0):
        raise ValueError(f"target bits per pixel must be a finite number > 0, got {target_bpp}")


@dataclass(frozen=True)
class _FamilyChoice:
    family: TableFamily
    lam: float | None = None
    target_bpp: float | None = None

    def __post_init__(self) -> None:
        if not len(self.family):
            raise ValueError("a per-image choice needs a non-empty family of tables")
        if self.family.kind == "jpegli":
            raise ValueError("jpegli is a codec for evaluate only: compress writes dnnjpeg's tables with libjpeg")
        _check_rate(self.lam, self.target_bpp)

    @property
    def _optimize(self) -> bool:
        return self.family.points[0].optimize

    def with_lam(self, lam: float) -> _FamilyChoice:
        """The same chooser at a fixed λ (what a bit budget resolves to)."""
        return replace(self, lam=lam, target_bpp=None)

    def scaled(self, factor: float) -> _FamilyChoice:
        if factor == 1.0:
            return self
        pts = tuple(replace(p, tables=p.tables.scaled(factor), scale=factor) for p in self.family.points)
        return replace(self, family=replace(self.family, points=pts, kappa=None))

    def _base_settings(self) -> dict:
        s = {
            "family": [t.to_dict() for t in self.family.members],
            "family_subsampling": list(self.family.subsamplings),
            "optimize": self._optimize,
            "lam": self.lam,
            "target_bpp": self.target_bpp,
        }
        if any(p.sdq for p in self.family.points):  # (only then, so earlier runs' settings still match)
            s["family_sdq"] = [list(p.sdq) if p.sdq else None for p in self.family.points]
        return s

    def member_label(self, k: int) -> str:
        mixed = len(set(self.family.subsamplings)) > 1
        return self.family.labels[k] + (f" {self.family.subsamplings[k]}" if mixed else "")

    def _kappa(self):
        return None

    def _model(self):
        return None

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        from dnnjpeg.select import select_encode

        f = self.family
        sel = select_encode(pixels, f.points, self._model(), self.lam, f.subsamplings, self._optimize, self._kappa())
        return sel.data, sel.index

    def measure(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from dnnjpeg.select import select_encode

        f = self.family
        sel = select_encode(pixels, f.points, self._model(), 0.0, f.subsamplings, self._optimize, self._kappa())
        return sel.bits, sel.kl

    def encode_member(self, pixels: np.ndarray, k: int) -> bytes:
        return self.family.points[k].encode(pixels)

    def _rate(self) -> str:
        return f"{self.target_bpp:g} bpp" if self.target_bpp is not None else f"λ = {self.lam:g} nats/KiB"


@dataclass(frozen=True)
class RateChoice(_FamilyChoice):
    """Per image, the member with the least κ_k + λ · KiB, κ the family's recorded mean KL
    (``family.kappa``: from its preset or sweep, or ``TableFamily.kappa_from_evaluation``)."""

    in_process = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.family.kappa is None:
            raise ValueError(
                f"{self.family.name} records no mean KL per member: choosing by rate alone needs it "
                "(a sweep preset, or the family's evaluation on other images)"
            )

    def scaled(self, factor: float) -> RateChoice:
        if factor != 1.0:
            raise ValueError("a scale changes the tables whose mean KL was recorded: choose by rate at scale 1")
        return self

    def _kappa(self):
        return np.asarray(self.family.kappa, np.float64)

    def settings(self) -> dict:
        return {**self._base_settings(), "chooser": "by rate", "kappa": list(self.family.kappa)}

    def describe(self) -> str:
        return f"choosing among {len(self.family)} tables ({self.family.name}) by rate alone at {self._rate()}"


@dataclass(frozen=True)
class NetworkChoice(_FamilyChoice):
    """Per image, the member with the least KL(network output on the stored image ‖ on the
    decoded member) + λ · KiB; ``model`` is a :class:`dnnjpeg.models.Model` (it runs here)."""

    model: object = None
    #: "all": every member measured (K + 1 passes); "climb": a local search along the file sizes
    #: from the choice by rate (when the family records κ) or the middle member (3–5 passes)
    search: str = "all"
    in_process = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model is None:
            raise ValueError("a network choice needs a model")
        if self.search not in ("all", "climb"):
            raise ValueError(f"--search must be all or climb, got {self.search!r}")

    def _model(self):
        return self.model

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        if self.search == "all":
            return super().encode(pixels)
        from dnnjpeg.select import select_encode

        f = self.family
        start = "rate" if f.kappa is not None else None
        sel = select_encode(pixels, f.points, self.model, self.lam, f.subsamplings, self._optimize,
                            kappa=f.kappa, search="climb", start=start)  # fmt: skip
        return sel.data, sel.index

    def settings(self) -> dict:
        s = {**self._base_settings(), "chooser": getattr(self.model, "name", str(self.model)), "kappa": None}
        if self.search != "all":
            s["search"] = self.search
        return s

    def describe(self) -> str:
        how = "" if self.search == "all" else " (local search)"
        return (
            f"choosing among {len(self.family)} tables ({self.family.name}) with {self.model.name}{how} at "
            f"{self._rate()}"
        )


@dataclass(frozen=True)
class QNetChoice(_FamilyChoice):
    """Per image, the member with the least KL *predicted* by a QNet (:mod:`dnnjpeg.qnet`) + λ · KiB:
    from one pass of its small probe network, the members' quantization errors and file sizes;
    the classifier itself never runs."""

    qnet: object = None
    # picklable: compress spreads it over its process pool, each worker loading the small probe once;
    # spawned, not forked: the probe runs torch (see dnnjpeg.engine.LocalEngine)
    in_process = False
    pool_start = "spawn"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.qnet is None:
            raise ValueError("a QNet choice needs a trained QNet (dnnjpeg.qnet.load_qnet)")
        q = self.qnet.family
        if (q.members, q.subsamplings, [p.encoder for p in q.points]) != (
            self.family.members,
            self.family.subsamplings,
            [p.encoder for p in self.family.points],
        ):
            raise ValueError(f"the QNet was trained for the family {q.name!r}, not for {self.family.name!r}")

    def _predict(self, pixels: np.ndarray) -> tuple[list[bytes], np.ndarray, np.ndarray]:
        f = self.family
        datas = [p.encode(pixels) for p in f.points]
        bits = np.array([8 * len(d) for d in datas], np.int64)
        return datas, bits, self.qnet.predict_image(pixels, bits)

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        from dnnjpeg.evaluate.selection import choose

        datas, bits, kl = self._predict(pixels)
        k = int(choose(bits[:, None], kl[:, None], self.lam)[0])
        return datas[k], k

    def measure(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, bits, kl = self._predict(pixels)
        return bits, kl

    def settings(self) -> dict:
        return {**self._base_settings(), "chooser": f"qnet {self.qnet.model_name} {self.qnet.digest()}", "kappa": None}

    def describe(self) -> str:
        return (
            f"choosing among {len(self.family)} tables ({self.family.name}) with a QNet for "
            f"{self.qnet.model_name} (probe {self.qnet.probe_name}; the classifier does not run) at {self._rate()}"
        )


@dataclass(frozen=True)
class TableNetChoice:
    """Each image gets its own tables from a table generator (:mod:`dnnjpeg.tablenet`) at ``lam``
    (nats of KL per bit per pixel at the model input): the thumbnail of the classifier's input crop
    → 128 steps, rounded. Trained at the model input: meant for datasets stored near that size."""

    tablenet: object
    lam: float
    subsampling: str = "4:2:0"
    optimize: bool = True
    in_process = True
    target_bpp = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lam) and self.lam > 0):
            raise ValueError(f"--tablenet needs --lam, a finite number > 0 nats per bpp, got {self.lam}")

    @functools.cached_property
    def _pre(self):
        from dnnjpeg.models import load_model

        return load_model(self.tablenet.model_name).preprocess

    def _crop(self, pixels: np.ndarray) -> np.ndarray:
        rgb = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels
        return self._pre.geometry(rgb)

    def tables_for(self, pixels: np.ndarray) -> QuantTables:
        """This image's rounded tables."""
        return self.tablenet.tables(self._crop(pixels)[None], self.lam)[0]

    def scaled(self, factor: float) -> TableNetChoice:
        if factor != 1.0:
            raise ValueError("--scale does not apply to a table generator: change --lam")
        return self

    def settings(self) -> dict:
        import hashlib

        h = hashlib.sha256(b"".join(v.numpy().tobytes() for v in self.tablenet.net.state_dict().values()))
        return {"tablenet": f"{self.tablenet.model_name} {h.hexdigest()[:16]}", "lam": self.lam,
                "subsampling": self.subsampling, "optimize": self.optimize}  # fmt: skip

    def describe(self) -> str:
        m = self.tablenet.model_name
        return f"each image's own tables from a table generator for {m} at λ = {self.lam:g} nats/bpp"

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        return encode(pixels, self.tables_for(pixels), self.subsampling, self.optimize), None

    def measure(self, pixels):
        raise ValueError("a table generator takes --lam, not a bit budget")

    def encode_member(self, pixels, k):
        raise ValueError("a table generator has no members")

    def member_label(self, k: int) -> str:
        return "own tables"


@dataclass(frozen=True)
class SDQChoice:
    """Every image with ``tables``, each block's levels chosen by soft-decision quantization
    (:mod:`dnnjpeg.sdq`): least Σ w (c − q l)² + λ · bits.

    ``weights`` (:data:`dnnjpeg.sdq.weights.WEIGHTS`): "fisher" (lite0's per-model Fisher diagonal,
    λ in nats per bit), "crop" (the same, zero outside lite0's centre crop), "gradient" (this
    image's own Fisher diagonal per block, one backward pass of ``model_name`` per image), "mse"
    (the PSNR control, λ in squared levels per bit). ``lam`` None: ``alpha`` × the table's weighted
    step error (:func:`dnnjpeg.sdq.encode.table_lambda`; default by weights). ``bpp``: instead of a fixed λ, each
    image gets the smallest λ whose file fits that many bits per pixel (a per-image budget).
    Gray images are written with plain rounding (the search is for colour images)."""

    tables: QuantTables
    weights: str = "fisher"
    lam: float | None = None
    alpha: float | None = None  # None: dnnjpeg.sdq.weights.DEFAULT_ALPHA for the weights
    subsampling: str = "4:2:0"
    bpp: float | None = None
    model_name: str = "efficientnet-lite0"
    in_process = False
    pool_start = "spawn"  # the coefficients come from the differentiable codec (torch)
    target_bpp = None  # the budget is per image (``bpp``), not a λ fitted over the tree

    def __post_init__(self) -> None:
        from dnnjpeg.sdq.weights import WEIGHTS

        if self.weights not in WEIGHTS:
            raise ValueError(f"--sdq must be one of {', '.join(WEIGHTS)}, got {self.weights!r}")

        if self.lam is not None and not (math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"--sdq --lam must be a finite number ≥ 0 (nats per bit), got {self.lam}")
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"--sdq alpha must be a finite number ≥ 0, got {self.alpha}")
        if self.bpp is not None and (self.lam is not None or not (math.isfinite(self.bpp) and self.bpp > 0)):
            raise ValueError(f"--sdq takes --lam or --target-bpp (a number > 0), not both; got {self.bpp}")
        if self.subsampling not in ("4:2:0", "4:4:4"):
            raise ValueError(f"--sdq writes 4:2:0 or 4:4:4, got {self.subsampling}")

    def scaled(self, factor: float) -> SDQChoice:
        return self if factor == 1.0 else replace(self, tables=self.tables.scaled(factor))

    @property
    def _alpha(self) -> float:
        from dnnjpeg.sdq.weights import DEFAULT_ALPHA

        return DEFAULT_ALPHA[self.weights] if self.alpha is None else self.alpha

    def settings(self) -> dict:
        return {"sdq": self.weights, "tables": self.tables.to_dict(), "lam": self.lam, "alpha": self._alpha,
                "bpp": self.bpp, "subsampling": self.subsampling,
                "model": self.model_name if self.weights in ("gradient", "crop") else None}  # fmt: skip

    def describe(self) -> str:
        rate = (f"{self.bpp:g} bpp per image" if self.bpp is not None else f"λ = {self.lam:g}" if self.lam is not None
                else f"λ = {self._alpha:g} × the table's step error")  # fmt: skip
        return f"soft-decision quantization ({self.weights} weights) at {rate}, {self.subsampling}"

    @property
    def _model(self):
        # once per process: compress hands every job its own unpickled copy of the chooser
        if self.model_name not in _SDQ_MODELS:
            from dnnjpeg.models import load_model

            _SDQ_MODELS[self.model_name] = load_model(self.model_name)
        return _SDQ_MODELS[self.model_name]

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        if pixels.ndim == 2:
            return encode(pixels, self.tables, self.subsampling, True), None
        one_torch_thread_in_pool_workers()
        from dnnjpeg.sdq.encode import image_coefficients, sdq_encode, table_lambda
        from dnnjpeg.sdq.weights import image_weights, rate_weights

        coefs = image_coefficients(pixels, self.subsampling)
        w = image_weights(self.weights, pixels, self.subsampling, self._model if self.weights == "gradient" else None)
        lam_w = rate_weights(self.weights)

        def at(lam: float) -> bytes:
            return sdq_encode(pixels, self.tables, lam, w, self.subsampling, coefficients=coefs)[0]

        if self.bpp is None:
            return at(self.lam if self.lam is not None else table_lambda(self.tables, lam_w, self._alpha)), None
        n = pixels.shape[0] * pixels.shape[1]
        return _within_budget(at, self.bpp * n / 8, table_lambda(self.tables, lam_w, 1.0), n)

    def measure(self, pixels):
        raise ValueError("SDQ has no members to measure: its budget is per image")

    def encode_member(self, pixels, k):
        raise ValueError("SDQ has no members")

    def member_label(self, k: int) -> str:
        return "sdq"


_SDQ_MODELS: dict = {}


def _within_budget(at, budget_bytes: float, lam0: float, pixels: int) -> tuple[bytes, int | None]:
    """The file of the smallest λ whose size fits ``budget_bytes`` (bits fall as λ grows): λ = 0
    when rounding fits, else doubling from ``lam0`` / 64 then 12 halvings of the bracket in log
    space.

    Raises:
        ValueError: no λ fits: the budget is below the smallest file these tables make (the size
            stops falling as λ grows); the message gives that floor.
    """
    data = at(0.0)
    if len(data) <= budget_bytes:
        return data, None
    lo, hi, best, flat = 0.0, lam0 / 64, None, 0
    for _ in range(40):
        d = at(hi)
        if len(d) <= budget_bytes:
            best = d
            break
        flat = flat + 1 if len(d) >= len(data) else 0
        lo, data, hi = hi, min(data, d, key=len), hi * 4
        if flat >= 2:  # a 16× larger λ saved nothing: every level that can go is gone
            break
    if best is None:
        raise ValueError(
            f"target {8 * budget_bytes / pixels:g} bpp is out of reach: the smallest file soft-decision "
            f"quantization makes of it with these tables is {8 * len(data) / pixels:.4f} bpp; nothing was written"
        )
    for _ in range(12):
        mid = math.sqrt(lo * hi) if lo > 0 else hi / 4
        d = at(mid)
        if len(d) <= budget_bytes:
            hi, best = mid, d
        else:
            lo = mid
    return best, None


def make_chooser(
    *,
    tables: QuantTables | str | os.PathLike[str] | None = None,
    family: Sequence[str | TableFamily] | None = None,
    model=None,
    kappa_from: str | os.PathLike[str] | None = None,
    by_rate: bool = False,
    qnet=None,
    lam: float | None = None,
    target_bpp: float | None = None,
    subsampling: str = "4:2:0",
    optimize: bool = True,
    search: str = "all",
    tablenet=None,
    sdq: str | None = None,
) -> Chooser:
    """The chooser for what a user gave, with one clear error for every bad combination.

    Args:
        tables: fixed tables (or a table JSON file): :class:`FixedTables`.
        family: ``--family`` values (``standard``, ``preset:NAME``, ``sweep:FILE``...) or families;
            several are chosen among together (their union).
        model: a model name or :class:`~dnnjpeg.models.Model`: :class:`NetworkChoice`.
        kappa_from: an evaluation (``results.json`` or its folder) of the same family, or
        by_rate: the family's own recorded mean KL: :class:`RateChoice`.
        qnet: a trained QNet (or its file): :class:`QNetChoice`; the family defaults to its own.
        lam: nats per KiB; ``target_bpp``: bits per pixel to fit instead (one of the two; λ
            defaults to 0.002 when neither is given).
        tablenet: a table generator (or its file): :class:`TableNetChoice` at ``lam`` (nats per bpp).
        sdq: SDQ weights (fisher, crop, gradient, mse): :class:`SDQChoice` with ``tables``
            (default: the shipped lite0 table for stored images) at ``lam`` (nats per bit; default
            alpha × the table's step error) or ``target_bpp`` per image.
        search: with ``model``: "all" members measured per image, or "climb" (a local search;
            with ``target_bpp`` the budget is still found by measuring every member).
    Raises:
        ValueError: none or several ways chosen, a family without one, λ with a target, a
            family without recorded mean KL for ``by_rate``, an unreadable file...
    """
    from dnnjpeg._fs import read_json
    from dnnjpeg.families import parse_family

    if sdq is not None:
        if any(x is not None for x in (model, kappa_from, qnet, tablenet)) or by_rate or family:
            raise ValueError(
                "--sdq searches each block's levels in fixed tables (--tables, default the shipped lite0 table); "
                "to choose a table per image too, use --family sdq:WEIGHTS --select-model MODEL"
            )
        from dnnjpeg.presets import load_preset

        t = (tables if isinstance(tables, QuantTables) else QuantTables.load(tables)) if tables is not None else (
            load_preset("efficientnet-lite0-420-original"))  # fmt: skip
        return SDQChoice(t, sdq, lam, subsampling=subsampling, bpp=target_bpp)
    if tablenet is not None:
        if any(x is not None for x in (tables, model, kappa_from, qnet)) or by_rate or family or target_bpp is not None:
            raise ValueError("--tablenet gives each image its own tables: use it with --lam only")
        if lam is None:
            raise ValueError("--tablenet needs --lam (nats of KL per bit per pixel at the model input, e.g. 0.02)")
        if isinstance(tablenet, (str, os.PathLike)):
            from dnnjpeg.tablenet import load_tablenet

            tablenet = load_tablenet(tablenet)
        return TableNetChoice(tablenet, lam, subsampling, optimize)
    if search != "all" and model is None:
        raise ValueError("--search climb is a way for --select-model to measure fewer members")
    ways = [x for x in (tables, model, kappa_from, by_rate or None, qnet) if x is not None]
    if len(ways) != 1:
        raise ValueError(
            "give one of --tables FILE, --select-model NAME, --kappa FILE, --by-rate (these three with --family) "
            "or --qnet FILE"
        )
    if tables is not None:
        if lam is not None or target_bpp is not None or family:
            raise ValueError("--lam, --target-bpp and --family go with a per-image chooser, not with --tables")
        t = tables if isinstance(tables, QuantTables) else QuantTables.load(tables)
        return FixedTables(t, subsampling, optimize)
    if isinstance(qnet, (str, os.PathLike)):
        from dnnjpeg.qnet import load_qnet

        qnet = load_qnet(qnet)
    if qnet is not None and not family:
        family = [qnet.family]
    if not family:
        raise ValueError(
            "--select-model, --kappa and --by-rate need --family, e.g. --family standard or --family sweep:design.json"
        )
    if lam is not None and target_bpp is not None:
        raise ValueError("--lam and --target-bpp both set λ: give one (--target-bpp finds the λ that fits)")
    if lam is None and target_bpp is None:
        lam = 0.002
    _check_rate(lam, target_bpp)  # before anything is read or loaded
    fams = [f if isinstance(f, TableFamily) else parse_family(f, subsampling, optimize=optimize) for f in family]
    if any(f.kind == "jpegli" for f in fams):
        raise ValueError(
            "--family jpegli: compress writes dnnjpeg's tables with libjpeg; jpegli is a codec for evaluate "
            "(--codec jpegli) only"
        )
    if kappa_from is not None:
        kf = Path(kappa_from)
        kf = kf / "results.json" if kf.is_dir() else kf
        ev = read_json(kf)
        fams = [f.kappa_from_evaluation(ev, str(kf)) for f in fams]
    elif by_rate:
        missing = [getattr(t, "name", t) for t, f in zip(family, fams) if f.kappa is None]
        if missing:
            raise ValueError(
                f"--by-rate: {', '.join(missing)} records no mean KL per member; use --kappa EVAL "
                "(an evaluation of the same family) or --select-model"
            )
    whole = fams[0] if len(fams) == 1 else TableFamily.union(fams)
    if qnet is not None:  # QNetChoice refuses a family the QNet was not trained for
        return QNetChoice(whole, lam, target_bpp, qnet=qnet)
    if model is not None:
        if isinstance(model, str):
            from dnnjpeg.models import load_model

            model = load_model(model)
        return NetworkChoice(whole, lam, target_bpp, model=model, search=search)
    return RateChoice(whole, lam, target_bpp)
