"""Every method on a grid of fixed stored sizes, against two baselines (the size protocol).

The eval split's images are stored again, losslessly (PNG), at fixed shorter sides around the
classifier's resize (lite0: 256, crop 224): 160 below its input, 224 and 256 near it, 320 and 384
above it. Each size is made only from sources at least that large, brought down with Pillow's
antialiased Lanczos. Kodak joins at its own 768×512 and at 512×341; it has no labels, so its top-1
is agreement with the pristine prediction. Each method is a BD-rate on top-1 per stored size,
against two baselines, with paired bootstrap 95% intervals over the images:

* **ladder**: the IJG ladder (4:2:0, optimized Huffman) on the stored image;
* **resize→ladder**: the image's shorter side brought down to the model's resize (256) with the
  model's own filter, then the ladder: the first thing a practical user tries. Bits are always
  counted per *stored* pixel, so a smaller file is charged fairly.

Records are measured once per (stored size, family) with ``dnnjpeg.evaluate`` and its chunk cache,
and every per-image choice (network, climb, by rate, QNet, resolution as a member) is computed from
those records: a method added later measures only its own family. Re-run with the same ``--out``
and nothing is measured again::

    .venv/bin/python benchmarks/bench_sizes.py --out bench-out/sizes

``--sizes``, ``--kodak-sides`` and ``--limit`` shrink it; ``--methods`` picks methods (default all).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from dnnjpeg._io import atomic_write_bytes, atomic_write_text
from dnnjpeg._runtime import tune_malloc
from dnnjpeg.conventions import DEFAULT_LAMBDAS_NATS_PER_KIB
from dnnjpeg.data import discover
from dnnjpeg.evaluate import evaluate
from dnnjpeg.evaluate.compare import CurveData, compare_curves
from dnnjpeg.evaluate.selection import choose, climb_choice, selected_curve
from dnnjpeg.families import parse_family

SWEEP = "preset:efficientnet-lite0-420-original-sweep"
QNET = "qnet:preset:efficientnet-lite0-qnet"  # its family is SWEEP: one measurement serves both
FAMILIES = {  # key: (--codec text, needs the stored size > the model's resize to differ from its plain form)
    "ladder": ("standard", False),
    "sweep": (QNET, False),
    "table": ("preset:efficientnet-lite0-420", False),
    "sdq-crop": ("sdq:crop", False),
    "sdq-gradient": ("sdq:gradient", False),
    "ladder+resize": ("standard+resize:{R}", True),
    "sweep+resize": (SWEEP + "+resize:{R}", True),
    "table+resize": ("preset:efficientnet-lite0-420+resize:{R}", True),
    "table-nyquist": ("tables:{NYQ}", True),
    "fisher-size": ("sweep:{FISHER}", False),
    "sdq-crop-lam": ("{SDQ_LADDER}", False),
    "ladder444": ("standard@4:4:4", False),
    "jpegli": ("jpegli", False),
}
#: method: (what it is, the families it needs). The first two are the baselines.
METHODS = {
    "ladder": ("the IJG ladder on the stored image (baseline A)", ["ladder"]),
    "resize→ladder": ("shorter side to the model's resize, then the ladder (baseline B)", ["ladder+resize"]),
    "fixed": ("one designed table (lite0-420) swept by scale", ["table"]),
    "fixed+resize": ("resize, then the designed table swept by scale", ["table+resize"]),
    "fixed nyquist": (
        "the designed table, luma frequencies above the model's Nyquist after its resize "
        "zeroed (step 255), swept by scale",
        ["table-nyquist"],
    ),
    "fixed fisher(size)": (
        "the fisher sweep designed on the design split stored at this size, each member for every image",
        ["fisher-size"],
    ),
    "rate fisher(size)": (
        "per image by rate among the size's own fisher sweep (κ on the design split at this size)",
        ["fisher-size"],
    ),
    "network fisher(size)": ("the network in the loop among the size's own fisher sweep", ["fisher-size"]),
    "fixed sdq:crop λ": (
        "the shipped table, SDQ crop levels at one λ for every image, λ swept: what "
        "compress --levels sdq:crop --target-bpp now writes",
        ["sdq-crop-lam"],
    ),
    "fixed sdq:crop": ("the sweep's tables, SDQ levels with crop weights, each for every image", ["sdq-crop"]),
    "jpegli": ("jpegli at the ladder's qualities (its own tables, adaptive quantization)", ["jpegli"]),
    "rate": ("per image by rate, κ recorded on the eval split at original sizes", ["sweep"]),
    "rate κ(size)": ("per image by rate, κ measured on the design split stored at this size", ["sweep"]),
    "qnet": ("per image by the shipped QNet (no network on the candidates)", ["sweep"]),
    "climb": (
        "the network in the loop, local search from the by-rate member looking two members each way (CLIMB_REACH)",
        ["sweep"],
    ),
    "climb reach 1": ("the same local search looking one member each way (before)", ["sweep"]),
    "climb reach 3": ("the same local search looking three members each way", ["sweep"]),
    "network": ("the network in the loop: least KL + λ·KiB among the 8 sweep members", ["sweep"]),
    "network sdq:crop": ("the network in the loop among SDQ crop-weight members", ["sdq-crop"]),
    "network sdq:gradient": ("the network in the loop among SDQ gradient-weight members", ["sdq-gradient"]),
    "network ladder 4:2:0+4:4:4": (
        "the network in the loop among the ladder at both subsamplings",
        ["ladder", "ladder444"],
    ),
    "resize→network": ("resize, then the network in the loop", ["sweep+resize"]),
    "network + size member": (
        "the network chooses among the sweep at stored and at resized size",
        ["sweep", "sweep+resize"],
    ),
    "network stacked": (
        "the network chooses the table and the levels: the sweep rounded, with SDQ crop and with SDQ gradient levels",
        ["sweep", "sdq-crop", "sdq-gradient"],
    ),
    "network stacked + size": (
        "the stacked choice, and the sweep at the model's resolution as members too",
        ["sweep", "sdq-crop", "sdq-gradient", "sweep+resize"],
    ),
    "network everything": (
        "the stacked choice with the size members and the ladder at 4:2:0 and 4:4:4 (on the --subset images)",
        ["sweep", "sdq-crop", "sdq-gradient", "sweep+resize", "ladder", "ladder444"],
    ),
}
SLOW: set[str] = {"climb reach 3"}  # methods left out unless asked for
#: climb method → members measured per image (mean over the images), one entry per set and λ
MEASURED: dict[str, list[float]] = {}


def restore(
    src: Path, side: int, dst: Path, names: list[str] | None, interpolation: str = "lanczos", square: bool = False
) -> Path:
    """The images of ``src`` (or those of ``names``) whose shorter side is ≥ ``side``, stored at that
    shorter side as PNG in ``dst`` (made once; a file already there is kept); ``square``: their centre
    square only (as held-out sets stored square are). Returns ``dst``."""
    from PIL import Image

    from dnnjpeg.codec import load_image, resize_shorter

    dst.mkdir(parents=True, exist_ok=True)
    from dnnjpeg.data import find_images

    for p in map(Path, find_images(src)[0]):
        if names is not None and p.name not in names:
            continue
        out = dst / (p.stem + ".png")
        if out.exists():
            continue
        rgb = load_image(str(p), "RGB")
        if min(rgb.shape[:2]) < side:
            continue
        if square:
            h, w = rgb.shape[:2]
            m = min(h, w)
            rgb = np.ascontiguousarray(rgb[(h - m) // 2 : (h - m) // 2 + m, (w - m) // 2 : (w - m) // 2 + m])
        buf = io.BytesIO()
        Image.fromarray(resize_shorter(rgb, side, interpolation)).save(buf, "PNG")
        atomic_write_bytes(out, buf.getvalue())
    return dst


def nyquist_table(side: int, resize: int, out: Path) -> Path:
    """The designed table with every luma frequency the classifier cannot see after bringing a shorter
    side of ``side`` down to ``resize`` set to step 255 (saved to ``out``). A DCT frequency u of an 8×8
    block is u/16 cycles per stored pixel, u/(16 r) per model pixel at r = resize/side: above the
    model's Nyquist (½) when u ≥ 8r. Chroma (4:2:0: u/32 cycles per pixel) stays below it for r ≥ ½."""
    from dnnjpeg.codec import QuantTables
    from dnnjpeg.presets import load_preset

    t = load_preset("efficientnet-lite0-420")
    keep = np.arange(8) < 8 * resize / side
    luma = np.where(keep[:, None] & keep[None, :], t.luma, 255)
    out.parent.mkdir(parents=True, exist_ok=True)
    return QuantTables(luma, t.chroma).save(out)


