"""The task-aware quantization network: choose each image's tables without running the classifier on them.

The per-image choice with the classifier in the loop (:mod:`dnnjpeg.select`) needs K + 1
forward passes of the full network per image. A QNet predicts, per image, each family member's
KL(pristine output ‖ output on the decoded member) from what is cheap at compression time, and
the same Lagrangian rule (:func:`dnnjpeg.evaluate.selection.choose`) picks the member: least
predicted KL + λ·KiB. It sees, per image:

* **one pass of a small probe network on the stored image** (default ``efficientnet-lite0@128``,
  the classifier's own weights on a 128² input, ≈ 1/3 of a full pass): how unsure it is
  (entropy, log top-1 probability, log margin to the second class). An unsure image moves
  more under the same error; this is the strongest single predictor measured;
* **each member's quantization error in the classifier's crop**, computed in the DCT domain
  without encoding or decoding (Parseval: the orthonormal 8×8 DCT keeps squared error), split
  into frequency bands of luma and the chroma total;
* **each member's file size** (the K encodes the choice makes anyway) and the image's size.

The predictor over these 12 numbers per member is a ridge regression of log KL, one per member,
fitted in closed form (deterministic; a file of a few kilobytes). The first form of this module
(a thumbnail CNN + sizes) learned no more than the sizes: BENCHMARKS.md has both.

Training needs no labels: the targets are the classifier's own KL on member encodes of
augmented images (random resized crops, flips, and a re-encode at a random quality, so a few
hundred design images give thousands of distinct samples). Judge it by what it decides — the
regret of its choice against the in-the-loop choice — not only by its error.

Why by hand: no library predicts a classifier's sensitivity to a JPEG table per image.
"""

from dnnjpeg.qnet.features import (
    DEFAULT_PROBE,
    FEATURE_NAMES,
    FORMAT,
    KL_FLOOR,
    augment,
    member_features,
    probe_stats,
    quantization_error,
)  # fmt: skip
from dnnjpeg.qnet.model import MAX_WEIGHT, QNet, load_qnet, save_qnet, train_qnet
from dnnjpeg.qnet.samples import QNetData, make_samples

__all__ = [
    "QNetData", "augment", "quantization_error", "probe_stats", "member_features", "make_samples", "QNet",
    "train_qnet", "save_qnet", "load_qnet", "DEFAULT_PROBE", "FORMAT", "FEATURE_NAMES", "KL_FLOOR", "MAX_WEIGHT",
]  # fmt: skip
