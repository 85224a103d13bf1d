"""A classifier held still while something before it learns: eval mode, no parameter gradients."""

from __future__ import annotations

import contextlib

__all__ = ["frozen"]


@contextlib.contextmanager
def frozen(net):
    """``net`` in eval mode with no gradients for its parameters; restored after (the caller's model is unchanged)."""
    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        for p in params:
            p.requires_grad_(True)
        net.train(was_training)