def fisher_for_size(folder: Path, names: list[str], model, out: Path) -> Path:
    """The ``fisher`` sweep (``design --method fisher --at original``, its defaults) designed on the
    design split stored at one size (``folder``, PNGs of the design images ``names``), saved to ``out``
    once. The designer accepts only files whose names hash to the design split, so the PNGs are
    copied under their original names first (content decides what a file is)."""
    if out.exists():
        return out
    from dnnjpeg.design import DesignProblem, design

    named = folder.with_name(folder.name + "-named")
    named.mkdir(exist_ok=True)
    for n in names:
        png = folder / (Path(n).stem + ".png")
        if png.exists() and not (named / n).exists():
            atomic_write_bytes(named / n, png.read_bytes())
    res = design("fisher", DesignProblem(discover(named), model, "original", "4:2:0", budget=40, trial_images=100))
    return res.save(out)


def sdq_ladder(weights: str = "crop"):
    """The shipped table with SDQ levels at a ladder of λ (alpha × its step error), one λ for every
    image per member: the curve a bit budget over the tree moves along (``--choose fixed --levels sdq``)."""
    from dnnjpeg.families import CodecSpec, TableFamily
    from dnnjpeg.presets import load_preset

    t = load_preset("efficientnet-lite0-420-original")
    alphas = (2.0**-8, 2.0**-6, 2.0**-4, 2.0**-2, 1.0, 4.0)
    pts = [CodecSpec(t, tag="alpha=0")] + [CodecSpec(t, tag=f"alpha={a:g}", encoder="sdq", sdq=(weights, a, 0))
                                           for a in alphas]  # fmt: skip
    return TableFamily(f"sdq:{weights} λ ladder", tuple(pts), "sdq")


