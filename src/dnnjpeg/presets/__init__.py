"""Designed tables shipped with dnnjpeg, loadable by name (``--codec preset:NAME``).

Each preset is a JSON file beside this module holding the tables (natural
order) and, under ``"design"``, how they were made and the eval-split curve
they were measured on.
"""

from __future__ import annotations

import json
from importlib import resources

from dnnjpeg.codec import QuantTables

__all__ = ["available_presets", "load_preset", "preset_info"]


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
