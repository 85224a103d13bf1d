"""Survey figures, each comparing the trees side by side. PNG, written atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from dnnjpeg._io import atomic_write_bytes

__all__ = ["all_plots", "umap_embedding"]

SUBSAMPLING_ORDER = ["4:4:4", "4:2:2", "4:2:0", "4:1:1", "4:4:0", "gray", "other"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _jpegs(df):
    return df[df["ok"].fillna(False).astype(bool)]


def _trees(df) -> list[str]:
    return list(dict.fromkeys(df["tree"].astype(str)))


def plot_color_gray(df, path: Path) -> Path:
    """Share of color and grayscale JPEGs (and of files that are not readable JPEGs) per tree."""
    plt = _plt()
    trees = _trees(df)
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(trees), 4.2))
    cats = ["color", "grayscale", "not a readable JPEG"]
    colors = ["#4c72b0", "#8c8c8c", "#c44e52"]
    x = np.arange(len(trees))
    bottom = np.zeros(len(trees))
    for cat, col in zip(cats, colors):
        vals, counts = [], []
        for t in trees:
            g = df[df["tree"] == t]
            ok = g["ok"].fillna(False).astype(bool)
            gray = g["grayscale"].fillna(False).astype(bool)
            n = {"color": (ok & ~gray).sum(), "grayscale": (ok & gray).sum(), "not a readable JPEG": (~ok).sum()}[cat]
            vals.append(100 * n / max(1, len(g)))
            counts.append(int(n))
        ax.bar(x, vals, 0.6, bottom=bottom, label=cat, color=col)
        for xi, b, v, c in zip(x, bottom, vals, counts):
            if c:
                ax.text(
                    xi, b + v / 2, f"{c:,}", ha="center", va="center", fontsize=8, color="white" if v > 6 else "black"
                )
        bottom += vals
    ax.set_xticks(x, trees)
    ax.set_ylabel("% of files")
    ax.set_title("color vs grayscale")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def plot_subsampling(df, path: Path) -> Path:
    """Chroma subsampling shares per tree, counts annotated."""
    plt = _plt()
    j = _jpegs(df)
    trees = _trees(df)
    cats = [c for c in SUBSAMPLING_ORDER if (j["subsampling"] == c).any()] or SUBSAMPLING_ORDER[:3]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(cats) * len(trees) + 2), 4.2))
    width = 0.8 / len(trees)
    for k, t in enumerate(trees):
        g = j[j["tree"] == t]
        counts = np.array([(g["subsampling"] == c).sum() for c in cats])
        share = 100 * counts / max(1, len(g))
        xs = np.arange(len(cats)) + (k - (len(trees) - 1) / 2) * width
        ax.bar(xs, share, width, label=f"{t} ({len(g):,} JPEGs)")
        for xi, s, c in zip(xs, share, counts):
            ax.text(xi, s, f"{c:,}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(cats)), cats)
    ax.set_ylabel("% of JPEGs (log)")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_title("chroma subsampling")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_quality(df, path: Path) -> Path:
    """Histogram of the estimated IJG quality per tree; non-IJG tables counted at their nearest quality."""
    plt = _plt()
    j = _jpegs(df)
    fig, ax = plt.subplots(figsize=(10, 4.2))
    bins = np.arange(0.5, 101.5, 1)
    for t in _trees(df):
        g = j[j["tree"] == t]
        q = g["quality"].dropna().astype(float)
        exact = g["quality_exact"].fillna(False).astype(bool)
        ax.hist(
            q,
            bins=bins,
            histtype="step",
            lw=1.5,
            label=f"{t}: {exact.sum():,} IJG, {(~exact).sum():,} not IJG (nearest)",
        )
    ax.set_yscale("log")
    ax.set_xlabel("estimated IJG quality")
    ax.set_ylabel("files (log)")
    ax.set_title("JPEG quality")
    ax.set_xlim(0, 101)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_bits_per_pixel(df, path: Path) -> Path:
    """Distribution of file size per pixel (bits per pixel, log axis) per tree."""
    plt = _plt()
    j = _jpegs(df)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    bpp_all = 8 * j["file_size"].astype(float) / (j["width"].astype(float) * j["height"].astype(float))
    bpp_all = bpp_all[np.isfinite(bpp_all) & (bpp_all > 0)]
    if len(bpp_all):
        bins = np.logspace(np.log10(bpp_all.min()), np.log10(bpp_all.max() + 1e-9), 60)
        for t in _trees(df):
            g = j[j["tree"] == t]
            b = 8 * g["file_size"].astype(float) / (g["width"].astype(float) * g["height"].astype(float))
            b = b[np.isfinite(b) & (b > 0)]
            if not len(b):
                continue
            ax.hist(b, bins=bins, histtype="step", lw=1.5, density=True, label=f"{t} (median {np.median(b):.2f} bpp)")
    ax.set_xscale("log")
    ax.set_xlabel("file bits per pixel (log)")
    ax.set_ylabel("density")
    ax.set_title("file size per pixel")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_sizes(df, path: Path, crop: bool) -> Path:
    """Width × height heatmap per tree, log counts, with 1:1, 4:3 and 3:2 aspect lines."""
    plt = _plt()
    from matplotlib.colors import LogNorm

    j = _jpegs(df)
    trees = _trees(df)
    w_all, h_all = j["width"].astype(float).to_numpy(), j["height"].astype(float).to_numpy()
    if crop and len(w_all):
        wmax, hmax = np.percentile(w_all, 99), np.percentile(h_all, 99)
        lim = max(wmax, hmax) * 1.05
    else:
        lim = max(w_all.max(initial=1), h_all.max(initial=1)) * 1.02
    fig, axes = plt.subplots(1, len(trees), figsize=(5.2 * len(trees) + 0.8, 5), squeeze=False)
    for ax, t in zip(axes[0], trees):
        g = j[j["tree"] == t]
        w, h = g["width"].astype(float).to_numpy(), g["height"].astype(float).to_numpy()
        if len(w):
            hb = ax.hist2d(
                w, h, bins=120 if crop else 80, range=[[0, lim], [0, lim]], norm=LogNorm(), cmap="viridis", cmin=1
            )
            fig.colorbar(hb[3], ax=ax, label="files (log)")
        for r, name, style in ((1, "1:1", "-"), (4 / 3, "4:3", "--"), (3 / 2, "3:2", ":")):
            for ratio in (r, 1 / r) if r != 1 else (r,):
                ax.plot([0, lim], [0, lim / ratio], color="red", ls=style, lw=0.8, alpha=0.8)
            ax.text(
                lim * 0.97,
                lim / r * 0.97 if lim / r < lim else lim * 0.97,
                name,
                color="red",
                fontsize=8,
                ha="right",
                va="top",
            )
        ax.set_xlim(0, lim)
        ax.set_ylim(0, lim)
        ax.set_xlabel("width (px)")
        ax.set_ylabel("height (px)")
        outside = int(((w > lim) | (h > lim)).sum())
        ax.set_title(f"{t}: {len(w):,} JPEGs" + (f" ({outside:,} beyond view)" if outside else ""), fontsize=10)
    fig.suptitle("image sizes" + (" (up to the 99th percentile)" if crop else " (full range)"))
    fig.tight_layout()
    return _save(fig, path)


def umap_embedding(df, max_points: int = 5000, keep_500: float = 0.1, seed: int = 0):
    """2-D UMAP of (subsampling, width, height, quality) for the JPEG rows.

    Files with a side of exactly 500 px dominate ImageNet; only ``keep_500`` of
    them are kept (as the reference study did).  Files with identical settings
    in the same tree are one point (``count`` holds how many): duplicates carry
    no shape for UMAP and make its neighbor search degenerate.  At most
    ``max_points`` distinct points are embedded.

    Returns:
        (embedding float (n, 2), DataFrame of the n points with a ``count`` column),
        or None when fewer than 5 distinct settings exist (nothing to project).
    """
    import umap

    j = _jpegs(df)
    j = j[j["quality"].notna()]
    rng = np.random.default_rng(seed)
    is500 = ((j["width"] == 500) | (j["height"] == 500)).fillna(False).to_numpy()
    j = j[~is500 | (rng.random(len(j)) < keep_500)]
    key = ["tree", "subsampling", "width", "height", "quality"]
    pts = j.groupby(key, sort=True, observed=True).size().rename("count").reset_index()
    if len(pts) < 5:
        return None
    if len(pts) > max_points:
        pts = pts.iloc[np.sort(rng.choice(len(pts), max_points, replace=False))]
    codes = {c: i for i, c in enumerate(SUBSAMPLING_ORDER)}
    sub = np.array([codes.get(s, len(codes) - 1) for s in pts["subsampling"]])
    onehot = np.eye(len(SUBSAMPLING_ORDER))[sub] * 2.0  # categorical: one-hot, weighted to matter
    num = np.column_stack(
        [np.log(pts["width"].astype(float)), np.log(pts["height"].astype(float)), pts["quality"].astype(float)]
    )
    num = (num - num.mean(0)) / (num.std(0) + 1e-9)
    x = np.column_stack([onehot, num])
    n_neighbors = int(min(15, max(2, len(x) - 1)))
    emb = umap.UMAP(n_neighbors=n_neighbors, min_dist=0.1, random_state=seed, n_jobs=1).fit_transform(x)
    return emb, pts.reset_index(drop=True)


def plot_umap(emb, rows, path: Path, color_by: str) -> Path:
    """UMAP scatter colored by subsampling (categorical) or quality (continuous); marker per tree,
    marker area growing with the number of files that share a setting."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 6.5))
    markers = ["o", "^", "s", "D", "v"]
    trees = list(dict.fromkeys(rows["tree"].astype(str)))
    size = 6 + 10 * np.log10(rows["count"].to_numpy(dtype=float))
    if color_by == "subsampling":
        cmap = plt.get_cmap("tab10")
        for k, c in enumerate(SUBSAMPLING_ORDER):
            for m, t in enumerate(trees):
                sel = ((rows["subsampling"] == c) & (rows["tree"] == t)).to_numpy()
                if sel.any():
                    n = int(rows["count"].to_numpy()[sel].sum())
                    ax.scatter(
                        emb[sel, 0],
                        emb[sel, 1],
                        s=size[sel],
                        color=cmap(k),
                        marker=markers[m % 5],
                        alpha=0.6,
                        label=f"{c}" + (f" · {t}" if len(trees) > 1 else "") + f" ({n:,} files)",
                    )
        ax.legend(fontsize=7, markerscale=1.5, loc="best")
    else:
        for m, t in enumerate(trees):
            sel = (rows["tree"] == t).to_numpy()
            sc = ax.scatter(
                emb[sel, 0],
                emb[sel, 1],
                s=size[sel],
                c=rows["quality"].astype(float).to_numpy()[sel],
                cmap="viridis",
                vmin=0,
                vmax=100,
                marker=markers[m % 5],
                alpha=0.6,
                label=t,
            )
        fig.colorbar(sc, ax=ax, label="estimated IJG quality")
        if len(trees) > 1:
            ax.legend(fontsize=8)
    n_files = int(rows["count"].sum())
    ax.set_title(
        f"UMAP of (subsampling, width, height, quality), colored by {color_by}\n"
        f"{len(rows):,} distinct settings from {n_files:,} files (width/height-500 files: 10% kept)",
        fontsize=10,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)


def all_plots(df, out: Path, umap: bool = True) -> dict[str, Path]:
    """Every survey figure into ``out``; returns name → path."""
    out = Path(out)
    res = {
        "color_gray": plot_color_gray(df, out / "color_gray.png"),
        "subsampling": plot_subsampling(df, out / "subsampling.png"),
        "quality": plot_quality(df, out / "quality.png"),
        "bits_per_pixel": plot_bits_per_pixel(df, out / "bits_per_pixel.png"),
        "sizes": plot_sizes(df, out / "sizes.png", crop=True),
        "sizes_full": plot_sizes(df, out / "sizes_full.png", crop=False),
    }
    got = umap_embedding(df) if umap else None
    if got is not None:
        emb, rows = got
        res["umap_subsampling"] = plot_umap(emb, rows, out / "umap_subsampling.png", "subsampling")
        res["umap_quality"] = plot_umap(emb, rows, out / "umap_quality.png", "quality")
    return res
