"""The QNet itself: the ridge predictor, its fit, its file (validated on load), and the ``qnet:`` family kind."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnnjpeg.codec import QuantTables
from dnnjpeg.families import TableFamily, register_family_kind
from dnnjpeg.qnet.features import (
    DEFAULT_PROBE,
    FEATURE_NAMES,
    FORMAT,
    KL_FLOOR,
    member_features,
    probe_stats,
    quantization_error,
)
from dnnjpeg.qnet.samples import QNetData

#: probe networks loaded by name in this process
_PROBES: dict[str, object] = {}


def _log_kl(kl: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(kl, np.float64), KL_FLOOR))


@dataclass
class QNet:
    """A trained chooser for one family and one classifier: per member k, a ridge regression
    log KL_k ≈ w_k · (x − mean_k) / std_k + b_k over :func:`member_features`.

    ``weights`` (K, 13) (12 features + intercept), ``mean`` / ``std`` (K, 12); ``model_name`` the
    classifier it predicts; ``probe_name`` the network it runs itself (``probe``: a loaded
    :class:`~dnnjpeg.models.Model`, loaded by name on first use when None).
    """

    weights: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    family: TableFamily
    model_name: str
    probe_name: str
    info: dict = field(default_factory=dict)
    probe: object = None

    def predict_kl(self, bits: np.ndarray, pixels: np.ndarray, dq: np.ndarray, stats: np.ndarray) -> np.ndarray:
        """(N, K) predicted KL in nats from :func:`member_features`' inputs."""
        x = (member_features(bits, pixels, dq, stats) - self.mean) / self.std
        with np.errstate(over="ignore", invalid="ignore"):
            kl = np.exp(np.einsum("nkf,kf->nk", x, self.weights[:, :-1]) + self.weights[:, -1])
        if not np.isfinite(kl).all():  # argmin over inf/NaN would pick member #0 for no reason
            raise ValueError("the QNet's predicted KL is not a finite number for this image")
        return kl

    def get_probe(self):
        """The probe network: ``probe`` when attached, else loaded by name once per process (a QNet
        travels to compress's pool workers without it; each worker loads it once)."""
        if self.probe is not None:
            return self.probe
        if self.probe_name not in _PROBES:
            from dnnjpeg._runtime import one_torch_thread_in_pool_workers
            from dnnjpeg.models import load_model

            one_torch_thread_in_pool_workers()
            _PROBES[self.probe_name] = load_model(self.probe_name)
        return _PROBES[self.probe_name]

    def predict_image(self, rgb: np.ndarray, bits: np.ndarray) -> np.ndarray:
        """(K,) predicted KL (nats) for one stored image uint8 (H, W, 3) whose members' files are ``bits`` (K,)."""
        dq = quantization_error(rgb, self.family)
        st = probe_stats([rgb], self.get_probe())
        return self.predict_kl(np.asarray(bits)[None], np.array([rgb.shape[0] * rgb.shape[1]]), dq[None], st)[0]

    def digest(self) -> str:
        """16 hex digits naming the predictor (recorded beside compress outputs)."""
        h = hashlib.sha256(np.ascontiguousarray(self.weights, np.float64).tobytes())
        h.update(np.ascontiguousarray(self.mean, np.float64).tobytes() + self.probe_name.encode())
        return h.hexdigest()[:16]


def train_qnet(
    data: QNetData,
    family: TableFamily,
    model_name: str,
    probe_name: str = DEFAULT_PROBE,
    alpha: float = 10.0,
) -> QNet:
    """Fit the predictor: per member, ridge regression of log KL on standardized features.

    Closed form, so deterministic: the same samples give the same QNet. ``alpha`` is the ridge
    penalty (10: with the last 50 design images held out, the least regret of 0.1…300 by a hair; it matters
    little).
    """
    if data.kl.shape[1] != len(family):
        raise ValueError(f"the samples hold {data.kl.shape[1]} members, the family {len(family)}")
    if len(data) < 2:
        raise ValueError(f"{len(data)} samples: a QNet needs at least 2")
    x = data.features().astype(np.float64)  # N, K, F
    y = _log_kl(data.kl)
    k, f = x.shape[1], x.shape[2]
    mean, std = x.mean(0), x.std(0) + 1e-6
    weights = np.zeros((k, f + 1))
    pen = alpha * np.eye(f + 1)
    pen[-1, -1] = 0.0  # the intercept is not shrunk
    for j in range(k):
        a = np.c_[(x[:, j] - mean[j]) / std[j], np.ones(len(x))]
        weights[j] = np.linalg.solve(a.T @ a + pen, a.T @ y[:, j])
    return QNet(
        weights, mean.astype(np.float64), std, family, model_name, probe_name, {"n_samples": len(data), "alpha": alpha}
    )


#: the largest |weight| a QNet file may hold (trained ones stay below 100: standardized features, ridge)
MAX_WEIGHT = 1e4


