"""Several classifiers as one: ``load_model("efficientnet-lite0+efficientnet-lite1")``.

A dataset is compressed once and read by many models; a per-image choice made for one of them is
tuned to it. A committee makes the choice for all of its members at once. Its "logits" are the
members' log-probabilities side by side, each shifted by log(1/M): their softmax is the members'
distributions side by side with weight 1/M each, so the KL that every chooser computes from them is
exactly the **mean of the members' KLs** (λ keeps its units: nats of KL per KiB). Its top-1 is not a
class of any member (a committee has no labels: use it to choose, and measure with a single model).

Geometry: every member reads the same region of the image (each crops its central 87.5%); the
committee prepares the largest member's input and resizes it to each smaller member's own size
(bilinear, antialiased), one resampling more than that member alone would do.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dnnjpeg.models import Model, load_model

__all__ = ["load_committee", "CommitteeModule", "top1_kept"]


class CommitteeModule:
    """The members' networks behind the part of ``nn.Module`` that :class:`Model` uses: (N, 3, S, S)
    normalized by the committee's preprocessing → (N, Σ C_m) shifted log-probabilities."""

    def __init__(self, members: list[Model], pre) -> None:
        self.members, self.pre = members, pre

    def __call__(self, x):
        import torch
        import torch.nn.functional as F

        # back to [0, 1] RGB, then each member's own size and normalization
        mean = torch.tensor(self.pre.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.pre.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x01 = x * std + mean
        outs = []
        for m in self.members:
            s = m.preprocess.size
            xi = x01 if s == x.shape[-1] else F.interpolate(x01, size=(s, s), mode="bilinear", antialias=True)
            logits = m.module(m.preprocess.normalize_tensor(xi.clamp(0, 1))).float()
            outs.append(torch.log_softmax(logits, 1) - np.log(len(self.members)))
        return torch.cat(outs, 1)

    def eval(self) -> CommitteeModule:
        return self

    def to(self, device=None, **kwargs) -> CommitteeModule:
        if device is None:
            return self  # (a memory format: each member keeps its own)
        return CommitteeModule([m.to(device) for m in self.members], self.pre)

    def parameters(self):
        for m in self.members:
            yield from m.module.parameters()


def load_committee(spec: str) -> Model:
    """A committee of the models named in ``spec`` ("A+B[+C…]", each any :func:`load_model` name)."""
    names = [n.strip() for n in spec.split("+")]
    if len(names) < 2 or not all(names):
        raise ValueError(f"a committee names two models or more, joined by '+': got {spec!r}")
    members = [load_model(n) for n in names]
    big = max(members, key=lambda m: m.preprocess.size)
    pre = replace(big.preprocess, mean=(0.5,) * 3, std=(0.5,) * 3)  # (undone inside; any fixed values do)
    return Model(name=spec, module=CommitteeModule(members, pre), preprocess=pre,
                 num_classes=sum(m.num_classes for m in members), labels="committee",
                 info={"members": names, "member_classes": [m.num_classes for m in members]})  # fmt: skip


def top1_kept(model: Model, ref: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """Whether each candidate keeps the stored image's top-1 answer (the guarantee of --keep-prediction).

    Args:
        model: the classifier that gave the logits; for a committee every member's answer must be
            kept (the arg-max over its stacked log-probabilities is no member's class).
        ref: (C,) logits of the stored image; ``cands``: (K, C) of the candidates.
    Returns:
        bool (K,).
    """
    sizes = model.info.get("member_classes") if model.labels == "committee" else None
    edges = np.cumsum([0, *(sizes or [ref.shape[-1]])])
    kept = np.ones(len(cands), bool)
    for a, b in zip(edges[:-1], edges[1:]):
        kept &= cands[:, a:b].argmax(1) == ref[a:b].argmax()
    return kept