def measure(folder: Path, family_text: str, model, work: Path, limit: int | None) -> dict:
    """``evaluate`` of one family on one stored set (records saved in ``work``; reused when there)."""
    saved = work / "results.json"
    if saved.exists():
        return json.loads(saved.read_text())
    ds = discover(folder)
    ds = ds.subset("all", limit) if limit else ds
    t0 = time.perf_counter()
    fam = sdq_ladder() if family_text == "{SDQ_LADDER}" else parse_family(family_text)
    res = evaluate(ds, model, [fam], at="original", n_boot=0, cache=work / "chunks")
    doc = res.to_dict()
    doc["bench_seconds"] = time.perf_counter() - t0
    atomic_write_text(saved, json.dumps(doc))
    return doc


def _records(curve: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bits, top-1, KL), each (K, N), of a measured curve's members."""
    per = [p["per_image"] for p in curve["points"]]
    return (np.array([q["bits"] for q in per], np.int64), np.array([q["top1"] for q in per], np.int64),
            np.array([q["kl"] for q in per], np.float64))  # fmt: skip


def _chosen(bits, top1, kl, label, pixels, name, rule=None, selector_kl=None) -> CurveData:
    """The per-image choice at every default λ, as a curve."""
    _, b, c, k, _ = selected_curve(bits, top1 == label, kl, DEFAULT_LAMBDAS_NATS_PER_KIB, selector_kl, rule)
    return CurveData(name, b, c, pixels, k)


def _paths(doc: dict) -> list[str]:
    return list(doc["pristine"]["per_image"]["path"])


def _subset(cd: CurveData, idx: np.ndarray) -> CurveData:
    """The curve on the images ``idx`` (columns) only."""
    return CurveData(cd.name, cd.bits[:, idx], cd.correct[:, idx], cd.pixels[idx], cd.kl[:, idx])


