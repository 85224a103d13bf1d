"""The JPEG codec layer: tables, headers, quality, coefficients, encode/decode.

Every later stage of dnnjpeg talks to JPEG files through this package only.
"""

from dnnjpeg.codec.coefficients import Coefficients, read_coefficients, write_coefficients
from dnnjpeg.codec.errors import CorruptJpegError, JpegError, NotAJpegError, UnsupportedJpegError
from dnnjpeg.codec.files import MAX_PIXELS, ImageTooLargeError, check_jpeg_data, load_image
from dnnjpeg.codec.header import Component, JpegHeader, parse_header, parse_header_bytes, sniff_format, subsampling_name
from dnnjpeg.codec.pillow_io import SUBSAMPLINGS, decode, decode_file, encode, resize_shorter
from dnnjpeg.codec.quality import QualityEstimate, estimate_quality, estimate_quality_tables
from dnnjpeg.codec.tables import (
    ANNEX_K_CHROMA,
    ANNEX_K_LUMA,
    INVERSE_ZIGZAG,
    ZIGZAG,
    QuantTables,
    from_zigzag,
    ijg_scale_factor,
    ijg_scaled_table,
    to_zigzag,
)

__all__ = [
    "MAX_PIXELS",
    "ImageTooLargeError",
    "check_jpeg_data",
    "load_image",
    "ANNEX_K_CHROMA",
    "ANNEX_K_LUMA",
    "INVERSE_ZIGZAG",
    "ZIGZAG",
    "SUBSAMPLINGS",
    "resize_shorter",
    "Coefficients",
    "Component",
    "CorruptJpegError",
    "JpegError",
    "JpegHeader",
    "NotAJpegError",
    "QualityEstimate",
    "QuantTables",
    "UnsupportedJpegError",
    "decode",
    "decode_file",
    "encode",
    "estimate_quality",
    "estimate_quality_tables",
    "from_zigzag",
    "ijg_scale_factor",
    "ijg_scaled_table",
    "parse_header",
    "parse_header_bytes",
    "read_coefficients",
    "sniff_format",
    "subsampling_name",
    "to_zigzag",
    "write_coefficients",
]
