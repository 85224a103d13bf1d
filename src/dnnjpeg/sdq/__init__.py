"""Soft-decision quantization: each block's levels chosen for the network (work in progress).

:mod:`dnnjpeg.sdq.rate` is the exact bit cost of levels under a file's Huffman tables, the
rate term; :mod:`dnnjpeg.sdq.trellis` the block-level search (:func:`sdq_levels`: each block's AC
levels minimizing weighted squared error + λ · bits, exact for the Lagrangian);
:func:`dnnjpeg.sdq.encode.sdq_encode` an image encoded that way, Huffman tables re-fitted to the
levels between passes, written as an ordinary baseline file. Still to come: the network's weights
(Fisher per model, gradient per image), table alternation, and compress/evaluate.
"""

from dnnjpeg.sdq.encode import image_coefficients, sdq_encode
from dnnjpeg.sdq.rate import HuffmanTable, parse_huffman, scan_bits
from dnnjpeg.sdq.trellis import sdq_levels, trellis_ac

__all__ = ["HuffmanTable", "parse_huffman", "scan_bits", "sdq_levels", "trellis_ac", "sdq_encode", "image_coefficients"]
