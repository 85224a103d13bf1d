"""JPEG-DL on CIFAR-10: the same small ResNet trained with and without a trainable JPEG layer.

    .venv/bin/python examples/train_jpegdl.py ../shared/data/cifar10 --seeds 0,1,2 --epochs 6 --out jpegdl-results

Each seed trains both variants with the same schedule, data order, augmentation and
initial weights; the script prints test top-1 per seed, the mean difference with a
95% t-interval over seeds, and writes OUT/results.json and OUT/tables-seed*.json (the
learned tables, ready for ``--codec tables:FILE``).  Same as
``dnnjpeg train DATA --jpeg-layer --compare``.
"""

from __future__ import annotations

import sys

from dnnjpeg._runtime import tune_malloc

if __name__ == "__main__":
    tune_malloc()
    from dnnjpeg.cli import app

    sys.exit(app(["train", *sys.argv[1:], "--compare"]))
