"""JPEG as PyTorch modules: a differentiable codec, a rate model, and the trainable JPEG layer.

* :class:`DiffJPEG` — encode → quantize → decode, batched, per-sample tables allowed,
  rounding ``exact`` (a real codec's output), ``ste``, ``cubic``, ``noise`` or ``soft``.
* :class:`RateModel` — differentiable file-size estimate, calibrated on real encodes.
* :class:`JPEGLayer` — JPEG-DL's trainable JPEG layer.
"""

from dnnjpeg.nn.codec import DiffJPEG, Encoded
from dnnjpeg.nn.functional import ROUNDINGS, as_table_tensor
from dnnjpeg.nn.layer import JPEGLayer
from dnnjpeg.nn.rate import RateModel, rate_features, smape

__all__ = ["DiffJPEG", "Encoded", "ROUNDINGS", "as_table_tensor", "JPEGLayer", "RateModel", "rate_features", "smape"]
