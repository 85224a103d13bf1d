"""Tables from the network's Fisher information and each frequency's rate–distortion curve.

A second-order view of what JPEG does to a network: quantizing DCT coefficient c
with step Δ adds an error e of mean square D(Δ), and the expected KL divergence
between the pristine and the JPEG prediction grows by about ½ · F_cc · D(Δ),
F_cc being the diagonal of the Fisher information of the network's output with
respect to that coefficient.  Errors of different coefficients are nearly
independent, so over all blocks and frequencies

    KL ≈ ½ Σ_k w_k · D_k(Δ_k)      (w_k: mean Fisher diagonal of frequency k)
    bits ≈ Σ_k R_k(Δ_k)            (R_k: entropy of the quantized levels of k;
                                   DC as differences, as JPEG codes it)

and minimizing KL + λ · bits separates into one argmin per table entry.  D_k and R_k
are measured once on the design images' coefficients for every step 1..255; each λ
then gives a table in microseconds, and a sweep of λ gives a curve of tables, each
optimal for its rate under this model.  The model needs no search over tables, so it
has nothing to over-fit but the statistics themselves.

The Fisher diagonal is estimated as in natural-gradient practice: labels drawn from
the network's own prediction on the pristine input, squared gradients of their
log-probability with respect to the (unquantized) coefficients, through the
differentiable decoder of :class:`dnnjpeg.nn.DiffJPEG` (chroma up-sampling included).
When JPEG is applied to the stored image (``--at original``) the gradients also pass
through a differentiable copy of the model's resize and crop, so the frequencies the
resize discards get the little weight they deserve — the ladder spends bits on them,
which is where the largest gains over it are found.
Hand-written because no library computes per-coefficient Fisher information of a
network through a JPEG decoder, nor per-frequency quantizer RD curves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnnjpeg.codec import QuantTables
from dnnjpeg.design.base import DesignProblem, option, register
from dnnjpeg.design.objective import Run
from dnnjpeg.design.result import DesignResult
from dnnjpeg.families import TableFamily

__all__ = [
    "FisherStats",
    "fisher_statistics",
    "rd_curves",
    "level_entropy",
    "lagrangian_tables",
    "fisher_lambda_for_bpp",
    "design_fisher",
    "DEFAULT_TARGET_BPP",
    "STEPS",
    "REFINE_RANGES",
    "REFINE_SCALES",
]

#: candidate steps of every table entry (baseline JPEG, 8-bit tables)
STEPS = np.arange(1, 256)
#: estimated bits per pixel the λ sweep aims at (coarse → fine)
DEFAULT_TARGET_BPP = (0.2, 0.28, 0.4, 0.55, 0.75, 1.0, 1.4, 2.0)
#: ``refine``: ranges of the profile parameters around the model's table (narrower than
#: ``parametric``'s around Annex K: the model's table is already near its optimum)
REFINE_RANGES = {
    "luma_slope": (-1.0, 1.0),
    "luma_curve": (-1.0, 1.0),
    "chroma_level": (-0.75, 0.75),
    "chroma_slope": (-1.0, 1.0),
}
#: ``refine``: every shape is measured at these scales of the table
REFINE_SCALES = (0.5, 1.0, 2.0)


@dataclass
class FisherStats:
    """What the Lagrangian tables are computed from.

    Attributes:
        w_luma: (64,) mean Fisher diagonal per luma frequency (natural order), nats per level².
        w_chroma: (2, 64) the same for Cb and Cr (which share one table).
        d_luma / r_luma: (255, 64) mean squared error (levels²) and bits per coefficient
            of quantizing luma frequency k with step s = STEPS[i] (row i).
        d_chroma / r_chroma: (2, 255, 64) the same for Cb and Cr.
        luma_blocks / chroma_blocks: 8×8 blocks per image and component (for bits per pixel;
            the mean over the RD images when their sizes differ).
        pixels: pixels per image (likewise).
    """

    w_luma: np.ndarray
    w_chroma: np.ndarray
    d_luma: np.ndarray
    r_luma: np.ndarray
    d_chroma: np.ndarray
    r_chroma: np.ndarray
    luma_blocks: float
    chroma_blocks: float
    pixels: float

    def estimated_bpp(self, tables: QuantTables) -> float:
        """Entropy estimate of the coefficient bits per pixel of ``tables`` (no headers, no
        Huffman overhead: within a few percent of optimized files above 0.4 bpp)."""
        k = np.arange(64)
        iy, ic = tables.luma.ravel() - 1, tables.chroma.ravel() - 1
        bits = (
            self.r_luma[iy, k].sum() * self.luma_blocks
            + (self.r_chroma[0][ic, k] + self.r_chroma[1][ic, k]).sum() * self.chroma_blocks
        )
        return float(bits / self.pixels)

    def to_dict(self) -> dict:
        return {"w_luma": self.w_luma.reshape(8, 8).tolist(), "w_chroma": self.w_chroma.reshape(2, 8, 8).tolist()}


def level_entropy(levels: np.ndarray) -> np.ndarray:
    """Empirical entropy in bits of each column of integer ``levels`` (n, m) → (m,)."""
    n, m = levels.shape
    lo = levels.min(0)
    span = int((levels.max(0) - lo).max()) + 1
    # One bincount over column-offset values instead of a unique() per column.
    cnt = np.bincount(((levels - lo) + np.arange(m) * span).ravel(), minlength=m * span).reshape(m, span)
    p = cnt[cnt > 0] / n
    ent = np.zeros(m)
    np.add.at(ent, np.nonzero(cnt)[0], -p * np.log2(p))
    return ent


def rd_curves(coef: np.ndarray, blocks_per_image) -> tuple[np.ndarray, np.ndarray]:
    """Per-frequency quantizer distortion and rate for every step.

    Args:
        coef: (total blocks, 64) unquantized DCT coefficients in levels (level-shifted
            samples), images one after another, blocks in raster order.
        blocks_per_image: blocks of one image (int, all images alike) or a sequence of
            per-image block counts (images of different sizes); DC is coded as the difference
            to the previous block of the same image.
    Returns:
        D (255, 64) mean squared quantization error in levels², R (255, 64) entropy in bits per
        coefficient of the quantized levels (DC: of the raster-order differences), row i for step i + 1.
    """
    coef = np.asarray(coef, dtype=np.float32)
    if np.ndim(blocks_per_image) == 0:
        if coef.ndim != 2 or coef.shape[1] != 64 or coef.shape[0] % blocks_per_image:
            raise ValueError(f"expected (n·{blocks_per_image}, 64) coefficients, got {coef.shape}")
        counts = np.full(coef.shape[0] // blocks_per_image, blocks_per_image)
    else:
        counts = np.asarray(blocks_per_image, dtype=np.int64)
        if coef.ndim != 2 or coef.shape[1] != 64 or coef.shape[0] != counts.sum():
            raise ValueError(f"expected ({counts.sum()}, 64) coefficients for the given block counts, got {coef.shape}")
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])  # each image's first block: its DC is coded against 0
    d = np.empty((len(STEPS), 64))
    r = np.empty((len(STEPS), 64))
    for i, q in enumerate(STEPS):
        lv = np.rint(coef / q)
        d[i] = ((coef - lv * q) ** 2).mean(0)
        lv = lv.astype(np.int32)
        diff = np.diff(lv[:, 0], prepend=0)
        diff[first] = lv[first, 0]
        r[i, 0] = level_entropy(diff.reshape(-1, 1))[0]
        r[i, 1:] = level_entropy(lv[:, 1:])
    return d, r


def lagrangian_tables(stats: FisherStats, lam: float, gamma: float = 1.0) -> QuantTables:
    """The tables minimizing ½ Σ w^γ·D + λ·bits entry by entry.

    Args:
        stats: Fisher weights and RD curves.
        lam: λ in nats per bit (larger → coarser tables, fewer bits).
        gamma: exponent on the Fisher weights (1 = the second-order model; < 1 flattens the
            network's preferences toward plain MSE).
    Returns:
        QuantTables (natural order); ties go to the smallest step.
    """
    wy, wc = stats.w_luma**gamma, stats.w_chroma**gamma
    jy = 0.5 * wy[None] * stats.d_luma + lam * stats.r_luma
    jc = 0.5 * (wc[0][None] * stats.d_chroma[0] + wc[1][None] * stats.d_chroma[1]) + lam * (
        stats.r_chroma[0] + stats.r_chroma[1]
    )
    return QuantTables(STEPS[jy.argmin(0)].reshape(8, 8), STEPS[jc.argmin(0)].reshape(8, 8))


def fisher_lambda_for_bpp(stats: FisherStats, target_bpp: float, gamma: float = 1.0, iters: int = 50) -> float:
    """λ (nats per bit) whose tables' estimated bpp is closest to ``target_bpp`` (bisection in log λ; the
    estimate falls as λ grows)."""
    lo, hi = -30.0, 5.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if stats.estimated_bpp(lagrangian_tables(stats, 10.0**mid, gamma)) > target_bpp:
            lo = mid
        else:
            hi = mid
    return 10.0 ** (0.5 * (lo + hi))


def fisher_statistics(
    inputs,
    model,
    subsampling: str = "4:2:0",
    samples: int = 4,
    rd_images: int = 150,
    batch_size: int = 16,
    seed: int = 0,
    progress=None,
    geometry: bool = False,
) -> FisherStats:
    """Fisher weights and RD curves of a set of images as the codec sees them.

    Args:
        inputs: what the codec encodes: uint8 (N, S, S, 3) pristine model-input crops, or
            (``geometry=True``) a sequence of uint8 (H, W, 3) stored images of any sizes.
        model: a :class:`dnnjpeg.models.Model` (its module is used in eval mode, weights untouched).
        subsampling: chroma subsampling of the codec.
        samples: labels drawn from the prediction per image (Monte-Carlo Fisher).
        rd_images: images (a seeded random subset) whose coefficients give the RD curves.
        progress: called with the number of images just finished.
        geometry: the model's resize and center crop lie between decoder and network
            (JPEG of the stored image, ``--at original``): gradients flow back through a
            differentiable copy of them, so frequencies the resize discards get little weight.
    Returns:
        :class:`FisherStats`.
    """
    import torch

    from dnnjpeg.nn import DiffJPEG
    from dnnjpeg.nn.frozen import frozen

    n = len(inputs)
    if n == 0:
        raise ValueError("no images to compute Fisher statistics from")
    gen = torch.Generator().manual_seed(seed)
    keep = set(np.random.default_rng(seed).choice(n, size=min(rd_images, n), replace=False).tolist())
    net, pre = model.module, model.preprocess
    codec = DiffJPEG(subsampling, "ste")
    gy, gc = torch.zeros(64, dtype=torch.float64), torch.zeros(2, 64, dtype=torch.float64)
    n_y = n_c = 0
    rd = ([], [], [], [], [])  # coefficients (luma, chroma), blocks (luma, chroma), pixels of the RD images
    groups = _size_groups(inputs, batch_size)
    with frozen(net):  # only coefficient gradients are needed
        for idx in groups:
            x = torch.from_numpy(np.stack([np.asarray(inputs[i]) for i in idx])).permute(0, 3, 1, 2).float()
            cy0, cc0, sy, sc = _squared_gradients(x, codec, net, pre, geometry, samples, gen)
            gy += sy
            gc += sc
            n_y, n_c = n_y + samples * cy0[..., 0].numel(), n_c + samples * cc0[:, 0, ..., 0].numel()
            _keep_for_rd([j for j, i in enumerate(idx) if i in keep], cy0, cc0, x, rd)
            if progress:
                progress(len(idx))
    coef_y, coef_c, blocks_y, blocks_c, pixels = rd
    d_y, r_y = rd_curves(np.concatenate(coef_y), blocks_y)
    cc_all = np.concatenate(coef_c, axis=1)
    (d_cb, r_cb), (d_cr, r_cr) = rd_curves(cc_all[0], blocks_c), rd_curves(cc_all[1], blocks_c)
    return FisherStats((gy / n_y).numpy(), (gc / n_c).numpy(), d_y, r_y, np.stack([d_cb, d_cr]),
                       np.stack([r_cb, r_cr]), float(np.mean(blocks_y)), float(np.mean(blocks_c)),
                       float(np.mean(pixels)))  # fmt: skip


def _keep_for_rd(sel: list[int], cy0, cc0, x, rd: tuple) -> None:
    """Add the coefficients of the batch's images ``sel`` (those chosen for the RD curves) to ``rd``."""
    coef_y, coef_c, blocks_y, blocks_c, pixels = rd
    coef_y.append(cy0[sel].reshape(-1, 64).numpy())
    coef_c.append(cc0[sel].permute(1, 0, 2, 3, 4).reshape(2, -1, 64).numpy())
    blocks_y += [cy0.shape[2] * cy0.shape[3]] * len(sel)
    blocks_c += [cc0.shape[2] * cc0.shape[3]] * len(sel)
    pixels += [x.shape[2] * x.shape[3]] * len(sel)


