"""Tables by gradient descent through the differentiable JPEG codec.

With the network frozen, the 128 steps (log-parameterized, projected into 1..255)
minimize   KL(pristine output ‖ output on the JPEG) + λ · estimated bpp
over the design images, the image passing through :class:`dnnjpeg.nn.DiffJPEG`
(straight-through rounding by default: the forward pass is the real codec) and the
rate from :class:`dnnjpeg.nn.RateModel` on the pre-rounding coefficients.  λ is
swept from high to low, each point warm-started from the previous one, tracing a
curve; every point is rounded to integer tables and measured with the real
encoder on the trial images like any other designer's candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dnnjpeg.codec import QuantTables
from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_BPP
from dnnjpeg.design.base import DesignProblem, option, register
from dnnjpeg.design.objective import Run
from dnnjpeg.design.result import DesignResult

__all__ = ["design_gradient"]

#: λ in nats of KL per bit per pixel, high to low (coarse to fine tables).


@dataclass(frozen=True)
class GradientOptions:
    lambdas: tuple[float, ...] = option(DEFAULT_LAMBDAS_NATS_PER_BPP, "gradient: rate weights to sweep, nats per bpp")
    epochs: float = option(2.0, "gradient: passes over the design images per λ")
    batch_size: int = option(16, "gradient: images per Adam step")
    lr: float = option(0.05, "gradient: Adam learning rate on the log steps")
    rounding: str = option("ste", "gradient: quantizer of the differentiable codec (ste, cubic, noise, soft)")
    init_quality: int = option(50, "gradient: the first λ starts from the IJG tables of this quality")
    train_images: int | None = option(None, "gradient: design images to descend on (default: all)", kind="int")
    basis: str = option("entries", "gradient: entries (128 free steps) or smooth (12 numbers)")


@register("gradient", GradientOptions)
def design_gradient(problem: DesignProblem, options: GradientOptions) -> DesignResult:
    """Tables by gradient descent through the differentiable codec, the network frozen, one per λ (see module doc).

    Args:
        lambdas: rate weights to sweep (nats per bpp), visited high → low.
        epochs: passes over the training images per λ (fractions allowed).
        batch_size / lr: Adam on the log steps.
        rounding: quantizer mode of the differentiable codec ("ste", "cubic", "noise", "soft").
        init_quality: the first λ starts from the IJG tables of this quality.
        train_images: design images to descend on (default: all of the design split); the
            measurements use ``problem.trial_images`` of them, as every designer does.
        basis: "entries" (all 128 log steps free) or "smooth" (log steps = log Annex K + a
            quadratic surface in the frequency indices per table: 12 numbers, few degrees
            of freedom for few images).
    Returns:
        a DesignResult whose tables are the measured point with the highest gain; the history
        holds every λ point with its estimated and measured rate.
    """
    import torch

    o = options
    lambdas, epochs, batch_size, lr = o.lambdas, o.epochs, o.batch_size, o.lr
    rounding, init_quality, train_images, basis = o.rounding, o.init_quality, o.train_images, o.basis

    from dnnjpeg.evaluate.trial import build_pristine

    if basis not in ("entries", "smooth"):
        raise ValueError(f"basis must be 'entries' or 'smooth', got {basis!r}")
    if problem.at != "input":
        raise ValueError(
            "design --method gradient runs the codec on the model-input crop: use --at input "
            "(its tables can still be evaluated --at original)"
        )
    run = Run(problem, "gradient")
    torch.manual_seed(problem.seed)
    rng = np.random.default_rng(problem.seed)
    train = build_pristine(problem.design_set().subset("design", train_images), problem.model, "input")
    problem.skipped.update(train.failures)
    net = problem.model.module
    net.eval()
    frozen = [p for p in net.parameters() if p.requires_grad]
    for p in frozen:  # frozen while descending; restored below so the caller's model is unchanged
        p.requires_grad_(False)
    try:
        points, steps_per_lambda = _descend(
            problem, run, net, train, rng, lambdas, epochs, batch_size, lr, rounding, init_quality, basis
        )
    finally:
        for p in frozen:
            p.requires_grad_(True)
    res = run.result(lambdas=list(sorted(lambdas, reverse=True)), epochs=epochs, batch_size=batch_size, lr=lr,
                     rounding=rounding, train_images=len(train), steps_per_lambda=steps_per_lambda,
                     basis=basis)  # fmt: skip
    res.tables = max(points, key=lambda c: c.gain).tables
    return res


def _smooth_basis():
    """(6, 64) quadratic surface in (v, u) / 7: 1, u, v, u², v², u·v."""
    v, u = np.meshgrid(np.arange(8) / 7.0, np.arange(8) / 7.0, indexing="ij")
    return np.stack([np.ones_like(u), u, v, u * u, v * v, u * v]).reshape(6, 64)


def _descend(problem, run, net, train, rng, lambdas, epochs, batch_size, lr, rounding, init_quality, basis):
    import torch

    from dnnjpeg.nn import DiffJPEG
    from dnnjpeg.nn.rate import RateModel

    pre = problem.model.preprocess
    codec = DiffJPEG(problem.subsampling, rounding).train()
    rate = RateModel.default(problem.subsampling)
    x_all = torch.from_numpy(np.ascontiguousarray(train.inputs)).permute(0, 3, 1, 2).float()
    p_all = torch.log_softmax(torch.from_numpy(train.logits).float(), dim=1)

    log_init = torch.log(torch.as_tensor(QuantTables.standard(init_quality).as_array(), dtype=torch.float32))
    lo, hi = 0.0, math.log(255.0)
    if basis == "entries":
        theta = log_init.clone().requires_grad_(True)

        def log_steps():
            return theta
    else:
        phi = torch.as_tensor(_smooth_basis(), dtype=torch.float32)
        theta = torch.zeros(2, phi.shape[0], requires_grad=True)

        def log_steps():
            return (log_init.reshape(2, 64) + theta @ phi).reshape(2, 8, 8).clamp(lo, hi)

    steps_per_lambda = max(1, int(round(epochs * len(train) / batch_size)))
    points = []
    for lam in sorted(lambdas, reverse=True):
        opt = torch.optim.Adam([theta], lr=lr)
        for _ in range(steps_per_lambda):
            idx = torch.from_numpy(rng.choice(len(train), size=min(batch_size, len(train)), replace=False))
            x, logp0 = x_all[idx], p_all[idx]
            y, enc = codec(x, torch.exp(log_steps()), return_levels=True)
            logq = torch.log_softmax(net(pre.normalize_tensor(y / 255.0)), dim=1)
            kl = (logp0.exp() * (logp0 - logq)).sum(1).mean()
            bpp = rate.bpp(enc.continuous()).mean()
            loss = kl + lam * bpp
            opt.zero_grad()
            loss.backward()
            opt.step()
            if basis == "entries":
                with torch.no_grad():
                    theta.clamp_(lo, hi)
        steps = np.clip(np.rint(torch.exp(log_steps()).detach().numpy()), 1, 255).astype(np.int64)
        points.append(
            run.try_(
                QuantTables(steps[0], steps[1]),
                phase="gradient",
                lam=lam,
                est_bpp=float(bpp.detach()),
                est_kl=float(kl.detach()),
            )
        )
    return points, steps_per_lambda
