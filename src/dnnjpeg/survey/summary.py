"""What a survey's table says, per tree: counts, distributions and the files worth a look."""

from __future__ import annotations

import numpy as np

__all__ = ["summarize", "odd_files", "EXTREME_ASPECT", "TINY_SIDE"]


EXTREME_ASPECT = 4.0  # width/height or height/width at or above this is "extreme"
TINY_SIDE = 64  # images with a side below this many pixels are "tiny"


def odd_files(df) -> dict[str, list[str]]:
    """Paths worth a look, by reason: non-JPEG, corrupt/unreadable, CMYK/YCCK, 4:1:1,
    quality < 10, extreme aspect ratios, tiny images, huge (decompression bombs), truncated
    (no EOI), 12-bit or arithmetic-coded, names that are not valid UTF-8."""
    from dnnjpeg.codec import MAX_PIXELS

    ok = df["ok"].fillna(False).astype(bool)
    j = df[ok]
    w, h = j["width"].astype("float64"), j["height"].astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.maximum(w / h, h / w).where((w > 0) & (h > 0))  # a zero side has no aspect ratio
    return {
        "name not valid UTF-8": df.loc[[not _utf8(b) for b in df["path_bytes"]], "path"].tolist(),
        "not JPEG": df.loc[df["error"] == "NotAJpegError", "path"].tolist(),
        "unreadable or corrupt": df.loc[~ok & (df["error"] != "NotAJpegError"), "path"].tolist(),
        "CMYK / YCCK": j.loc[j["color"].isin(["CMYK", "YCCK"]), "path"].tolist(),
        "4:1:1": j.loc[j["subsampling"] == "4:1:1", "path"].tolist(),
        "quality < 10": j.loc[j["quality"].fillna(100) < 10, "path"].tolist(),
        f"extreme aspect (≥ {EXTREME_ASPECT:g}:1)": j.loc[(aspect >= EXTREME_ASPECT).fillna(False), "path"].tolist(),
        "zero width or height (a height left to a DNL marker, or damage)": j.loc[
            ((w == 0) | (h == 0)).fillna(False), "path"
        ].tolist(),
        f"tiny (a side < {TINY_SIDE} px)": j.loc[((w < TINY_SIDE) | (h < TINY_SIDE)).fillna(False), "path"].tolist(),
        f"huge (over {MAX_PIXELS / 1e6:.0f} megapixels: decoders refuse it)": j.loc[
            (w * h > MAX_PIXELS).fillna(False), "path"
        ].tolist(),
        "truncated (no end-of-image marker)": j.loc[j["eoi_found"].fillna(True) == False, "path"].tolist(),  # noqa: E712
        "12-bit or arithmetic-coded": j.loc[(j["precision"] != 8) | j["arithmetic"].fillna(False), "path"].tolist(),
    }


def _utf8(b) -> bool:
    try:
        bytes(b).decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _counts(s) -> dict:
    return {str(k): int(v) for k, v in s.value_counts(dropna=False).items()}


def summarize(df) -> dict:
    """Counts and distributions per tree (JSON-ready): formats, errors, subsampling,
    grayscale, color, coding, quality histogram, size and bytes-per-pixel percentiles, odd-file counts."""
    out = {"n_files": int(len(df)), "trees": {}}
    for tree, g in df.groupby("tree", sort=False):
        ok = g["ok"].fillna(False).astype(bool)
        j = g[ok]
        q = j["quality"]
        exact = j["quality_exact"].fillna(False).astype(bool)
        px = j["width"].astype("float64") * j["height"].astype("float64")
        bpp = (8 * j["file_size"].astype("float64") / px).where(px > 0).dropna()  # a zero side has no bpp
        pct = lambda s: {f"p{p}": float(np.nanpercentile(s, p)) for p in (1, 10, 50, 90, 99)} if len(s) else {}  # noqa: E731
        out["trees"][str(tree)] = {
            "n_files": int(len(g)),
            "n_jpeg": int(ok.sum()),
            "formats": _counts(g["format"].fillna("unreadable")),
            "errors": _counts(g.loc[~ok, "error"]),
            "subsampling": _counts(j["subsampling"]),
            "grayscale": int(j["grayscale"].fillna(False).sum()),
            "color": _counts(j["color"]),
            "mode": _counts(j["mode"]),
            "progressive": int(j["progressive"].fillna(False).sum()),
            "quality_exact": {str(int(k)): int(v) for k, v in q[exact].value_counts().sort_index().items()},
            "quality_not_ijg": int((~exact).sum()),
            "quality_most_common": int(q[exact].mode().iloc[0]) if exact.any() else None,
            "width": pct(j["width"].astype("float64")),
            "height": pct(j["height"].astype("float64")),
            "bits_per_pixel": pct(bpp),
            "exif_orientation_rotated": int(j["orientation"].fillna(1).isin([5, 6, 7, 8]).sum()),
            "odd_counts": {k: len(v) for k, v in odd_files(g).items()},
        }
    return out
