"""Soft-decision quantization measured with the classifier, against the ladder and inside the per-image choice.

For every image of an evaluation at original (``--eval``: ``dnnjpeg evaluate --at original --codec
standard --codec FAMILY``, whose per-image records give the ladder and the family's plain members),
each member of the family is encoded with SDQ for every configuration (weights × alpha × table
re-fits): λ of member k is ``alpha`` × its table's weighted step error
(:func:`dnnjpeg.sdq.encode.table_lambda`). Weights: ``fisher`` (lite0's per-model Fisher diagonal,
no network at compression), ``crop`` (the same, zero outside the blocks the model's resize and
centre crop read: no network either), ``gradient`` (this image's Fisher diagonal per block from
``--weights-model``, :func:`dnnjpeg.sdq.weights.gradient_weights`), ``mse`` (the control: trellis
quantization for PSNR). Every encode is decoded and classified by ``--model``; each configuration
becomes a curve (its K members) with per-image records, and its per-image choice in the loop
(:func:`dnnjpeg.evaluate.selection.with_selection`); BD-rate on top-1 and KL against the ladder,
paired bootstrap. Encodes are kept in ``--work`` (one .npz per image), so a rerun with another
``--model`` (a transfer) classifies the same files without encoding again.

    .venv/bin/python benchmarks/bench_sdq_network.py --eval EVALDIR --configs fisher:0.01,mse:0.01 --work W
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from dnnjpeg._runtime import tune_malloc
from dnnjpeg.codec import decode, load_image
from dnnjpeg.evaluate import recompare
from dnnjpeg.evaluate.selection import with_selection
from dnnjpeg.evaluate.trial import outcome
from dnnjpeg.families import parse_family
from dnnjpeg.models import load_model


def _parse_config(text: str) -> dict:
    """``KIND:ALPHA[:rREFITS]`` → {"name", "kind", "alpha", "refit"}."""
    parts = text.split(":")
    kind, alpha = parts[0], float(parts[1])
    refit = int(parts[2][1:]) if len(parts) > 2 else 0
    if kind not in ("fisher", "mse", "gradient", "crop", "mix"):
        raise SystemExit(f"unknown weights {kind!r}")
    return {"name": text, "kind": kind, "alpha": alpha, "refit": refit}


def _encode_image(job):
    """One image, every configuration and member: (bits (C, K), decoded at model geometry (C, K, S, S, 3))."""
    import torch

    torch.set_num_threads(1)
    from dnnjpeg.sdq.encode import image_coefficients, sdq_encode, table_lambda
    from dnnjpeg.sdq.weights import crop_mask, model_weights

    path, configs, members, grad_w, pre, cache = job
    store = dict(np.load(cache, allow_pickle=False)) if cache and os.path.exists(cache) else {}
    rgb = load_image(path, "RGB")
    coefs = image_coefficients(rgb) if rgb.ndim == 3 else None
    fisher = model_weights("fisher")
    bits = np.zeros((len(configs), len(members)), np.int64)
    out = np.zeros((len(configs), len(members), pre.size, pre.size, 3), np.uint8)
    new = False
    for ci, cfg in enumerate(configs):
        lam_w = model_weights("mse") if cfg["kind"] == "mse" else fisher
        w = grad_w if cfg["kind"] == "gradient" else lam_w
        if cfg["kind"] in ("crop", "mix") and coefs is not None:  # lite0's weights inside the model's crop
            w = [f[None, None] * m[..., None, None] for f, m in zip(fisher, crop_mask(*rgb.shape[:2], pre))]
        if cfg["kind"] == "mix" and coefs is not None:  # the image's own Fisher diagonal shrunk to the model's
            w = [0.5 * (a + b) for a, b in zip(w, grad_w)]
        for k, t in enumerate(members):
            key = f"{cfg['name']}|{k}"
            if key not in store:
                lam = table_lambda(t, lam_w, cfg["alpha"])
                data = sdq_encode(rgb, t, lam, w, refit=cfg["refit"], coefficients=coefs)[0]
                store[key] = np.frombuffer(data, np.uint8)
                new = True
            data = store[key].tobytes()
            bits[ci, k] = 8 * len(data)
            out[ci, k] = pre.geometry(decode(data))
    if cache and new:
        tmp = cache + ".part.npz"
        np.savez(tmp, **store)
        os.replace(tmp, cache)
    return bits, out


def main() -> None:
    tune_malloc()
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", required=True, help="an evaluation at original holding the ladder and --family")
    ap.add_argument("--family", default="preset:efficientnet-lite0-420-original-sweep")
    ap.add_argument("--configs", default="fisher:0.01,gradient:0.01,mse:0.01")
    ap.add_argument("--model", default="efficientnet-lite0", help="the classifier that measures")
    ap.add_argument("--weights-model", default="efficientnet-lite0", help="the classifier of gradient weights")
    ap.add_argument("--classes", type=int, default=4, help="classes in the per-image Fisher diagonal")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--work", default=None, help="folder keeping every encode (resume, transfer runs)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument(
        "--model-eval",
        default=None,
        help="--model's own evaluation of the ladder and --family on the same images (else re-encoded)",
    )
    ap.add_argument("--out", default="bench-sdq-network")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(a.work) if a.work else None
    if work:
        work.mkdir(parents=True, exist_ok=True)
    r = json.loads((Path(a.eval) / "results.json").read_text())
    if r["settings"]["at"] != "original":
        raise SystemExit(f"{a.eval}: needs an evaluation --at original")
    fam = parse_family(a.family)
    fam_curve = next((c for c in r["curves"] if c["name"] == fam.name), None)
    if fam_curve is None:
        raise SystemExit(f"{a.eval}: no curve {fam.name!r} (evaluate it with --codec {a.family})")
    configs = [_parse_config(c) for c in a.configs.split(",")]
    model = load_model(a.model)
    wmodel = model if a.weights_model == a.model else load_model(a.weights_model)
    pre = model.preprocess
    pr = r["pristine"]["per_image"]
    n = len(pr["path"]) if a.limit is None else min(a.limit, len(pr["path"]))
    paths, labels = pr["path"][:n], np.array(pr["label"][:n])
    n_c, n_k = len(configs), len(fam)
    bits = np.zeros((n_c, n_k, n), np.int64)
    top1 = np.zeros((n_c, n_k, n), np.int64)
    kl = np.zeros((n_c, n_k, n))
    p_logits = np.zeros((n, model.num_classes), np.float32)
    t_grad = t_enc = t_cls = 0.0
    ctx = get_context("spawn")
    with ProcessPoolExecutor(a.workers, mp_context=ctx) as pool:
        for lo in range(0, n, a.chunk):
            idx = range(lo, min(n, lo + a.chunk))
            imgs = [load_image(paths[i], "RGB") for i in idx]
            p_logits[lo : idx[-1] + 1] = model.logits(np.stack([pre.geometry(x) for x in imgs]), batch_size=32)
            t0 = time.perf_counter()
            grads = [None] * len(imgs)
            if any(c["kind"] in ("gradient", "mix") for c in configs):
                from dnnjpeg.sdq.weights import gradient_weights

                for j, (i, x) in enumerate(zip(idx, imgs)):
                    cache = work / f"{i:06d}.npz" if work else None
                    keys = set(np.load(cache).files) if cache and cache.exists() else set()
                    if x.ndim == 3 and any(
                        f"{c['name']}|0" not in keys for c in configs if c["kind"] in ("gradient", "mix")
                    ):
                        grads[j] = gradient_weights(x, wmodel, classes=a.classes)
            t1 = time.perf_counter()
            jobs = [(paths[i], configs, fam.members, g, pre, str(work / f"{i:06d}.npz") if work else None)
                    for i, g in zip(idx, grads)]  # fmt: skip
            res = list(pool.map(_encode_image, jobs))
            t2 = time.perf_counter()
            for j, (b, dec) in zip(idx, res):
                bits[:, :, j] = b
                logits = model.logits(dec.reshape(-1, pre.size, pre.size, 3), batch_size=32)
                t5, d = outcome(np.repeat(p_logits[j : j + 1], n_c * n_k, 0), logits)
                top1[:, :, j] = t5[:, 0].reshape(n_c, n_k)
                kl[:, :, j] = d.reshape(n_c, n_k)
            t3 = time.perf_counter()
            t_grad, t_enc, t_cls = t_grad + t1 - t0, t_enc + t2 - t1, t_cls + t3 - t2
            print(f"{idx[-1] + 1}/{n} images: gradients {t_grad:.0f} s, encodes {t_enc:.0f} s, "
                  f"classifier {t_cls:.0f} s", flush=True)  # fmt: skip

    def sub(c):  # an evaluation's curve cut to the first n images
        pts = []
        for p in c["points"]:
            q = dict(p)
            q["per_image"] = {k: v[:n] for k, v in p["per_image"].items()}
            pts.append(q)
        return {**c, "points": pts}

    px = np.array(pr["pixels"][:n])
    own = json.loads((Path(a.model_eval) / "results.json").read_text()) if a.model_eval else None
    if own is not None and own["pristine"]["per_image"]["path"][:n] == paths and own["settings"]["model"] == a.model:
        curves = [sub(c) for c in own["curves"] if c["name"] in ("standard 4:2:0", fam.name)]
        r = {**own, "curves": []}
        pr = own["pristine"]["per_image"]
    elif a.model != r["settings"]["model"] or n < len(pr["path"]):
        # another classifier (a transfer) or a subset: the ladder and plain members are measured again
        # from the evaluation's own encodes is not possible here, so they are re-encoded plainly
        curves = _plain_curves(r, [parse_family("standard"), fam], paths, model, p_logits, labels, px)
    else:
        curves = [c for c in r["curves"] if c["name"] in ("standard 4:2:0", fam.name)]
    ptop1 = p_logits.argmax(1)
    for ci, cfg in enumerate(configs):
        pts = []
        for k, t in enumerate(fam.members):
            b = bits[ci, k]
            pts.append({
                "label": fam.labels[k], "quality": None, "scale": None, "subsampling": "4:2:0", "optimize": True,
                "bpp": float(b.sum() / px.sum()), "mean_image_bpp": float(np.mean(b / px)), "compression_ratio": None,
                "top1": float(100 * np.mean(top1[ci, k] == labels)), "top5": None,
                "agreement": float(100 * np.mean(top1[ci, k] == ptop1)), "kl": float(kl[ci, k].mean()),
                "seconds": 0.0, "tables": t.to_dict(),
                "per_image": {"bits": b.tolist(), "top1": top1[ci, k].tolist(), "kl": np.round(kl[ci, k], 6).tolist()},
            })  # fmt: skip
        curves.append({"name": f"sdq {cfg['name']}", "kind": "tables", "points": pts})
    base = {**r, "curves": curves}
    base["settings"] = {**r["settings"], "model": a.model, "n_images": n}
    base["pristine"] = {**r["pristine"], "per_image": {
        **{k: v[:n] for k, v in pr.items()}, "top1": ptop1.tolist()}}  # fmt: skip
    res = with_selection(base, curves=[c["name"] for c in curves if c["name"] != "standard 4:2:0"])
    res = recompare(res.to_dict(), n_boot=1000)  # (an --model-eval may have been run without intervals)
    (out / "results.json").write_text(json.dumps(res.to_dict(), indent=1, default=float))
    print(f"per image: gradient {1000 * t_grad / n:.0f} ms, SDQ encodes {1000 * t_enc / n / n_c / n_k:.0f} ms "
          f"each ({a.workers} workers)")  # fmt: skip
    for k in res.comparisons:
        print(f"{k['test']:>60} vs {k['reference']}: BD-rate {k['bd_rate']:+.1f}% "
              f"[{k['bd_rate_ci'][0]:+.1f}, {k['bd_rate_ci'][1]:+.1f}]; on KL {k['bd_rate_kl']:+.1f}% "
              f"[{k['bd_rate_kl_ci'][0]:+.1f}, {k['bd_rate_kl_ci'][1]:+.1f}]")  # fmt: skip


def _plain_curves(r, families, paths, model, p_logits, labels, px):
    """The ladder and the family's plain members, encoded and classified here (per-image records)."""
    pre = model.preprocess
    imgs = [load_image(p, "RGB") for p in paths]
    curves = []
    for fam in families:
        pts = []
        for spec in fam.points:
            datas = [spec.encode(x) for x in imgs]
            logits = model.logits(np.stack([pre.geometry(decode(d)) for d in datas]), batch_size=32)
            t5, d = outcome(p_logits, logits)
            b = np.array([8 * len(x) for x in datas])
            pts.append({
                "label": spec.label, "quality": spec.quality, "scale": None, "subsampling": spec.subsampling,
                "optimize": True, "bpp": float(b.sum() / px.sum()), "mean_image_bpp": float(np.mean(b / px)),
                "compression_ratio": None, "top1": float(100 * np.mean(t5[:, 0] == labels)), "top5": None,
                "agreement": float(100 * np.mean(t5[:, 0] == p_logits.argmax(1))), "kl": float(d.mean()),
                "seconds": 0.0, "tables": spec.tables.to_dict(),
                "per_image": {"bits": b.tolist(), "top1": t5[:, 0].tolist(), "kl": np.round(d, 6).tolist()},
            })  # fmt: skip
        curves.append({"name": fam.name, "kind": fam.kind, "points": pts})
    return curves


if __name__ == "__main__":
    main()
