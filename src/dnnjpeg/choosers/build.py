"""Building the chooser a user asked for, with one clear error for every combination that cannot work."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from dnnjpeg.choosers.base import Chooser, FixedTables, _check_rate
from dnnjpeg.choosers.family import NetworkChoice, QNetChoice, RateChoice
from dnnjpeg.choosers.own import SDQChoice, TableNetChoice
from dnnjpeg.codec import QuantTables
from dnnjpeg.conventions import subsampling_of
from dnnjpeg.families import TableFamily

__all__ = ["make_chooser", "chooser_from_decisions", "CHOOSE_KINDS", "LEVELS", "DEFAULT_FAMILY"]


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
    sdq_alpha: float | None = None,
    file_bpp: float | None = None,
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
            alpha × the table's step error), ``target_bpp`` (the tree's average, as for every chooser)
            or ``file_bpp`` (a cap per file: each file the smallest λ that fits).
        search: with ``model``: "all" members measured per image, or "climb" (a local search;
            with ``target_bpp`` the budget is still found by measuring every member).
    Raises:
        ValueError: none or several ways chosen, a family without one, λ with a target, a
            family without recorded mean KL for ``by_rate``, an unreadable file...
    """
    _one_way(tables, family, model, kappa_from, by_rate, qnet, target_bpp, search, tablenet, sdq)
    if sdq is not None:
        return _sdq_chooser(tables, sdq, sdq_alpha, lam, target_bpp, subsampling, file_bpp)
    if file_bpp is not None:
        raise ValueError("--file-bpp caps each file by SDQ's λ: it goes with --choose fixed --levels sdq:W")
    if tablenet is not None:
        return _tablenet_chooser(tablenet, lam, subsampling, optimize)
    if tables is not None:
        if lam is not None or target_bpp is not None or family:
            raise ValueError("--lam, --target-bpp and --family go with a per-image chooser, not with --tables")
        return FixedTables(_tables(tables), subsampling, optimize)
    return _family_chooser(family, model, kappa_from, by_rate, qnet, lam, target_bpp, subsampling, optimize, search)


def _family_chooser(family, model, kappa_from, by_rate, qnet, lam, target_bpp, subsampling, optimize, search):
    """A choice per image among the family's members: by a QNet, by the network, or by rate."""
    if isinstance(qnet, (str, os.PathLike)):
        from dnnjpeg.qnet import load_qnet

        qnet = load_qnet(qnet)
    lam = _budget(lam, target_bpp)
    whole = _family_to_choose_from(family or ([qnet.family] if qnet is not None else []), kappa_from, by_rate,
                                   subsampling, optimize)  # fmt: skip
    if qnet is not None:  # QNetChoice refuses a family the QNet was not trained for
        return QNetChoice(whole, lam, target_bpp, qnet=qnet)
    if model is not None:
        if isinstance(model, str):
            from dnnjpeg.models import load_model

            model = load_model(model)
        return NetworkChoice(whole, lam, target_bpp, model=model, search=search)
    return RateChoice(whole, lam, target_bpp)


def _one_way(tables, family, model, kappa_from, by_rate, qnet, target_bpp, search, tablenet, sdq) -> None:
    """Refuse (ValueError) every mix of ways to choose that cannot work, before anything loads."""
    if sdq is not None:
        if any(x is not None for x in (model, kappa_from, qnet, tablenet)) or by_rate or family:
            raise ValueError(
                "SDQ on fixed tables takes --tables only (default the shipped lite0 table); to choose a table per "
                "image too, give --choose network (or rate) with --levels sdq:WEIGHTS"
            )
        return
    if tablenet is not None:
        if any(x is not None for x in (tables, model, kappa_from, qnet)) or by_rate or family or target_bpp is not None:
            raise ValueError("--choose tablenet gives each image its own tables: use it with --lam only")
        return
    if search != "all" and model is None:
        raise ValueError("--choose climb is a way for --choose network to measure fewer members")
    if len([x for x in (tables, model, kappa_from, by_rate or None, qnet) if x is not None]) != 1:
        raise ValueError(
            "give one way to choose: --choose fixed with --tables FILE, or --choose network[:MODEL], rate[:EVAL] "
            "(with --family) or qnet[:FILE]"
        )


def _sdq_chooser(tables, weights: str, alpha, lam, target_bpp, subsampling: str, file_bpp=None) -> SDQChoice:
    """SDQ in fixed tables (default: the shipped lite0 table for stored images)."""
    from dnnjpeg.presets import load_preset

    t = _tables(tables) if tables is not None else (
        load_preset("efficientnet-lite0-420-original"))  # fmt: skip
    return SDQChoice(t, weights, lam, alpha=alpha, subsampling=subsampling, bpp=target_bpp, file_bpp=file_bpp)


