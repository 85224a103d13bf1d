"""DCT-domain deep learning: networks that read JPEG coefficients instead of pixels.

:mod:`dnnjpeg.dct.read` reads a file's quantized coefficients with a compiled Huffman decoder (no
inverse DCT); :mod:`dnnjpeg.dct.planes` lays them out as frequency channels (Y (64, H/8, W/8), Cb and
Cr (128, …)) with block-grid crops and DCT-domain flips.
"""

from dnnjpeg.dct.planes import DctPlanes, crop_blocks, hflip, load_planes, planes_from_bytes, planes_of
from dnnjpeg.dct.read import decode_coefficients, read_coefficients_fast

__all__ = ["DctPlanes", "crop_blocks", "hflip", "load_planes", "planes_from_bytes", "planes_of", "decode_coefficients",
           "read_coefficients_fast"]  # fmt: skip
