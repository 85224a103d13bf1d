"""Soft-decision quantization: each block's levels chosen for the network (work in progress).

:mod:`dnnjpeg.sdq.rate` is the exact bit cost of levels under a file's Huffman tables, the
rate term the block-level search will minimize against the network-weighted error.
"""

from dnnjpeg.sdq.rate import HuffmanTable, parse_huffman, scan_bits

__all__ = ["HuffmanTable", "parse_huffman", "scan_bits"]
