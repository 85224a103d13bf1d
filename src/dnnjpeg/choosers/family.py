"""Choosers among a family of tables, per image: by rate, by the network, by a QNet."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dnnjpeg.choosers.base import _check_rate
from dnnjpeg.families import TableFamily

__all__ = ["RateChoice", "NetworkChoice", "QNetChoice"]


@dataclass(frozen=True)
class _FamilyChoice:
    family: TableFamily
    lam: float | None = None
    target_bpp: float | None = None

    def __post_init__(self) -> None:
        if not len(self.family):
            raise ValueError("a per-image choice needs a non-empty family of tables")
        if self.family.kind == "jpegli":
            raise ValueError("jpegli is a codec for evaluate only: compress writes dnnjpeg's tables with libjpeg")
        _check_rate(self.lam, self.target_bpp)

    @property
    def _optimize(self) -> bool:
        return self.family.points[0].optimize

    def with_lam(self, lam: float) -> _FamilyChoice:
        """The same chooser at a fixed λ (what a bit budget resolves to)."""
        return replace(self, lam=lam, target_bpp=None)

    def scaled(self, factor: float) -> _FamilyChoice:
        if factor == 1.0:
            return self
        pts = tuple(replace(p, tables=p.tables.scaled(factor), scale=factor) for p in self.family.points)
        return replace(self, family=replace(self.family, points=pts, kappa=None))

    def _base_settings(self) -> dict:
        s = {
            "family": [t.to_dict() for t in self.family.members],
            "family_subsampling": list(self.family.subsamplings),
            "optimize": self._optimize,
            "lam": self.lam,
            "target_bpp": self.target_bpp,
        }
        if any(p.sdq for p in self.family.points):  # (only then, so earlier runs' settings still match)
            s["family_sdq"] = [list(p.sdq) if p.sdq else None for p in self.family.points]
        return s

    def member_label(self, k: int) -> str:
        mixed = len(set(self.family.subsamplings)) > 1
        # one scheme in every mode: the member's index in the family, then what it is
        return f"#{k} " + self.family.labels[k] + (f" {self.family.subsamplings[k]}" if mixed else "")

    def _kappa(self):
        return None

    def _model(self):
        return None

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        from dnnjpeg.select import select_encode

        f = self.family
        sel = select_encode(pixels, f.points, self._model(), self.lam, f.subsamplings, self._optimize, self._kappa())
        return sel.data, sel.index

    def measure(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from dnnjpeg.select import select_encode

        f = self.family
        sel = select_encode(pixels, f.points, self._model(), 0.0, f.subsamplings, self._optimize, self._kappa())
        return sel.bits, sel.kl

    def encode_member(self, pixels: np.ndarray, k: int) -> bytes:
        from dnnjpeg.select import gradient_weights_by_size, member_weights

        p = self.family.points[k]  # an SDQ-gradient member needs the image's own weights (its network's)
        return p.encode(pixels, weights=member_weights(p, gradient_weights_by_size(pixels, [p], self._model())))

    def _rate(self) -> str:
        return f"{self.target_bpp:g} bpp" if self.target_bpp is not None else f"λ = {self.lam:g} nats/KiB"


@dataclass(frozen=True)
class RateChoice(_FamilyChoice):
    """Per image, the member with the least κ_k + λ · KiB, κ the family's recorded mean KL
    (``family.kappa``: from its preset or sweep, or ``TableFamily.kappa_from_evaluation``)."""

    in_process = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.family.kappa is None:
            raise ValueError(
                f"{self.family.name} records no mean KL per member: choosing by rate alone needs it "
                "(a sweep preset, or the family's evaluation on other images)"
            )

    def scaled(self, factor: float) -> RateChoice:
        if factor != 1.0:
            raise ValueError("a scale changes the tables whose mean KL was recorded: choose by rate at scale 1")
        return self

    def _kappa(self):
        return np.asarray(self.family.kappa, np.float64)

    def settings(self) -> dict:
        return {**self._base_settings(), "chooser": "by rate", "kappa": list(self.family.kappa)}

    def describe(self) -> str:
        return f"choosing among {len(self.family)} tables ({self.family.name}) by rate alone at {self._rate()}"


@dataclass(frozen=True)
class NetworkChoice(_FamilyChoice):
    """Per image, the member with the least KL(network output on the stored image ‖ on the
    decoded member) + λ · KiB; ``model`` is a :class:`dnnjpeg.models.Model` (it runs here)."""

    model: object = None
    #: "all": every member measured (K + 1 passes); "climb": a local search along the file sizes
    #: from the choice by rate (when the family records κ) or the middle member (3–5 passes)
    search: str = "all"
    #: the guarantee instead of a price: each image the smallest member that keeps the network's top-1
    #: answer with KL ≤ ``keep`` nats (inf: the answer only); a JPEG source no member keeps is kept as is
    keep: float | None = None
    in_process = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model is None:
            raise ValueError("a network choice needs a model")
        if self.search not in ("all", "climb"):
            raise ValueError(f"--search must be all or climb, got {self.search!r}")
        if self.keep is not None:
            if not self.keep > 0:
                raise ValueError(f"--max-kl must be > 0 nats, got {self.keep}")
            if self.target_bpp is not None or self.search != "all":
                raise ValueError("--keep-prediction decides each image's bits itself: no --target-bpp, no climb")

    def _model(self):
        return self.model

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        if self.keep is not None:
            from dnnjpeg.select import select_encode

            f = self.family
            sel = select_encode(pixels, f.points, self.model, 0.0, f.subsamplings, self._optimize, keep=self.keep)
            return sel.data, sel.index
        if self.search == "all":
            return super().encode(pixels)
        from dnnjpeg.select import select_encode

        f = self.family
        start = "rate" if f.kappa is not None else None
        sel = select_encode(pixels, f.points, self.model, self.lam, f.subsamplings, self._optimize,
                            kappa=f.kappa, search="climb", start=start)  # fmt: skip
        return sel.data, sel.index

    def settings(self) -> dict:
        s = {**self._base_settings(), "chooser": getattr(self.model, "name", str(self.model)), "kappa": None}
        if self.search != "all":
            s["search"] = self.search
        if self.keep is not None:
            s["keep_prediction"] = "top-1" if self.keep == float("inf") else f"top-1, KL ≤ {self.keep:g} nats"
        return s

    def member_label(self, k: int) -> str:
        return "none keeps the prediction (a JPEG source kept as is)" if k < 0 else super().member_label(k)

    def _rate(self) -> str:
        if self.keep is not None:
            cap = "" if self.keep == float("inf") else f" and KL ≤ {self.keep:g} nats"
            return f"the smallest member that keeps each image's top-1 answer{cap}"
        return super()._rate()

    def describe(self) -> str:
        how = "" if self.search == "all" else " (local search)"
        return (
            f"choosing among {len(self.family)} tables ({self.family.name}) with {self.model.name}{how} at "
            f"{self._rate()}"
        )


@dataclass(frozen=True)
class QNetChoice(_FamilyChoice):
    """Per image, the member with the least KL *predicted* by a QNet (:mod:`dnnjpeg.qnet`) + λ · KiB:
    from one pass of its small probe network, the members' quantization errors and file sizes;
    the classifier itself never runs."""

    qnet: object = None
    # picklable: compress spreads it over its process pool, each worker loading the small probe once;
    # spawned, not forked: the probe runs torch (see dnnjpeg.engine.LocalEngine)
    in_process = False
    pool_start = "spawn"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.qnet is None:
            raise ValueError("a QNet choice needs a trained QNet (dnnjpeg.qnet.load_qnet)")
        q = self.qnet.family
        if (q.members, q.subsamplings, [p.encoder for p in q.points]) != (
            self.family.members,
            self.family.subsamplings,
            [p.encoder for p in self.family.points],
        ):
            raise ValueError(f"the QNet was trained for the family {q.name!r}, not for {self.family.name!r}")

    def _predict(self, pixels: np.ndarray) -> tuple[list[bytes], np.ndarray, np.ndarray]:
        f = self.family
        datas = [p.encode(pixels) for p in f.points]
        bits = np.array([8 * len(d) for d in datas], np.int64)
        return datas, bits, self.qnet.predict_image(pixels, bits)

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        from dnnjpeg.evaluate.selection import choose

        datas, bits, kl = self._predict(pixels)
        k = int(choose(bits[:, None], kl[:, None], self.lam)[0])
        return datas[k], k

    def measure(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, bits, kl = self._predict(pixels)
        return bits, kl

    def settings(self) -> dict:
        return {**self._base_settings(), "chooser": f"qnet {self.qnet.model_name} {self.qnet.digest()}", "kappa": None}

    def describe(self) -> str:
        return (
            f"choosing among {len(self.family)} tables ({self.family.name}) with a QNet for "
            f"{self.qnet.model_name} (probe {self.qnet.probe_name}; the classifier does not run) at {self._rate()}"
        )
