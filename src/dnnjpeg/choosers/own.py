"""Choosers that give each image tables or levels of its own: the table generator, SDQ."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from dnnjpeg._runtime import one_torch_thread_in_pool_workers
from dnnjpeg.choosers.base import NoMembers
from dnnjpeg.codec import QuantTables, encode

__all__ = ["TableNetChoice", "SDQChoice"]


@dataclass(frozen=True)
class TableNetChoice(NoMembers):
    """Each image gets its own tables from a table generator (:mod:`dnnjpeg.tablenet`) at ``lam``
    (nats of KL per bit per pixel at the model input): the thumbnail of the classifier's input crop
    → 128 steps, rounded. Trained at the model input: meant for datasets stored near that size."""

    tablenet: object
    lam: float
    subsampling: str = "4:2:0"
    optimize: bool = True
    in_process = True
    target_bpp = None
    _budget_refusal = "a table generator takes --lam, not a bit budget"
    _member_refusal, _label = "a table generator has no members", "own tables"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lam) and self.lam > 0):
            raise ValueError(f"--choose tablenet needs --lam, a finite number > 0 nats per bpp, got {self.lam}")

    @functools.cached_property
    def _pre(self):
        from dnnjpeg.models import load_model

        return load_model(self.tablenet.model_name).preprocess

    def _crop(self, pixels: np.ndarray) -> np.ndarray:
        rgb = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels
        return self._pre.geometry(rgb)

    def tables_for(self, pixels: np.ndarray) -> QuantTables:
        """This image's rounded tables."""
        return self.tablenet.tables(self._crop(pixels)[None], self.lam)[0]

    def scaled(self, factor: float) -> TableNetChoice:
        if factor != 1.0:
            raise ValueError("--scale does not apply to a table generator: change --lam")
        return self

    def settings(self) -> dict:
        import hashlib

        h = hashlib.sha256(b"".join(v.numpy().tobytes() for v in self.tablenet.net.state_dict().values()))
        return {"tablenet": f"{self.tablenet.model_name} {h.hexdigest()[:16]}", "lam": self.lam,
                "subsampling": self.subsampling, "optimize": self.optimize}  # fmt: skip

    def describe(self) -> str:
        m = self.tablenet.model_name
        return f"each image's own tables from a table generator for {m} at λ = {self.lam:g} nats/bpp"

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        return encode(pixels, self.tables_for(pixels), self.subsampling, self.optimize), None


