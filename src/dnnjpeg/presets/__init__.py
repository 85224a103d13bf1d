"""Designed tables shipped with dnnjpeg, loadable by name (``--codec preset:NAME``).

Each preset is a JSON file beside this module holding the tables (natural
order) and, under ``"design"``, how they were made and the eval-split curve
they were measured on.
"""

from __future__ import annotations

import json
from importlib import resources

from dnnjpeg.codec import QuantTables

__all__ = ["available_presets", "load_preset", "preset_info", "preset_summary", "preset_result"]


def available_presets() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".json"))


def preset_info(name: str) -> dict:
    """The whole preset document (tables, design settings, measured curve)."""
    f = resources.files(__name__).joinpath(f"{name}.json")
    if not f.is_file():
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(available_presets()) or 'none'}")
    return json.loads(f.read_text())


def load_preset(name: str) -> QuantTables:
    """The tables of preset ``name``."""
    return QuantTables.from_dict(preset_info(name))


def preset_summary(name: str) -> dict:
    """One flat row about preset ``name``: what it was designed for and how it measured.

    Keys: name, model, at, subsampling, method, n_images (eval-split images it
    was measured on), bd_rate and bd_rate_ci (% bits against the reference
    ladder at equal top-1; negative = fewer bits), bd_accuracy (top-1 points at
    equal rate), reference (the ladder it was compared with); for a sweep that records its
    members' mean KL, by_rate_bd_rate / by_rate_bd_rate_ci / by_rate_bd_rate_kl: the same
    comparison for the per-image choice by rate (``compress --choose rate``), else None.
    """
    d = preset_info(name)
    des, m = d.get("design", {}), d.get("measured", {})
    k = m.get("comparison", {})
    br = (m.get("by_rate") or {}).get("comparison") or {}
    return {
        "name": name,
        "model": des.get("model") or m.get("settings", {}).get("model"),
        "at": des.get("at") or m.get("settings", {}).get("at"),
        "subsampling": des.get("subsampling"),
        "method": des.get("method"),
        "n_images": m.get("settings", {}).get("n_images"),
        "reference": k.get("reference"),
        "bd_rate": k.get("bd_rate"),
        "bd_rate_ci": k.get("bd_rate_ci"),
        "bd_accuracy": k.get("bd_accuracy"),
        "bd_rate_kl": k.get("bd_rate_kl"),
        "bd_rate_kl_ci": k.get("bd_rate_kl_ci"),
        "by_rate_bd_rate": br.get("bd_rate"),
        "by_rate_bd_rate_ci": br.get("bd_rate_ci"),
        "by_rate_bd_rate_kl": br.get("bd_rate_kl"),
    }


def preset_result(name: str) -> dict:
    """The preset's measured curve shaped like an evaluation result, so that
    :func:`dnnjpeg.evaluate.report.plot_curves` can draw it: ``settings``,
    ``pristine`` (top-1 %), ``curves`` (the reference ladder, then the preset, then for a
    sweep with recorded mean KL its per-image choice by rate; points with label, bpp, top1,
    kl) and ``comparisons``.
    """
    d = preset_info(name)
    m = d.get("measured")
    if not m:
        raise ValueError(f"preset {name!r} carries no measured curve")
    k = m["comparison"]
    curves = [
        {"name": k.get("reference", "standard"), "kind": "standard", "points": m["ladder"]},
        {"name": f"preset:{name}", "kind": "tables", "points": m["preset"]},
    ]
    comparisons = [k]
    if m.get("by_rate"):  # a sweep with its members' mean KL: also its per-image choice by rate
        curves.append(
            {"name": f"preset:{name} per-image by rate", "kind": "selected", "points": m["by_rate"]["points"]}
        )
        comparisons.append(m["by_rate"]["comparison"])
    return {
        "settings": {**m["settings"], "accuracy_metric": "top1"},
        "pristine": {"top1": m["pristine_top1"]},
        "curves": curves,
        "comparisons": comparisons,
    }