def method_curve(method: str, docs: dict, kappas: dict) -> tuple[CurveData, list[str]] | None:
    """One method's curve on one stored set from its families' records, on the images every one of its
    families measured (some are measured on the first ``--subset`` images only), and those images' paths;
    None when a family was not measured."""
    need = METHODS[method][1]
    if any(n not in docs for n in need):
        return None
    have = [set(_paths(docs[n])) for n in need]
    paths = [p for p in _paths(docs["ladder"]) if all(p in h for h in have)]
    pr, where = docs["ladder"]["pristine"]["per_image"], {p: i for i, p in enumerate(_paths(docs["ladder"]))}
    cols = np.array([where[p] for p in paths])
    label, pixels = np.asarray(pr["label"])[cols], np.asarray(pr["pixels"])[cols]

    def records(doc: dict, curve: dict):
        at = {p: i for i, p in enumerate(_paths(doc))}
        c = np.array([at[p] for p in paths])
        return tuple(x[:, c] for x in _records(curve))

    def done(bits, top1, kl):
        return CurveData(method, bits, top1 == label, pixels, kl), paths

    if method.startswith("fixed") or method in ("ladder", "resize→ladder", "jpegli"):
        return done(*records(docs[need[0]], docs[need[0]]["curves"][0]))
    if method == "qnet":
        return done(*records(docs["sweep"], next(c for c in docs["sweep"]["curves"] if c.get("kind") == "selected")))
    bits, top1, kl = (np.concatenate(x) for x in zip(*(records(docs[n], docs[n]["curves"][0]) for n in need)))
    if method in ("rate", "rate κ(size)", "rate fisher(size)"):
        kap = np.asarray(parse_family(SWEEP).kappa) if method == "rate" else kappas.get(need[0])
        if kap is None:
            return None
        sel = np.broadcast_to(np.asarray(kap)[:, None], bits.shape)
        return _chosen(bits, top1, kl, label, pixels, method, selector_kl=sel), paths
    if method.startswith("climb"):
        kap = np.asarray(parse_family(SWEEP).kappa)
        reach = int(method.rpartition(" ")[2]) if "reach" in method else None

        def rule(lam):
            start = choose(bits, np.broadcast_to(kap[:, None], bits.shape), lam)
            chosen, count = climb_choice(bits, kl, lam, start, reach)
            MEASURED.setdefault(method, []).append(float(count.mean()))
            return chosen

        return _chosen(bits, top1, kl, label, pixels, method, rule=rule), paths
    return _chosen(bits, top1, kl, label, pixels, method), paths


def table_rows(sets: dict, methods: list[str], n_boot: int) -> list[dict]:
    """BD-rate (top-1) of every method against both baselines on every stored set, each on the images
    the method was measured on (the baselines restricted to them: paired)."""
    rows = []
    for set_name, (docs, kappas) in sets.items():
        curves = {m: method_curve(m, docs, kappas) for m in methods}
        refs = {"ladder": curves.get("ladder"), "resize→ladder": curves.get("resize→ladder") or curves.get("ladder")}
        pr = docs["ladder"]["pristine"]["per_image"]
        correct_all = np.asarray(pr["top1"]) == np.asarray(pr["label"])
        where = {p: i for i, p in enumerate(_paths(docs["ladder"]))}
        for m, got in curves.items():
            if got is None:
                continue
            cd, paths = got
            idx = np.array([where[p] for p in paths])
            row = {"set": set_name, "method": m, "images": len(paths)}
            for ref_name, ref in refs.items():
                if ref is None or ref_name == m or (m == "ladder" and ref_name == "ladder"):
                    continue
                c = compare_curves(_subset(ref[0], idx), cd, correct_all[idx], 1.0, n_boot, 0)
                row[ref_name] = (c.bd_rate, *c.bd_rate_ci)
                row[f"{ref_name} KL"] = (c.bd_rate_kl, *c.bd_rate_kl_ci)
            rows.append(row)
    return rows


def _fmt(v) -> str:
    if v is None:
        return "—"
    x, lo, hi = v
    if not np.isfinite(x):
        return "no overlap"
    ci = f" [{lo:+.1f}, {hi:+.1f}]" if np.isfinite(lo) else ""
    star = "**" if np.isfinite(lo) and (hi < 0 or lo > 0) else ""
    return f"{star}{x:+.1f}%{star}{ci}"