@dataclass(frozen=True)
class SDQChoice(NoMembers):
    """Every image with ``tables``, each block's levels chosen by soft-decision quantization
    (:mod:`dnnjpeg.sdq`): least Σ w (c − q l)² + λ · bits.

    ``weights`` (:data:`dnnjpeg.sdq.weights.WEIGHTS`): "fisher" (lite0's per-model Fisher diagonal,
    λ in nats per bit), "crop" (the same, zero outside lite0's centre crop), "gradient" (this
    image's own Fisher diagonal per block, one backward pass of ``model_name`` per image), "mse"
    (the PSNR control, λ in squared levels per bit). ``lam`` None: ``alpha`` × the table's weighted
    step error (:func:`dnnjpeg.sdq.encode.table_lambda`; default by weights).

    ``bpp``: instead of a fixed λ, the average over the tree, as for every chooser: its members are
    SDQ at a ladder of λ (:data:`SDQ_ALPHAS` × the table's step error); compress measures each
    member's bits and weighted error Σ w (c − q l)² on every image and gives each image the member
    of least error + μ · bits at the one slope μ that fits the tree, so a textured image gets more
    bits than a flat one (the rule SDQ applies to each block, applied to the images).
    ``file_bpp``: a per-file cap instead: each image the smallest λ whose file fits that many bits
    per pixel. Gray images are written with plain rounding (the search is for colour images)."""

    tables: QuantTables
    weights: str = "fisher"
    lam: float | None = None
    alpha: float | None = None  # None: dnnjpeg.sdq.weights.DEFAULT_ALPHA for the weights
    subsampling: str = "4:2:0"
    bpp: float | None = None
    model_name: str = "efficientnet-lite0"
    file_bpp: float | None = None
    in_process = False
    pool_start = "spawn"  # the coefficients come from the differentiable codec (torch)
    _budget_refusal = "SDQ measures its members only for a bit budget over the tree (--target-bpp)"
    _member_refusal, _label = "SDQ has members only under a bit budget over the tree", "sdq"

    @property
    def target_bpp(self) -> float | None:
        """The tree's average bits per pixel to fit (compress measures the λ ladder first), or None."""
        return self.bpp

    def __post_init__(self) -> None:
        from dnnjpeg.sdq.weights import WEIGHTS

        if self.weights not in WEIGHTS:
            raise ValueError(f"--levels sdq must be one of {', '.join(WEIGHTS)}, got {self.weights!r}")

        if self.lam is not None and not (math.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"--levels sdq --lam must be a finite number ≥ 0 (nats per bit), got {self.lam}")
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"--levels sdq alpha must be a finite number ≥ 0, got {self.alpha}")
        for name, v in (("--target-bpp", self.bpp), ("--file-bpp", self.file_bpp)):
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number of bits per pixel > 0, got {v}")
            if v is not None and self.lam is not None:
                raise ValueError(f"--levels sdq takes --lam or {name}, not both")
        if self.bpp is not None and self.file_bpp is not None:
            raise ValueError("--target-bpp (the tree's average) and --file-bpp (a cap per file): give one")
        if self.subsampling not in ("4:2:0", "4:4:4"):
            raise ValueError(f"--levels sdq writes 4:2:0 or 4:4:4, got {self.subsampling}")

    def scaled(self, factor: float) -> SDQChoice:
        return self if factor == 1.0 else replace(self, tables=self.tables.scaled(factor))

    @property
    def _alpha(self) -> float:
        from dnnjpeg.sdq.weights import DEFAULT_ALPHA

        return DEFAULT_ALPHA[self.weights] if self.alpha is None else self.alpha

    def settings(self) -> dict:
        return {"sdq": self.weights, "tables": self.tables.to_dict(), "lam": self.lam, "alpha": self._alpha,
                "bpp": self.bpp, "subsampling": self.subsampling,
                "model": self.model_name if self.weights in ("gradient", "crop") else None,
                **({"file_bpp": self.file_bpp} if self.file_bpp else {})}  # fmt: skip

    def describe(self) -> str:
        rate = (f"{self.bpp:g} bpp over the tree" if self.bpp is not None else f"at most {self.file_bpp:g} bpp per file"
                if self.file_bpp is not None else f"λ = {self.lam:g} (weighted squared error per bit)"
                if self.lam is not None
                else f"λ = {self._alpha:g} × the table's step error")  # fmt: skip
        return f"soft-decision quantization ({self.weights} weights) at {rate}, {self.subsampling}"

    @property
    def _model(self):
        # once per process: compress hands every job its own unpickled copy of the chooser
        if self.model_name not in _SDQ_MODELS:
            from dnnjpeg.models import load_model

            _SDQ_MODELS[self.model_name] = load_model(self.model_name)
        return _SDQ_MODELS[self.model_name]

    def _search(self, pixels: np.ndarray):
        """(coefficients, weights, λ per unit alpha) of a colour image: what every encode of it shares."""
        one_torch_thread_in_pool_workers()
        from dnnjpeg.sdq.encode import image_coefficients, table_lambda
        from dnnjpeg.sdq.weights import image_weights, rate_weights

        coefs = image_coefficients(pixels, self.subsampling)
        w = image_weights(self.weights, pixels, self.subsampling, self._model if self.weights == "gradient" else None)
        return coefs, w, table_lambda(self.tables, rate_weights(self.weights), 1.0)

    def _at(self, pixels, coefs, w, lam: float):
        from dnnjpeg.sdq.encode import sdq_encode

        return sdq_encode(pixels, self.tables, lam, w, self.subsampling, coefficients=coefs)

    def encode(self, pixels: np.ndarray) -> tuple[bytes, int | None]:
        if pixels.ndim == 2:
            return encode(pixels, self.tables, self.subsampling, True), None
        coefs, w, lam1 = self._search(pixels)
        if self.file_bpp is None:
            return self._at(pixels, coefs, w, self.lam if self.lam is not None else lam1 * self._alpha)[0], None
        n = pixels.shape[0] * pixels.shape[1]
        return _within_budget(lambda lam: self._at(pixels, coefs, w, lam)[0], self.file_bpp * n / 8, lam1, n)

    def measure(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every member's (bits (K,), weighted error Σ w (c − q l)² (K,), in the weights' units) on this
        image; members are λ = :data:`SDQ_ALPHAS` × the table's step error (gray: rounding, error 0)."""
        if pixels.ndim == 2:
            b = 8 * len(encode(pixels, self.tables, self.subsampling, True))
            return np.full(len(SDQ_ALPHAS), b, np.int64), np.zeros(len(SDQ_ALPHAS))
        coefs, w, lam1 = self._search(pixels)
        from dnnjpeg.sdq.encode import _component_weights

        wt = _component_weights(w, coefs)
        bits, err = [], []
        for a in SDQ_ALPHAS:
            data, coef = self._at(pixels, coefs, w, lam1 * a)
            steps = (self.tables.luma, self.tables.chroma, self.tables.chroma)
            e = 0.0
            for c, lv, q, wi in zip(coefs, coef.blocks, steps, wt):
                r, k = lv.shape[:2]  # the blocks written (the coefficients may carry padding)
                wi = np.broadcast_to(wi, c.shape)[:r, :k]
                e += float((wi * (c[:r, :k] - q * lv.astype(np.float64)) ** 2).sum())
            bits.append(8 * len(data))
            err.append(e)
        return np.array(bits, np.int64), np.array(err)

    def encode_member(self, pixels: np.ndarray, k: int) -> bytes:
        if pixels.ndim == 2:
            return encode(pixels, self.tables, self.subsampling, True)
        coefs, w, lam1 = self._search(pixels)
        return self._at(pixels, coefs, w, lam1 * SDQ_ALPHAS[k])[0]

    def member_label(self, k: int) -> str:
        return f"#{k} α={SDQ_ALPHAS[k]:g}"


