"""The codec values under their evaluation names (they live in :mod:`dnnjpeg.families`).

``CodecCurve`` is :class:`~dnnjpeg.families.TableFamily` and ``parse_codec`` is
:func:`~dnnjpeg.families.parse_family`: one type and one reader for every family of tables.
"""

from dnnjpeg.families import DEFAULT_SCALES, CodecSpec, TableFamily, parse_family, sweep_of

CodecCurve = TableFamily
parse_codec = parse_family

__all__ = ["CodecSpec", "CodecCurve", "parse_codec", "sweep_of", "DEFAULT_SCALES"]
