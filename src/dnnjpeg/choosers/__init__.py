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

from dnnjpeg.choosers.base import MAX_SCALE, Chooser, FixedTables
from dnnjpeg.choosers.build import make_chooser
from dnnjpeg.choosers.family import NetworkChoice, QNetChoice, RateChoice
from dnnjpeg.choosers.own import SDQChoice, TableNetChoice

__all__ = [
    "Chooser", "FixedTables", "RateChoice", "NetworkChoice", "QNetChoice", "TableNetChoice", "SDQChoice",
    "make_chooser", "MAX_SCALE",
]  # fmt: skip
