"""Shared test fixtures: the datasets beside the checkout (../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DNNJPEG_SHARED", REPO.parent / "shared")) / "data"


def _need(sub: str) -> Path:
    p = SHARED / sub
    if not p.is_dir():
        pytest.skip(f"{p} is absent: this test needs the shared data sets beside the checkout")
    return p


@pytest.fixture(scope="session")
def imagenet_dir() -> Path:
    """../shared/data/imagenet-sample (1000 JPEGs, one per class)."""
    return _need("imagenet-sample")


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    """../shared/data/kodak (24 lossless PNGs)."""
    return _need("kodak")


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    return _need("cifar10")


@pytest.fixture(scope="session")
def lite0():
    """EfficientNet-Lite0 from its wheel, loaded once per test process (tests only read it; a module that
    changes its model defines its own fixture)."""
    from dnnjpeg.models import load_model

    return load_model("efficientnet-lite0")