def _size_groups(inputs, batch_size: int) -> list[list[int]]:
    """Indices in batches of one image size: crops are all alike; stored images are grouped by shape."""
    order = sorted(range(len(inputs)), key=lambda i: tuple(np.shape(inputs[i])))
    groups, cur = [], []
    for i in order:
        if cur and (len(cur) == batch_size or np.shape(inputs[i]) != np.shape(inputs[cur[0]])):
            groups.append(cur)
            cur = []
        cur.append(i)
    groups.append(cur)
    return groups


def _squared_gradients(x, codec, net, pre, geometry: bool, samples: int, gen):
    """One batch (B, 3, H, W): its coefficients (luma, chroma) and the summed squared gradients of the
    log-probability of ``samples`` labels drawn from the prediction, per luma / chroma frequency."""
    import torch

    with torch.no_grad():
        cy0, cc0 = codec.transform(x)
    cy, cc = cy0.clone().requires_grad_(True), cc0.clone().requires_grad_(True)
    rgb = codec.reconstruct(cy, cc, x.shape[2], x.shape[3])
    if geometry:
        rgb = pre.geometry_tensor(rgb)
    logp = torch.log_softmax(net(pre.normalize_tensor(rgb / 255.0)), 1)
    probs = logp.detach().exp()
    sy = torch.zeros(64, dtype=torch.float64)
    sc = torch.zeros(2, 64, dtype=torch.float64)
    for s in range(samples):
        y = torch.multinomial(probs, 1, generator=gen)
        g_y, g_c = torch.autograd.grad(logp.gather(1, y).sum(), (cy, cc), retain_graph=s < samples - 1)
        sy += (g_y.double() ** 2).sum(dim=(0, 1, 2, 3))
        sc += (g_c.double() ** 2).sum(dim=(0, 2, 3))
    return cy0, cc0, sy, sc