def _numbers(x, key: str) -> np.ndarray:
    """A nested list of JSON numbers as float64; strings, booleans and nulls are refused (NumPy
    would quietly read "1.5" as 1.5)."""
    stack = [x]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{key!r} holds {v!r}, not a number")
    a = np.asarray(x, np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{key!r} holds values that are not finite numbers")
    return a


def save_qnet(q: QNet, path: str | Path) -> Path:
    """A small JSON file: the predictor, the family's tables, the classifier's and the probe's names (atomic)."""
    from dnnjpeg._io import atomic_write_text

    doc = {
        "format": FORMAT,
        "model": q.model_name,
        "probe": q.probe_name,
        "family_name": q.family.name,
        "family": [t.to_dict() for t in q.family.members],
        "subsamplings": list(q.family.subsamplings),
        "optimize": bool(q.family.points[0].optimize),
        "features": list(FEATURE_NAMES),
        "weights": np.asarray(q.weights).tolist(),
        "mean": np.asarray(q.mean).tolist(),
        "std": np.asarray(q.std).tolist(),
        "info": q.info,
    }
    return atomic_write_text(Path(path), json.dumps(doc, indent=1))


def _preset_path(name: str) -> Path:
    from importlib import resources

    f = resources.files("dnnjpeg.presets").joinpath("qnet", f"{name}.json")
    if not name or "/" in name or not f.is_file():
        raise ValueError(f"unknown QNet preset {name!r}; shipped: efficientnet-lite0-qnet")
    return Path(str(f))


def load_qnet(path: str | Path, family: TableFamily | None = None, model_name: str | None = None) -> QNet:
    """Read a QNet file (or ``preset:NAME``, a shipped one); with ``family`` / ``model_name`` check
    it was trained for them.

    Raises:
        ValueError: not a QNet file, the first form's (retrain it), or trained for other tables
            or another classifier (named).
    """
    from dnnjpeg._fs import display, open_regular, read_json
    from dnnjpeg.families import CodecSpec

    if isinstance(path, str) and path.startswith("preset:"):
        path = _preset_path(path.split(":", 1)[1])
    with open_regular(path) as f:
        if f.read(2) == b"PK":
            raise ValueError(f"{display(path)}: a QNet of the first form (dnnjpeg.qnet/1, a thumbnail CNN): retrain it")
    try:
        doc = read_json(path)  # size and nesting depth capped before parsing
    except ValueError as e:
        raise ValueError(f"{display(path)}: not a QNet file ({str(e).removeprefix(display(path) + ': ')})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{display(path)}: not a QNet file (format {got!r}, expected {FORMAT!r})")
    try:
        members = [QuantTables.from_dict(t) for t in doc["family"]]
        subs = [str(s) for s in doc["subsamplings"]]
        opt = bool(doc.get("optimize", True))
        w, mean, std = (_numbers(doc[k], k) for k in ("weights", "mean", "std"))
        k, nf = len(members), len(FEATURE_NAMES)
        if len(subs) != k or w.shape != (k, nf + 1) or mean.shape != (k, nf) or std.shape != (k, nf):
            raise ValueError(f"shapes {w.shape}, {mean.shape}, {std.shape} do not fit {k} members × {nf} features")
        # A ridge fit on standardized features has small weights; huge ones overflow exp() to inf
        # for every member, and the choice then falls on member #0 whatever the image.
        if not (np.abs(w).max() <= MAX_WEIGHT and np.abs(mean).max() <= 1e12 and (std > 0).all()
                and std.max() <= 1e12):  # fmt: skip
            raise ValueError(f"weights outside a trained QNet's range (|weight| ≤ {MAX_WEIGHT:g}, std > 0)")
        model, probe, name = str(doc["model"]), str(doc["probe"]), str(doc["family_name"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{display(path)}: a broken QNet file ({type(e).__name__}: {e})") from None
    points = tuple(CodecSpec(t, s, opt, tag=f"#{i}") for i, (t, s) in enumerate(zip(members, subs)))
    fam = TableFamily(name, points, "tables")
    if family is not None and (family.members != fam.members or family.subsamplings != fam.subsamplings):
        raise ValueError(f"{display(path)}: trained for the family {name!r}, not for {family.name!r}")
    if model_name is not None and model_name != model:
        raise ValueError(f"{display(path)}: trained to predict {model}, not {model_name}")
    return QNet(w, mean, std, fam, model, probe, dict(doc.get("info") or {}))


def _qnet_family(text: str, arg: str, subsampling: str | None) -> TableFamily:
    """``qnet:FILE`` / ``qnet:preset:NAME``: the QNet's own family, carrying the QNet (its choice)."""
    from dataclasses import replace

    if not arg:
        raise ValueError(f"--codec {text!r}: give a QNet file or preset, e.g. qnet:preset:efficientnet-lite0-qnet")
    if subsampling is not None:
        raise ValueError(f"--codec {text!r}: a QNet chooses among its own family's subsamplings; drop @{subsampling}")
    q = load_qnet(arg)
    return replace(q.family, name=f"qnet:{arg} members", qnet=q)


register_family_kind("qnet", _qnet_family)