def _tables(tables) -> QuantTables:
    """``--tables``: tables, a table JSON file, ``preset:NAME`` (a shipped table, as ``dnnjpeg presets
    NAME`` prints it) or ``standard:Q`` (libjpeg's tables at quality Q, 1..100: the ladder's); a file
    of that name wins."""
    if isinstance(tables, QuantTables):
        return tables
    text = str(tables)
    if text.startswith("standard:") and not Path(text).exists():
        q = text.removeprefix("standard:")
        if not (q.isdigit() and 1 <= int(q) <= 100):
            raise ValueError(f"--tables standard:Q takes libjpeg's quality Q, an integer 1..100, got {q!r}")
        return QuantTables.standard(int(q))
    if text.startswith("preset:") and not Path(text).exists():
        from dnnjpeg.presets import load_preset

        return load_preset(text.removeprefix("preset:"))
    return QuantTables.load(tables)


def _tablenet_chooser(tablenet, lam, subsampling: str, optimize: bool) -> TableNetChoice:
    if lam is None:
        raise ValueError("--choose tablenet needs --lam (nats of KL per bit per pixel at the model input, e.g. 0.02)")
    if isinstance(tablenet, (str, os.PathLike)):
        from dnnjpeg.tablenet import load_tablenet

        tablenet = load_tablenet(tablenet)
    return TableNetChoice(tablenet, lam, subsampling, optimize)


def _budget(lam: float | None, target_bpp: float | None) -> float | None:
    """λ for a family chooser: the one given, none with a bit target, 0.002 nats per KiB by default."""
    if lam is not None and target_bpp is not None:
        raise ValueError("--lam and --target-bpp both set λ: give one (--target-bpp finds the λ that fits)")
    if lam is None and target_bpp is None:
        lam = 0.002
    _check_rate(lam, target_bpp)  # before anything is read or loaded
    return lam


def _family_to_choose_from(family, kappa_from, by_rate: bool, subsampling: str, optimize: bool) -> TableFamily:
    """The union of the ``--family`` values, with each member's κ from an evaluation or the family's record."""
    from dnnjpeg._fs import display, read_json
    from dnnjpeg.families import parse_family

    if not family:
        raise ValueError(
            "--choose network and --choose rate need --family, e.g. --family standard or --family sweep:design.json"
        )
    fams = [f if isinstance(f, TableFamily) else parse_family(f, subsampling, optimize=optimize) for f in family]
    if any(f.kind == "jpegli" for f in fams):
        raise ValueError(
            "--family jpegli: compress writes dnnjpeg's tables with libjpeg; jpegli is a codec for evaluate "
            "(--codec jpegli) only"
        )
    if kappa_from is not None:
        kf = Path(kappa_from)
        kf = kf / "results.json" if kf.is_dir() else kf
        try:
            ev = read_json(kf)
        except OSError as e:
            raise ValueError(f"--choose rate:{display(kappa_from)}: the evaluation whose KL the choice uses cannot be "
                             f"read ({e.strerror or e})") from None  # fmt: skip
        fams = [f.kappa_from_evaluation(ev, str(kf)) for f in fams]
    elif by_rate:
        missing = [getattr(t, "name", t) for t, f in zip(family, fams) if f.kappa is None]
        if missing:
            raise ValueError(
                f"--choose rate: {', '.join(missing)} records no mean KL per member; use --choose rate:EVAL "
                "(an evaluation of the same family) or --choose network"
            )
    return fams[0] if len(fams) == 1 else TableFamily.union(fams)


#: ``--choose``: how each image's tables are decided (the first decision of compress)
CHOOSE_KINDS: dict[str, str] = {
    "fixed": "every image with --tables (the default)",
    "rate": "by file size alone, each member's KL as its --family records it (rate:EVAL: as an evaluation measured it)",
    "qnet": "by a trained QNet's predicted KL (qnet:FILE; default the shipped lite0 QNet); the classifier does not run",
    "network": "by the network in the loop: every member measured per image (network:MODEL; default lite0)",
    "climb": "by the network, walking from the choice by rate to cheaper members two each way (climb:MODEL): "
    "~5 passes, ≥95% of network's gain on the size grid",
    "tablenet": "tables of its own from a table generator (tablenet:FILE, from qnet train-tables)",
}
#: ``--levels``: how each block's levels are chosen inside the chosen tables (the second decision)
LEVELS = ("round", "sdq:mse", "sdq:fisher", "sdq:crop", "sdq:gradient")
#: the family the per-image choosers take when no --family is given: the shipped lite0 sweep
DEFAULT_FAMILY = "preset:efficientnet-lite0-420-original-sweep"


def _levels(text: str) -> tuple[str | None, float | None]:
    """``round`` → (None, None); ``sdq:WEIGHTS[:ALPHA]`` → (weights, alpha or None)."""
    from dnnjpeg.sdq.weights import WEIGHTS

    if text == "round":
        return None, None
    kind, _, rest = text.partition(":")
    weights, _, alpha = rest.partition(":")
    if kind != "sdq" or weights not in WEIGHTS:
        raise ValueError(
            f"--levels {text!r}: give round or sdq:WEIGHTS[:ALPHA] with WEIGHTS one of {', '.join(WEIGHTS)}"
        )
    try:
        a = float(alpha) if alpha else None
    except ValueError:
        raise ValueError(f"--levels {text!r}: ALPHA must be a number ≥ 0, e.g. sdq:fisher:0.5") from None
    if a is not None and not (math.isfinite(a) and a >= 0):
        raise ValueError(f"--levels {text!r}: ALPHA must be a finite number ≥ 0")
    return weights, a