@dataclass(frozen=True)
class FisherOptions:
    targets: tuple[float, ...] = option(tuple(DEFAULT_TARGET_BPP), "fisher: estimated bpp of the sweep's tables")
    gamma: tuple[float, ...] = option(
        (1.0,), "fisher: exponent(s) on the Fisher weights; several: the best sweep on the design split is kept"
    )
    samples: int = option(4, "fisher: sampled labels per image for the Fisher estimate")
    rd_images: int = option(150, "fisher: design images whose coefficients give the RD curves")
    stat_images: int | None = option(None, "fisher: design images for the statistics (default: all)", kind="int")
    refine: int = option(0, "fisher: measure this many smooth reshapings of the best table (3 scales each)")


@register("fisher", FisherOptions)
def design_fisher(problem: DesignProblem, options: FisherOptions) -> DesignResult:
    """One table per target rate from the network's Fisher information, no search (see module doc).

    Args:
        targets: estimated bits per pixel of the λ sweep's points.
        gamma: exponent on the Fisher weights, or a sequence of candidates: the statistics are
            computed once, every candidate's sweep is measured on the trial images, and the one
            with the highest mean gain over its sweep is kept (chosen on the design split only).
        samples: sampled labels per image for the Fisher estimate.
        rd_images: design images whose coefficients give the RD curves.
        stat_images: design images for the statistics (default: the whole design split).
        refine: profile shapes to measure after the sweep (0: none): the model's best table is
            reshaped by the 4 smooth parameters of :func:`~dnnjpeg.design.search.parametric_tables`
            within :data:`REFINE_RANGES`, each shape scored across :data:`REFINE_SCALES`, and the best
            shape (the unmodified table included) is returned — a measured correction, with few
            degrees of freedom, for what the separable second-order model gets wrong.
    Returns:
        a DesignResult whose tables are the chosen γ's measured point with the highest gain over
        the ladder; ``family`` holds that γ's tables and ``sweep_info`` their points (λ, estimated and measured bpp) —
        together they are the designed curve (``--codec sweep:FILE``); ``info["gamma_gains"]``
        the mean gain of every candidate γ.
    """
    from dnnjpeg.evaluate.trial import build_pristine

    o = options
    targets, gamma, samples, rd_images, stat_images, refine = (
        o.targets, o.gamma, o.samples, o.rd_images, o.stat_images, o.refine,
    )  # fmt: skip
    gammas = tuple(float(g) for g in (gamma if np.iterable(gamma) else (gamma,)))
    if not gammas or min(gammas) <= 0:
        raise ValueError(f"gamma must be positive, got {gamma!r}")
    pr = build_pristine(problem.design_set().subset("design", stat_images), problem.model, problem.at)
    problem.skipped.update(pr.failures)
    original = problem.at == "original"
    stats = fisher_statistics(pr.sources if original else pr.inputs, problem.model, problem.subsampling, samples,
                              rd_images, seed=problem.seed, geometry=original)  # fmt: skip
    run = Run(problem, "fisher")
    for g in gammas:
        for t in sorted(targets):
            lam = fisher_lambda_for_bpp(stats, t, g)
            tables = lagrangian_tables(stats, lam, g)
            run.try_(tables, phase="fisher", lam=lam, gamma=g, target_bpp=t, est_bpp=stats.estimated_bpp(tables))
    mean_gain = {g: float(np.mean([h["gain"] for h in run.history if h["gamma"] == g])) for g in gammas}
    best_g = max(gammas, key=lambda g: mean_gain[g])
    chosen = [c for c in run.cands if c.info.get("gamma") == best_g]
    best = max(chosen, key=lambda c: c.gain)
    sweep = [{"lam": c.info["lam"], "target_bpp": c.info["target_bpp"], "est_bpp": c.info["est_bpp"],
              "bpp": c.measurement.bpp} for c in chosen]  # fmt: skip
    tables, extra = _refined(run, best.tables, refine)
    res = run.result(gamma=best_g, gamma_gains=mean_gain, samples=samples, rd_images=rd_images,
                     stat_images=len(pr.inputs), fisher=stats.to_dict(), best_gain=best.gain, **extra)  # fmt: skip
    res.tables = tables
    res.family = TableFamily.from_table_set(
        [c.tables for c in chosen],
        [f"≈{p['target_bpp']:g} bpp" if "target_bpp" in p else f"λ={p['lam']:.3g} nats/bit" for p in sweep],
        problem.subsampling,
        name="fisher",
    )
    res.sweep_info = sweep
    return res


def _refined(run: Run, tables: QuantTables, refine: int) -> tuple[QuantTables, dict]:
    """The best table reshaped by up to ``refine`` measured smooth profiles (:func:`profile_search`),
    and what the refinement found; the table unchanged with ``refine`` 0."""
    if refine <= 0:
        return tables, {}
    from dnnjpeg.design.search import profile_search

    score, params, tables, base_score = profile_search(run, refine, REFINE_SCALES, REFINE_RANGES, base=tables,
                                                       phase="refine")  # fmt: skip
    return tables, {"refine_params": params, "refine_shape_gain": score, "unrefined_shape_gain": base_score}
