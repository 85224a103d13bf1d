"""JPEG as PyTorch modules: a differentiable codec, a rate model, and the trainable JPEG layer."""

from dnnjpeg.nn.codec import DiffJPEG, Encoded
from dnnjpeg.nn.functional import ROUNDINGS, as_table_tensor

__all__ = ["DiffJPEG", "Encoded", "ROUNDINGS", "as_table_tensor"]
