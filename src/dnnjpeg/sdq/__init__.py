"""Soft-decision quantization: each block's levels chosen for the network.

:mod:`dnnjpeg.sdq.rate` is the exact bit cost of levels under a file's Huffman tables, the rate
term; :mod:`dnnjpeg.sdq.trellis` the block-level search (:func:`sdq_levels`: each block's AC
levels minimizing weighted squared error + λ · bits, exact for the Lagrangian, one weight row per
frequency or per block); :func:`sdq_encode` an image encoded that way, Huffman tables re-fitted to
the levels between passes and optionally the tables themselves (OptS's alternation), written as an
ordinary baseline file; :mod:`dnnjpeg.sdq.weights` the weights: lite0's per-model Fisher diagonal,
the same inside the model's crop only, an image's own Fisher diagonal per block (one backward pass),
or 1 (PSNR). ``--codec sdq:…`` (:mod:`dnnjpeg.families`) and ``compress --levels sdq`` use them.
"""

from dnnjpeg.sdq.encode import fisher_weights, image_coefficients, sdq_encode, table_lambda
from dnnjpeg.sdq.rate import HuffmanTable, parse_huffman, scan_bits
from dnnjpeg.sdq.trellis import sdq_levels, trellis_ac
from dnnjpeg.sdq.weights import WEIGHTS, crop_mask, gradient_weights, model_weights

__all__ = [
    "HuffmanTable", "parse_huffman", "scan_bits", "sdq_levels", "trellis_ac", "sdq_encode", "image_coefficients",
    "fisher_weights", "table_lambda", "gradient_weights", "crop_mask", "model_weights", "WEIGHTS",
]  # fmt: skip