def markdown(rows: list[dict], set_names: list[str], methods: list[str]) -> str:
    """One table per baseline: methods down, stored sets across (bold: the interval excludes zero)."""
    out = []
    for ref in ("ladder", "resize→ladder", "ladder KL", "resize→ladder KL"):
        base, kl = ref.removesuffix(" KL"), ref.endswith(" KL")
        axis = "−ln(mean KL to the pristine output)" if kl else "top-1"
        out.append(f"\nBD-rate on {axis} against **{base}** (negative: fewer bits at equal quality; n = images)\n")
        out.append("| method | " + " | ".join(set_names) + " |")
        out.append("|---|" + "---:|" * len(set_names))
        by = {(r["set"], r["method"]): r for r in rows}
        out.append("| n | " + " | ".join(str(by.get((s, "ladder"), {}).get("images", "—")) for s in set_names) + " |")
        for m in methods:
            if m == base:
                continue
            cells = []
            for s in set_names:
                r, n = by.get((s, m)), by.get((s, "ladder"), {}).get("images")
                cells.append(
                    "—" if r is None else _fmt(r.get(ref)) + (f" (n={r['images']})" if r["images"] != n else "")
                )
            out.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def verdict(rows: list[dict], set_names: list[str], methods: list[str]) -> str:
    """Per method: on how many sets its top-1 interval is below zero against both baselines at once,
    and where it is above zero against either (worse)."""
    by = {(r["set"], r["method"]): r for r in rows}
    out = ["\n| method | sets where it beats both baselines (top-1 interval < 0) | where it is worse than one |",
           "|---|---|---|"]  # fmt: skip
    for m in methods:
        if m in ("ladder", "resize→ladder"):
            continue
        win, lose = [], []
        for s in set_names:
            r = by.get((s, m))
            if r is None:
                continue
            cis = [r.get(k) for k in ("ladder", "resize→ladder") if r.get(k) is not None]
            if cis and all(np.isfinite(v[2]) and v[2] < 0 for v in cis):
                win.append(s)
            if any(np.isfinite(v[1]) and v[1] > 0 for v in cis):
                lose.append(s)
        done = sum((s, m) in by for s in set_names)
        out.append(f"| {m} | {len(win)} of {done}" + (f": {', '.join(win)}" if 0 < len(win) < done else "")
                   + f" | {', '.join(lose) or '—'} |")  # fmt: skip
    return "\n".join(out) + "\n"