#: The members of an SDQ chooser under a bit budget over the tree: λ = alpha × the table's weighted
#: step error, from rounding (0) to where nearly every AC level is gone, a factor 2 apart.
SDQ_ALPHAS: tuple[float, ...] = (0.0,) + tuple(2.0**e for e in range(-10, 3))


_SDQ_MODELS: dict = {}


def _within_budget(at, budget_bytes: float, lam0: float, pixels: int) -> tuple[bytes, int | None]:
    """The file of the smallest λ whose size fits ``budget_bytes`` (bits fall as λ grows): λ = 0
    when rounding fits, else doubling from ``lam0`` / 64 then 12 halvings of the bracket in log
    space.

    Raises:
        ValueError: no λ fits: the budget is below the smallest file these tables make (the size
            stops falling as λ grows); the message gives that floor.
    """
    data = at(0.0)
    if len(data) <= budget_bytes:
        return data, None
    lo, hi, best, flat = 0.0, lam0 / 64, None, 0
    for _ in range(40):
        d = at(hi)
        if len(d) <= budget_bytes:
            best = d
            break
        flat = flat + 1 if len(d) >= len(data) else 0
        lo, data, hi = hi, min(data, d, key=len), hi * 4
        if flat >= 2:  # a 16× larger λ saved nothing: every level that can go is gone
            break
    if best is None:
        raise ValueError(
            f"target {8 * budget_bytes / pixels:g} bpp is out of reach: the smallest file soft-decision "
            f"quantization makes of it with these tables is {8 * len(data) / pixels:.4f} bpp; nothing was written"
        )
    for _ in range(12):
        mid = math.sqrt(lo * hi) if lo > 0 else hi / 4
        d = at(mid)
        if len(d) <= budget_bytes:
            hi, best = mid, d
        else:
            lo = mid
    return best, None
