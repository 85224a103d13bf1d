"""The per-image choice and other classifiers: transfer, a committee of two, and keeping the prediction.

On stored sets of the size protocol (``bench_sizes.py``: the eval split re-stored at fixed shorter
sides, Kodak as stored; made here when absent), every member of the 8-table sweep and of the ladder is
measured once per classifier (EfficientNet-Lite0, -Lite1, -Lite2: bits, top-1, KL per image). Every
choice below is then computed from those records, so the files each rule writes are the members it
picks (encoding is deterministic):

* **own**: a classifier chooses for itself (least KL + λ·KiB): its in-the-loop gain;
* **own climb, reach R**: the local search (``--choose climb``) with the classifier in the loop, looking R
  members each way, starting from the family's choice by rate: what it keeps of the classifier's own gain;
* **A→B**: A's choice measured by B (files made for one model, read by another);
* **A+B→C**: the choice by the sum of two classifiers' KL, measured by the third (held out), and by
  each of the two: what a committee keeps of the held-out model's own gain, and of its own;
  **A max B→C**: the same with the larger of the two KLs as the cost;
* **keep(A)**: A keeps every image's top-1 prediction: the smallest member whose top-1 under A equals
  A's on the stored image and whose KL is at most a cap (a cap sweep makes a curve; "∞" is the
  guarantee with no cap). An image no member keeps gets the finest member (counted).

BD-rate on top-1 (agreement with the measuring model's pristine prediction on unlabelled Kodak)
against the measuring model's own ladder, paired bootstrap 95% intervals::

    .venv/bin/python benchmarks/bench_models.py --out bench-out/models
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sizes import SWEEP, _records, measure, restore  # noqa: E402

from dnnjpeg._io import atomic_write_text  # noqa: E402
from dnnjpeg._runtime import tune_malloc  # noqa: E402
from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB  # noqa: E402
from dnnjpeg.data import discover  # noqa: E402
from dnnjpeg.evaluate.compare import CurveData, compare_curves  # noqa: E402
from dnnjpeg.evaluate.selection import choose, climb_choice, keep_choice, selected_curve  # noqa: E402
from dnnjpeg.families import parse_family  # noqa: E402

MODELS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
SHORT = {m: m.replace("efficientnet-", "") for m in MODELS}
#: the sweep's recorded mean KL per member (lite0's): where --choose climb starts, whichever model climbs
KAPPA = np.asarray(parse_family(SWEEP).kappa)
#: KL caps (nats) of the keep-prediction curve, loose to tight; inf = keep top-1 only
CAPS = (np.inf, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005)


def records(doc_ladder: dict, doc_sweep: dict, labelled: bool) -> dict:
    """One classifier's records on one set: ladder and sweep (bits, top1, kl) (K, N), pristine top-1 and
    the label each is scored against (the label, or the pristine top-1 when unlabelled)."""
    pr = doc_ladder["pristine"]["per_image"]
    p_top1 = np.asarray(pr["top1"])
    label = np.asarray(pr["label"]) if labelled else p_top1
    assert list(doc_sweep["pristine"]["per_image"]["path"]) == list(pr["path"])
    sweep = next(c for c in doc_sweep["curves"] if c.get("kind") != "selected")
    return {"ladder": _records(doc_ladder["curves"][0]), "sweep": _records(sweep), "p_top1": p_top1,
            "label": label, "pixels": np.asarray(pr["pixels"]), "paths": list(pr["path"])}  # fmt: skip


def _bd(ref: CurveData, test: CurveData, correct: np.ndarray, n_boot: int) -> tuple[float, float, float]:
    c = compare_curves(ref, test, correct, 1.0, n_boot, 0)
    return float(c.bd_rate), float(c.bd_rate_ci[0]), float(c.bd_rate_ci[1])


def keep_curve(sel: dict, caps=CAPS) -> tuple[np.ndarray, int]:
    """The keep-prediction choice of chooser records ``sel`` at every cap: (choices (L, N), images no
    member keeps at the loosest cap)."""
    bits, top1, kl = sel["sweep"]
    same = top1 == sel["p_top1"][None, :]
    out = [keep_choice(bits, kl, same, cap) for cap in caps]
    missed = int((out[0] < 0).sum())
    finest = bits.argmax(0)
    return np.array([np.where(c < 0, finest, c) for c in out]), missed


def _same_guarantee(r: dict) -> dict:
    """What the same guarantee (every top-1 kept) costs without the sweep: one ladder quality for every
    image (the lowest that keeps them all; None when even the finest does not), and each image its own
    ladder quality (the keep rule on the ladder's members). Bits per pixel."""
    lb, lt, lk = r["ladder"]
    same = lt == r["p_top1"][None, :]
    pix = r["pixels"].sum()
    all_kept = np.flatnonzero(same.all(1))
    uniform = float(lb[all_kept].sum(1).min() / pix) if len(all_kept) else None
    k = keep_choice(lb, lk, same)
    per_image = float(lb[np.where(k < 0, lb.argmax(0), k), np.arange(len(k))].sum() / pix)
    return {"ladder one quality bpp": uniform, "ladder per image bpp": per_image,
            "ladder finest keeps": float(100 * same[lb.sum(1).argmax()].mean())}  # fmt: skip


def set_rows(name: str, recs: dict, n_boot: int) -> list[dict]:
    """Every rule × measuring model on one set, as table rows."""
    rows = []
    n = len(recs[MODELS[0]]["paths"])
    cols = np.arange(n)
    for m in MODELS:  # the measuring model
        r = recs[m]
        bits, top1, kl = r["sweep"]
        lb, lt, lk = r["ladder"]
        correct_p = r["p_top1"] == r["label"]
        ref = CurveData("ladder", lb, lt == r["label"], r["pixels"], lk)

        def measured(choice: np.ndarray, label: str, r=r, bits=bits, top1=top1, kl=kl) -> CurveData:
            return CurveData(label, bits[choice, cols], top1[choice, cols] == r["label"], r["pixels"],
                             kl[choice, cols])  # fmt: skip

        def chosen_by(sel_kl: np.ndarray, r=r, bits=bits, top1=top1, kl=kl) -> np.ndarray:
            return selected_curve(bits, top1 == r["label"], kl, DEFAULT_LAMBDAS_NATS_PER_KIB, sel_kl)[4]

        own = _bd(ref, measured(chosen_by(kl), "own"), correct_p, n_boot)
        rows.append({"set": name, "measured by": SHORT[m], "rule": "own choice", "bd": own})
        for reach in (1, 2):  # the local search with this model in the loop, from the family's choice by rate

            def rule(lam, reach=reach, bits=bits, kl=kl):
                return climb_choice(bits, kl, lam, choose(bits, np.broadcast_to(KAPPA[:, None], bits.shape), lam),
                                    reach)[0]  # fmt: skip

            ch = selected_curve(bits, top1 == r["label"], kl, DEFAULT_LAMBDAS_NATS_PER_KIB, rule=rule)[4]
            bd = _bd(ref, measured(ch, "climb"), correct_p, n_boot)
            rows.append({"set": name, "measured by": SHORT[m], "rule": f"own climb, reach {reach}", "bd": bd,
                         "of own": bd[0] / own[0] if own[0] else None})  # fmt: skip
        for c in MODELS:
            if c != m:
                bd = _bd(ref, measured(chosen_by(recs[c]["sweep"][2]), "t"), correct_p, n_boot)
                rows.append({"set": name, "measured by": SHORT[m], "rule": f"{SHORT[c]} chooses", "bd": bd,
                             "of own": bd[0] / own[0] if own[0] else None})  # fmt: skip
        for a, b in [(MODELS[i], MODELS[j]) for i in range(3) for j in range(i + 1, 3)]:
            held = m not in (a, b)
            # the committee's cost: the sum (= twice the mean) of the two KLs, or the larger of them
            for how, sel in (("+", recs[a]["sweep"][2] + recs[b]["sweep"][2]),
                             (" max ", np.maximum(recs[a]["sweep"][2], recs[b]["sweep"][2]))):  # fmt: skip
                bd = _bd(ref, measured(chosen_by(sel), "c"), correct_p, n_boot)
                rows.append({"set": name, "measured by": SHORT[m], "rule": f"{SHORT[a]}{how}{SHORT[b]} choose",
                             "bd": bd, "of own": bd[0] / own[0] if own[0] else None, "held out": held})  # fmt: skip
        for c in MODELS:
            ch, missed = keep_curve(recs[c])
            # the chooser's own top-1 is kept by construction: its curve is flat, a BD-rate only for others
            bd = None if c == m else _bd(ref, CurveData("keep", bits[ch, cols], top1[ch, cols] == r["label"],
                                                        r["pixels"], kl[ch, cols]), correct_p, n_boot)  # fmt: skip
            k0 = ch[0]
            row = {"set": name, "measured by": SHORT[m], "rule": f"keep({SHORT[c]}) caps", "bd": bd,
                   "keep∞ bpp": float(bits[k0, cols].sum() / r["pixels"].sum()),
                   "keep∞ agreement": float(100 * np.mean(top1[k0, cols] == r["p_top1"])),
                   "no member keeps": missed}  # fmt: skip
            if c == m:
                row |= _same_guarantee(r)
            rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    def f(v):
        if v is None:
            return "— (its own top-1 is kept by construction)"
        x, lo, hi = v
        if not np.isfinite(x):
            return "no overlap"
        s = f"{x:+.1f}% [{lo:+.1f}, {hi:+.1f}]"
        return f"**{s}**" if hi < 0 else s

    out = ["| set | measured by | rule | BD-rate top-1 vs its ladder [95% CI] | of its own gain | keep ∞: bpp, "
           "agreement, images no member keeps |", "|---|---|---|---|---:|---|"]  # fmt: skip
    for r in rows:
        own = f"{100 * r['of own']:.0f}%" if r.get("of own") is not None else ""
        held = " (held out)" if r.get("held out") else ""
        keep = (f"{r['keep∞ bpp']:.3f} bpp, {r['keep∞ agreement']:.1f}%, {r['no member keeps']}"
                if "keep∞ bpp" in r else "")  # fmt: skip
        if "ladder per image bpp" in r:
            one = r["ladder one quality bpp"]
            one_txt = f"{one:.3f} bpp" if one else f"none (q95 keeps {r['ladder finest keeps']:.1f}%)"
            keep += (
                f"; same guarantee by the ladder: one quality {one_txt}, per image {r['ladder per image bpp']:.3f} bpp"
            )
        out.append(f"| {r['set']} | {r['measured by']} | {r['rule']}{held} | {f(r['bd'])} | {own} | {keep} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/imagenet-sample")
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--sizes", default="224,320")
    ap.add_argument("--kodak-sides", default="512")
    ap.add_argument("--sizes-out", default="bench-out/sizes", help="where bench_sizes keeps its stored sets")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default="bench-out/models")
    a = ap.parse_args(argv)
    tune_malloc()
    from dnnjpeg.models import load_model

    out, data = Path(a.out).resolve(), Path(a.data)
    eval_names = [r.path.name for r in discover(data).records if r.split == "eval"]
    sets = {f"imagenet {s}": (restore(data, s, Path(a.sizes_out) / "data" / f"imagenet-{s}", eval_names), True)
            for s in map(int, filter(None, a.sizes.split(",")))}  # fmt: skip
    for s in map(int, filter(None, a.kodak_sides.split(","))):
        sets[f"kodak {s}"] = (restore(Path(a.kodak), s, Path(a.sizes_out) / "data" / f"kodak-{s}", None), False)
    rows = []
    for name, (folder, labelled) in sets.items():
        recs = {}
        for m in MODELS:
            model = load_model(m)
            docs = {}
            for fam, text in (("ladder", "standard"), ("sweep", SWEEP)):
                print(f"[{name}] {m} {fam}", file=sys.stderr)
                docs[fam] = measure(folder, text, model, out / "records" / name.replace(" ", "-") / m / fam, a.limit)
            recs[m] = records(docs["ladder"], docs["sweep"], labelled)
        rows += set_rows(name, recs, a.n_boot)
    md = markdown(rows)
    atomic_write_text(out / "models.md", md)
    atomic_write_text(out / "models.json", json.dumps(rows, indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
