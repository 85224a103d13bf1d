"""The conventions every stage of dnnjpeg shares, in one place.

Subsampling names, where JPEG happens (``--at``), the order of chroma factors, the
standard quality ladder, and λ — each λ carries its unit in its name, since three
different trade-offs use one Greek letter:

* ``nats per KiB``: the per-image choice (:mod:`dnnjpeg.select`): cost = KL + λ · file KiB.
* ``nats per bpp``: the gradient designer: loss = mean KL + λ · bits per pixel (rate model).
* ``nats per bit``: the Fisher designer's Lagrangian per coefficient (predicted KL + λ · bits).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "Subsampling", "SUBSAMPLINGS", "subsampling_of", "At", "AT_CHOICES", "CHROMA_FACTORS", "LADDER_QUALITIES",
    "KIB_BITS", "DEFAULT_LAMBDAS_NATS_PER_KIB", "DEFAULT_LAMBDAS_NATS_PER_BPP",
]  # fmt: skip

#: A chroma subsampling that Pillow's encoder can write.
Subsampling = Literal["4:4:4", "4:2:2", "4:2:0"]
SUBSAMPLINGS: tuple[str, ...] = ("4:4:4", "4:2:2", "4:2:0")


def subsampling_of(text: str) -> str:
    """A subsampling as written (``4:2:0``, ``420``, ``4-2-0``) → its one name in :data:`SUBSAMPLINGS`.

    Raises:
        ValueError: anything else (the message lists the three).
    """
    digits = "".join(c for c in str(text) if c.isdigit())
    name = ":".join(digits) if len(digits) == 3 else None
    if name not in SUBSAMPLINGS:
        raise ValueError(f"subsampling {text!r}: one of {', '.join(SUBSAMPLINGS)} (or 444, 422, 420)")
    return name


#: Where JPEG happens: "input" encodes the model-input crop (a camera sends what the network
#: sees); "original" encodes the stored image, which is then preprocessed.
At = Literal["input", "original"]
AT_CHOICES: tuple[str, ...] = ("input", "original")

#: Chroma down-sampling factors as (horizontal, vertical), the order of a SOF segment's
#: sampling byte and of libjpeg's h2v1 / h2v2 names.
CHROMA_FACTORS: dict[str, tuple[int, int]] = {"4:4:4": (1, 1), "4:2:2": (2, 1), "4:2:0": (2, 2)}

#: The IJG qualities of the standard libjpeg ladder every comparison is made against.
LADDER_QUALITIES: tuple[int, ...] = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)

#: Bits in a KiB: λ in nats per KiB weighs ``bits / KIB_BITS``.
KIB_BITS = 8192

#: The per-image choice's default sweep (evaluate --select, demo): 16 values, 1e-5 … 1.
DEFAULT_LAMBDAS_NATS_PER_KIB: tuple[float, ...] = tuple(float(x) for x in np.geomspace(1e-5, 1.0, 16))

#: The gradient designer's sweep, high to low (warm starts from coarse to fine tables).
DEFAULT_LAMBDAS_NATS_PER_BPP: tuple[float, ...] = (0.1, 0.05, 0.025, 0.012, 0.006, 0.003)
