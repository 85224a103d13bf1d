"""Plots and reports of an evaluation: ``curves.png``, ``report.md``, ``report.html``."""

from __future__ import annotations

import html
import io
from pathlib import Path

from dnnjpeg._io import atomic_write_bytes, atomic_write_text

__all__ = ["plot_curves", "markdown_report", "html_report"]


def plot_curves(result: dict, path: Path) -> Path:
    """Accuracy and KL against bits per pixel, one line per curve, pristine as a horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = result["settings"]["accuracy_metric"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    for c in result["curves"]:
        pts = c["points"]
        x = [p["bpp"] for p in pts]
        chosen = c.get("kind") == "selected"  # per-image choices: dashed, their λ labels only in the tables
        style = {"marker": "o", "ms": 3 if chosen else 4, "ls": "--" if chosen else "-", "label": c["name"]}
        ax.plot(x, [p[metric] for p in pts], **style)
        ax2.plot(x, [p["kl"] for p in pts], **style)
        for p in [] if chosen else pts[:: max(1, len(pts) // 6)]:
            ax.annotate(
                p["label"], (p["bpp"], p[metric]), fontsize=7, alpha=0.6, xytext=(3, -9), textcoords="offset points"
            )
    pr = result["pristine"][metric]
    ax.axhline(pr, color="k", ls="--", lw=1, label=f"pristine {pr:.1f}%")
    ax.axhline(pr - 1, color="gray", ls=":", lw=1, label="pristine − 1 point")
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (real files, log scale)")
    ax.set_ylabel(f"{metric} (%)")
    s = result["settings"]
    ax.set_title(f"{s['model']} · JPEG at {s['at']} · {s['n_images']} images ({s['split']} split)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("bits per pixel (log scale)")
    ax2.set_ylabel("mean KL(pristine ‖ compressed) (nats, log)")
    ax2.set_title("output distortion", fontsize=10)
    ax2.grid(True, which="both", alpha=0.3)
    from matplotlib.ticker import FormatStrFormatter

    for a in (ax, ax2):  # plain numbers on the log axis, not 4×10⁻¹
        a.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        a.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
        a.tick_params(axis="x", which="minor", labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _f(x, fmt="{:.2f}") -> str:
    return "n/a" if x is None or x != x else fmt.format(x)


def _ci(ci, fmt="{:.1f}") -> str:
    lo, hi = ci
    return "n/a" if lo is None or lo != lo else f"[{fmt.format(lo)}, {fmt.format(hi)}]"


def _tables(result: dict) -> tuple[list[str], list[list[list[str]]], list[str], list[list[str]]]:
    curve_headers = ["setting", "bpp", "mean image bpp", "ratio vs BMP", "top-1 %", "top-5 %", "agree %", "KL"]
    curve_rows = []
    for c in result["curves"]:
        rows = []
        for p in c["points"]:
            rows.append(
                [
                    p["label"],
                    _f(p["bpp"], "{:.3f}"),
                    _f(p["mean_image_bpp"], "{:.3f}"),
                    _f(p["compression_ratio"], "{:.1f}"),
                    _f(p["top1"], "{:.1f}"),
                    _f(p["top5"], "{:.1f}"),
                    _f(p["agreement"], "{:.1f}"),
                    _f(p["kl"], "{:.4f}"),
                ]
            )
        curve_rows.append(rows)
    cmp_headers = [
        "test vs reference",
        "BD-rate % [95% CI]",
        "BD-rate on KL % [CI]",
        "Δacc at equal rate (pts) [CI]",
        "bpp at target (ref → test)",
        "bpp ratio [CI]",
    ]
    cmp_rows = []
    for k in result["comparisons"]:
        cmp_rows.append(
            [
                f"{k['test']} vs {k['reference']}",
                f"{_f(k['bd_rate'], '{:+.1f}')} {_ci(k['bd_rate_ci'], '{:+.1f}')}"
                + (
                    f" ({100 * k['nan_fraction']['bd_rate']:.0f}% of resamples undefined)"
                    if k["nan_fraction"].get("bd_rate", 0) > 0.01
                    else ""
                ),
                f"{_f(k.get('bd_rate_kl'), '{:+.1f}')} {_ci(k.get('bd_rate_kl_ci', (None, None)), '{:+.1f}')}",
                f"{_f(k['bd_accuracy'], '{:+.2f}')} {_ci(k['bd_accuracy_ci'], '{:+.2f}')}",
                f"{_f(k['ref_bpp_at_target'], '{:.3f}')} → {_f(k['test_bpp_at_target'], '{:.3f}')} (target "
                f"{k['target_accuracy']:.1f}%)",
                f"{_f(k['bpp_ratio'], '{:.3f}')} {_ci(k['bpp_ratio_ci'], '{:.3f}')}",
            ]
        )
    return curve_headers, curve_rows, cmp_headers, cmp_rows


def _settings_lines(result: dict) -> list[tuple[str, str]]:
    s = result["settings"]
    p = result["pristine"]
    return [
        (
            "data",
            f"{s['data']} ({s['layout']}, split {s['split']}, {s['n_images']} images, {len(result['failures'])} "
            "unreadable)",
        ),
        ("model", s["model"]),
        (
            "JPEG at",
            f"{s['at']} "
            f"({'model-input crop encoded' if s['at'] == 'input' else 'stored image encoded, then preprocessed'})",
        ),
        (
            "accuracy axis",
            f"{s['accuracy_metric']} "
            f"({'ground-truth labels' if s['labeled'] else 'agreement with the pristine top-1: unlabeled data'})",
        ),
        ("pristine", f"top-1 {p['top1']:.1f}%, top-5 {p['top5']:.1f}%"),
        ("bootstrap", f"{s['n_boot']} paired resamples of the images, seed {s['seed']}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in result["versions"].items())),
    ] + [("note", n) for n in result.get("notes", [])]


def markdown_report(result: dict, path: Path) -> Path:
    """Write the report as Markdown."""
    ch, crows, kh, krows = _tables(result)
    out = ["# dnnjpeg evaluation", ""]
    out += [f"- **{k}**: {v}" for k, v in _settings_lines(result)]
    out += ["", "![curves](curves.png)", ""]
    if krows:
        out += ["## Comparisons", "", "| " + " | ".join(kh) + " |", "|" + "---|" * len(kh)]
        out += ["| " + " | ".join(r) + " |" for r in krows]
        out += [
            "",
            "bpp = total bits / total pixels of what was encoded; mean image bpp = the mean of per-image rates. "
            "Negative BD-rate: fewer bits for the same accuracy. BD-rate on KL: the same with −ln(mean KL to the "
            "pristine output) as the quality axis, which every image moves, so its interval is narrower. "
            "Target = pristine − "
            f"{result['settings']['target_drop']:g} point(s). Curves are made monotone first (isotonic fit).",
            "",
        ]
    for c, rows in zip(result["curves"], crows):
        out += [f"## {c['name']}", "", "| " + " | ".join(ch) + " |", "|" + "---|" * len(ch)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        out.append("")
    if result["failures"]:
        out += ["## Unreadable images (skipped)", ""] + [f"- `{p}`: {m}" for p, m in result["failures"]] + [""]
    return atomic_write_text(path, "\n".join(out))


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}
th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%}code{font-size:12px}"""


def _html_table(headers, rows) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def html_report(result: dict, path: Path) -> Path:
    """Write the report as a self-contained HTML page (the plot is linked beside it)."""
    ch, crows, kh, krows = _tables(result)
    parts = [
        f"<!doctype html><meta charset=utf-8><title>dnnjpeg evaluation</title><style>{_CSS}</style>",
        "<h1>dnnjpeg evaluation</h1><ul>",
    ]
    parts += [f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in _settings_lines(result)]
    parts.append("</ul><img src='curves.png' alt='accuracy and KL against bits per pixel'>")
    if krows:
        parts += [
            "<h2>Comparisons</h2>",
            _html_table(kh, krows),
            "<p>Negative BD-rate: fewer bits for the same accuracy. Intervals: paired bootstrap over images.</p>",
        ]
    for c, rows in zip(result["curves"], crows):
        parts += [f"<h2>{html.escape(c['name'])}</h2>", _html_table(ch, rows)]
    if result["failures"]:
        parts.append("<h2>Unreadable images (skipped)</h2><ul>")
        parts += [f"<li><code>{html.escape(p)}</code>: {html.escape(m)}</li>" for p, m in result["failures"]]
        parts.append("</ul>")
    return atomic_write_text(path, "\n".join(parts))