def chooser_from_decisions(
    choose: str = "fixed",
    levels: str = "round",
    *,
    tables: QuantTables | str | os.PathLike[str] | None = None,
    family: Sequence[str] | None = None,
    lam: float | None = None,
    target_bpp: float | None = None,
    subsampling: str = "4:2:0",
    optimize: bool = True,
    file_bpp: float | None = None,
    keep: float | None = None,
) -> Chooser:
    """compress's two decisions: ``choose`` (which tables each image gets, :data:`CHOOSE_KINDS`) and
    ``levels`` (how each block's levels are chosen in them, :data:`LEVELS`), with one budget (``lam`` or
    ``target_bpp``, the tree's average; or ``file_bpp``, a cap per file, with fixed tables and SDQ). Every
    pair that makes sense is built from the same choosers as :func:`make_chooser` (same files, byte for
    byte); a pair that does not is one ValueError saying why. ``keep``: :attr:`NetworkChoice.keep`.
    """
    subsampling = subsampling_of(subsampling)  # before any file: a bad one would fail every file
    kind, _, arg = choose.partition(":")
    if keep is not None:
        return _guarantee(choose, levels, family, subsampling, optimize, keep, lam, target_bpp)
    _check_kind(kind, choose, levels, file_bpp)
    weights, alpha = _levels(levels)
    rate = {"lam": lam, "target_bpp": target_bpp, "subsampling": subsampling, "optimize": optimize}
    if kind == "fixed":
        if family:
            raise ValueError("--choose fixed writes one table (--tables); --family is for a per-image --choose")
        if arg:
            raise ValueError(f"--choose {choose!r}: fixed takes no argument; give the table as --tables FILE")
        if weights is not None:  # default: the shipped lite0 table
            return make_chooser(tables=tables, sdq=weights, sdq_alpha=alpha, file_bpp=file_bpp, **rate)
        if tables is None:
            raise ValueError("--choose fixed needs --tables FILE (or choose per image: --choose network, rate, qnet)")
        return make_chooser(tables=tables, **rate)
    if tables is not None:
        raise ValueError(
            f"--tables is the one table of --choose fixed; --choose {kind} chooses among --family "
            "(e.g. --family tables:FILE.json, swept by scale)"
        )
    if kind == "tablenet":
        if weights is not None:
            raise ValueError(
                "--choose tablenet: the generator's tables are used as it was trained, rounded: --levels round"
            )
        if not arg:
            raise ValueError("--choose tablenet:FILE: name the table generator (from dnnjpeg qnet train-tables)")
        return make_chooser(tablenet=arg, family=family, **rate)
    if kind == "qnet":
        return _qnet_choice(arg or "preset:efficientnet-lite0-qnet", weights, family, rate)
    fams = list(family or [DEFAULT_FAMILY])
    if weights is not None:
        if any(f.startswith("sdq:") for f in fams):
            raise ValueError("--levels sdq:… applies SDQ to --family: give the family's plain tables, not sdq:…")
        fams = [f"sdq:{weights}:" + (f"{alpha:g}:" if alpha is not None else "") + f for f in fams]
    if kind == "rate":
        return make_chooser(family=fams, kappa_from=arg or None, by_rate=not arg, **rate)
    return make_chooser(family=fams, model=arg or "efficientnet-lite0", search="climb" if kind == "climb" else "all",
                        **rate)  # fmt: skip


def _check_kind(kind: str, choose: str, levels: str, file_bpp) -> None:
    if file_bpp is not None and (kind != "fixed" or levels == "round"):
        raise ValueError("--file-bpp caps each file by SDQ's λ: it goes with --choose fixed --levels sdq:W")
    if kind not in CHOOSE_KINDS:
        raise ValueError(f"--choose {choose!r}: one of {', '.join(CHOOSE_KINDS)} (optionally KIND:ARG)")


def _guarantee(choose, levels, family, subsampling, optimize, keep: float, lam, target_bpp) -> Chooser:
    """The network choice with ``keep`` (--keep-prediction [--max-kl]) instead of a price."""
    from dataclasses import replace

    if choose.partition(":")[0] != "network":
        raise ValueError("--keep-prediction needs the network's answers on every member: --choose network")
    if lam is not None or target_bpp is not None:
        raise ValueError("--keep-prediction decides each image's bits itself: no --lam or --target-bpp")
    plain = chooser_from_decisions(choose, levels, family=family, subsampling=subsampling, optimize=optimize)
    return replace(plain, keep=keep)


def _qnet_choice(ref: str, weights: str | None, family, rate: dict) -> Chooser:
    if weights is not None:
        raise ValueError(
            "--choose qnet with --levels sdq:…: a QNet predicts the KL of its own members as it was trained "
            "(rounded levels), not of SDQ files: --levels round"
        )
    return make_chooser(qnet=ref, family=family, **rate)
