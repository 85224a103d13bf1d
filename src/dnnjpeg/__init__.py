"""dnnjpeg: JPEG made for neural networks instead of human eyes.

Stages (one subpackage each): :mod:`dnnjpeg.codec` (tables, headers, encode/decode,
coefficients) is the lowest layer every other stage uses.
"""

from dnnjpeg.codec import QuantTables

__version__ = "0.1.0"
__all__ = ["QuantTables", "__version__"]
