"""The survey's HTML page: summary table, every figure, and the odd files by path."""

from __future__ import annotations

import html
from pathlib import Path

from dnnjpeg._io import atomic_write_text

__all__ = ["html_report"]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3;text-align:left}td{text-align:right}td:first-child{text-align:left}
img{max-width:100%;display:block;margin:1em 0}code{font-size:12px}details{margin:.4em 0}"""

_FIGS = [
    ("color_gray", "Color vs grayscale"),
    ("subsampling", "Chroma subsampling"),
    ("quality", "Estimated IJG quality"),
    ("bits_per_pixel", "File size per pixel"),
    ("sizes", "Image sizes (cropped view)"),
    ("sizes_full", "Image sizes (full range)"),
    ("umap_subsampling", "UMAP, colored by subsampling"),
    ("umap_quality", "UMAP, colored by quality"),
]


def _top(d: dict, k: int = 6) -> str:
    items = sorted(d.items(), key=lambda kv: -kv[1])[:k]
    return ", ".join(f"{a}: {b:,}" for a, b in items) or "—"


def html_report(df, summary: dict, figures: dict, path: Path, max_listed: int = 200) -> Path:
    """Write report.html beside the figures (linked by file name)."""
    from dnnjpeg.survey.summary import odd_files

    trees = list(summary["trees"])  # one column each
    rows = [
        ("files", lambda s: f"{s['n_files']:,}"),
        ("readable JPEGs", lambda s: f"{s['n_jpeg']:,}"),
        ("formats", lambda s: _top(s["formats"])),
        ("errors", lambda s: _top(s["errors"])),
        ("subsampling", lambda s: _top(s["subsampling"])),
        ("grayscale", lambda s: f"{s['grayscale']:,}"),
        ("color transform", lambda s: _top(s["color"])),
        ("coding", lambda s: _top(s["mode"])),
        ("most common quality", lambda s: str(s["quality_most_common"])),
        ("not IJG tables", lambda s: f"{s['quality_not_ijg']:,}"),
        ("median size", lambda s: f"{s['width'].get('p50', 0):.0f} × {s['height'].get('p50', 0):.0f}"),
        ("median bits/pixel", lambda s: f"{s['bits_per_pixel'].get('p50', float('nan')):.2f}"),
        ("EXIF-rotated (5–8)", lambda s: f"{s['exif_orientation_rotated']:,}"),
    ]
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(t)}</th>" for t in trees) + "</tr>"
    body = "".join(
        "<tr><td>"
        + html.escape(name)
        + "</td>"
        + "".join(f"<td>{html.escape(fn(summary['trees'][t]))}</td>" for t in trees)
        + "</tr>"
        for name, fn in rows
    )
    parts = [
        f"<!doctype html><meta charset=utf-8><title>dnnjpeg survey</title><style>{_CSS}</style>",
        f"<h1>dnnjpeg survey</h1><p>{summary['n_files']:,} files in {len(trees)} tree(s). Headers only: no image "
        "was decoded.</p>",
        f"<table>{head}{body}</table>",
    ]
    for key, title in _FIGS:
        if key in figures:
            parts.append(
                f"<h2>{html.escape(title)}</h2><img src='{html.escape(Path(figures[key]).name)}' "
                f"alt='{html.escape(title)}'>"
            )
    if "umap_subsampling" not in figures:
        parts.append(
            "<p><i>UMAP not drawn: turned off (--no-umap), or fewer than 5 distinct "
            "(subsampling, width, height, quality) settings to project.</i></p>"
        )
    parts.append("<h2>Odd files</h2>")
    for t in trees:
        parts.append(f"<h3>{html.escape(t)}</h3>")
        parts += [
            _odd_list(reason, paths, max_listed) for reason, paths in odd_files(df[df["tree"] == t]).items() if paths
        ]
    return atomic_write_text(path, "\n".join(parts))


def _odd_list(reason: str, paths: list[str], max_listed: int) -> str:
    """A collapsed list of the files odd for one reason (the first ``max_listed``)."""
    shown = "".join(f"<li><code>{html.escape(p)}</code></li>" for p in paths[:max_listed])
    more = f"<li>… and {len(paths) - max_listed:,} more (see survey.parquet)</li>" if len(paths) > max_listed else ""
    return f"<details><summary>{html.escape(reason)}: {len(paths):,}</summary><ul>{shown}{more}</ul></details>"
