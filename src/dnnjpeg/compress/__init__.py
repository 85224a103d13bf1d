"""Re-encode a whole image tree with given tables as standard baseline JPEG files.

SRC is only ever read: the destination may not overlap it, and no output may
reach into it (a symbolic link in DST is never followed: see :mod:`dnnjpeg._fs`).
Each output is written atomically (temporary file, then rename), so an interrupted
run leaves complete files or none; ``resume`` skips outputs that already decode,
and existing outputs are never replaced unless ``overwrite`` is asked for.  The
settings of a run are recorded in ``DST/.dnnjpeg-compress.json``; a later run into
the same DST with other settings is refused unless it overwrites.
Every source file is decoded strictly: a JPEG with corrupt scan data (any libjpeg
warning) is a per-file failure, never re-encoded as garbage.
Pixels are taken as stored (EXIF orientation is not applied; metadata is not
copied); grayscale images stay grayscale.

Each image's tables come from one chooser (:mod:`dnnjpeg.choosers`): fixed tables, the
per-image choice by rate alone (in a process pool), or by a network (in this process,
one image's K candidates at a time).
"""

from dnnjpeg.choosers import MAX_SCALE
from dnnjpeg.compress.files import _pixels, at_model_size, output_path
from dnnjpeg.compress.run import SETTINGS_FILE, CompressReport, CompressSettings, check_run, compress_tree, drops

__all__ = ["drops", "CompressReport", "CompressSettings", "compress_tree", "check_run", "output_path", "at_model_size",
           "SETTINGS_FILE", "MAX_SCALE", "_pixels"]  # fmt: skip