def plot(rows: list[dict], set_names: list[str], methods: list[str], path: Path) -> None:
    """BD-rate against each baseline per stored set, one line per method, 95% intervals as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["set"], r["method"]): r for r in rows}
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), sharey=True)
    x = np.arange(len(set_names))
    shown = [m for m in methods if m not in ("ladder", "resize→ladder")]
    for ax, ref in zip(axes, ("ladder", "resize→ladder")):
        for i, m in enumerate(shown):
            v = np.array([by.get((s, m), {}).get(ref, (np.nan,) * 3) for s in set_names], float)
            dx = (i - len(shown) / 2) * 0.04
            err = np.abs(v[:, 1:].T - v[:, 0])
            ax.errorbar(x + dx, v[:, 0], yerr=np.where(np.isfinite(err), err, 0), marker="o", ms=3, capsize=2,
                        label=m, lw=1)  # fmt: skip
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylim(-100, 100)  # (an interval past ±100% is cut: the table has it)
        ax.set_xticks(x, set_names, rotation=30)
        ax.set_title(f"against {ref}")
        ax.set_ylabel("BD-rate on top-1 (%, lower is better)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/imagenet-sample")
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--sizes", default="160,224,256,320,384")
    ap.add_argument("--square-sizes", default="256", help="the eval split's centre squares at these sides too")
    ap.add_argument(
        "--square-families",
        default="ladder,sweep,sdq-crop,table",
        help="what the square sets measure (on --subset images)",
    )
    ap.add_argument("--kodak-sides", default="512,341", help="Kodak's shorter sides (512: as stored)")
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--methods", default=";".join(m for m in METHODS if m not in SLOW), help="; separated")
    ap.add_argument("--limit", type=int, default=None, help="at most this many images per stored set")
    ap.add_argument("--subset", type=int, default=200, help="images (the first) for the --subset-families")
    ap.add_argument(
        "--subset-families",
        default="jpegli,ladder444,sdq-crop-lam",
        help="families measured on --subset images only (methods using them are compared there)",
    )
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default="bench-out/sizes")
    a = ap.parse_args(argv)
    tune_malloc()
    from dnnjpeg.models import load_model

    model = load_model(a.model)
    R = model.preprocess.resize
    out = Path(a.out).resolve()
    methods = [m.strip() for m in a.methods.split(";") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    fams = sorted({f for m in methods for f in METHODS[m][1]} | {"ladder"})
    if "rate κ(size)" in methods:
        fams = sorted(set(fams) | {"sweep"})
    data = Path(a.data)
    ds = discover(data)
    split = {r.path.name: r.split for r in ds.records}
    eval_names = [n for n, s in split.items() if s == "eval"]
    design_names = [n for n, s in split.items() if s == "design"]
    stored = {}
    for s in [int(x) for x in a.sizes.split(",") if x]:
        stored[f"imagenet {s}"] = (restore(data, s, out / "data" / f"imagenet-{s}", eval_names), s, s)
    square_sets: set[str] = set()
    for s in [int(x) for x in a.square_sizes.split(",") if x]:
        folder = restore(data, s, out / "data" / f"imagenet-{s}-square", eval_names, square=True)
        stored[f"imagenet {s} square"] = (folder, s, s)
        square_sets.add(f"imagenet {s} square")
    grid = sorted(v for _, v, _ in stored.values())
    for s in [int(x) for x in a.kodak_sides.split(",") if x]:
        near = max([g for g in grid if g <= s], default=None)  # κ(size) from the nearest grid size below
        stored[f"kodak {s}"] = (restore(Path(a.kodak), s, out / "data" / f"kodak-{s}", None), s, near)
    sets = {}
    for name, (folder, side, design_side) in stored.items():
        docs, kappas = {}, {}
        for f in fams:
            text, resizes = FAMILIES[f]
            if name in square_sets and f not in a.square_families.split(","):
                continue
            if resizes and side <= R:
                continue  # nothing to bring down: the plain family's records are this one's
            print(f"[{name}] {f}", file=sys.stderr)
            nyq = nyquist_table(side, R, out / "tables" / f"nyquist-{side}.json") if "{NYQ}" in text else None
            fis = None
            if "{FISHER}" in text:
                dfolder = restore(data, design_side, out / "data" / f"imagenet-{design_side}-design", design_names)
                fis = fisher_for_size(dfolder, design_names, model, out / "tables" / f"fisher-{design_side}.json")
                kdoc = measure(dfolder, text.format(FISHER=fis), model,
                               out / "records" / f"design-{design_side}" / f, a.limit)  # fmt: skip
                kappas[f] = np.array([p["kl"] for p in kdoc["curves"][0]["points"]])
            work = out / "records" / name.replace(" ", "-") / f
            text = text if "{SDQ_LADDER}" in text else text.format(R=R, NYQ=nyq, FISHER=fis)
            sub = f in a.subset_families.split(",") or name in square_sets
            lim = min(a.limit or a.subset, a.subset) if sub else a.limit
            docs[f] = measure(folder, text, model, work, lim)
        for f in list(FAMILIES):
            plain = {"table-nyquist": "table"}.get(f, f.removesuffix("+resize"))
            if FAMILIES[f][1] and f not in docs and plain in docs and plain != f:
                docs[f] = docs[plain]
        kappa = None
        if design_side is not None and "rate κ(size)" in methods:
            dfolder = restore(data, design_side, out / "data" / f"imagenet-{design_side}-design", design_names)
            ddoc = measure(dfolder, SWEEP, model, out / "records" / f"design-{design_side}" / "sweep", a.limit)
            kappa = np.array([p["kl"] for p in ddoc["curves"][0]["points"]])
        sets[name] = (docs, {"sweep": kappa, **kappas})
    rows = table_rows(sets, methods, a.n_boot)
    md = verdict(rows, list(sets), methods) + markdown(rows, list(sets), methods)
    atomic_write_text(out / "sizes.md", md)
    atomic_write_text(out / "sizes.json", json.dumps({"rows": rows, "methods": {m: METHODS[m][0] for m in methods}},
                                                     indent=1))  # fmt: skip
    plot(rows, list(sets), methods, out / "sizes.png")
    print(md)
    for m, got in MEASURED.items():  # the pristine image's pass comes on top
        print(f"{m}: {np.mean(got):.2f} of the 8 members measured per image (mean over sets and λ)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
