"""Plots and reports of an evaluation: ``curves.png``, ``report.md``, ``report.html``."""

from __future__ import annotations

import html
import io
from pathlib import Path

from dnnjpeg._io import atomic_write_bytes, atomic_write_text

__all__ = ["plot_curves", "markdown_report", "html_report"]


#: Below this many images accuracy moves in steps too coarse to rank codecs: the figure leads
#: with the network's output distortion (KL), which every image moves, and bits saved at equal KL.
FEW_IMAGES = 100


def wilson_interval(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (in %) of a proportion of ``k`` successes in ``n`` trials."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / den
    return 100 * (mid - half), 100 * (mid + half)


def plot_curves(result, path: Path) -> Path:
    """The rate/accuracy figure: accuracy, mean KL to the pristine output, and bits saved at equal
    KL against the reference curve (95% intervals), each against bits per pixel.

    With fewer than :data:`FEW_IMAGES` images the KL panels come first and the accuracy panel shows
    the reference curve's 95% interval; only the reference curve's points are labelled.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = result["settings"]["accuracy_metric"]
    s = result["settings"]
    n = int(s.get("n_images") or 0)
    few = n < FEW_IMAGES
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [1.15, 1.15, 0.8]})
    ax_acc, ax_kl, ax_save = (axes[2], axes[0], axes[1]) if few else (axes[0], axes[1], axes[2])
    ref = s.get("reference")
    for c in result["curves"]:
        pts = c["points"]
        x = [p["bpp"] for p in pts]
        chosen = c.get("kind") == "selected"  # per-image choices: dashed, their λ labels only in the tables
        style = {"marker": "o", "ms": 3 if chosen else 4, "ls": "--" if chosen else "-", "label": c["name"]}
        (line,) = ax_acc.plot(x, [p[metric] for p in pts], **style)
        ax_kl.plot(x, [p["kl"] for p in pts], **style)
        if c["name"] == ref:
            for p in pts[:: max(1, len(pts) // 6)]:  # a few quality labels on the reference only: readable
                ax_kl.annotate(p["label"], (p["bpp"], p["kl"]), fontsize=7, alpha=0.7, xytext=(4, 4),
                               textcoords="offset points", color=line.get_color())  # fmt: skip
            if few and n:
                lo_hi = [wilson_interval(p[metric] * n / 100, n) for p in pts]
                ax_acc.fill_between(x, [a for a, _ in lo_hi], [b for _, b in lo_hi], color=line.get_color(),
                                    alpha=0.12, label=f"{c['name']}: 95% interval")  # fmt: skip
    pr = result["pristine"][metric]
    _plot_stored(ax_acc, ax_kl, result["pristine"].get("stored_bpp"), pr)
    ax_acc.axhline(pr, color="k", ls="--", lw=1, label=f"pristine {pr:.1f}%")
    ax_acc.axhline(pr - 1, color="gray", ls=":", lw=1, label="pristine − 1 point")
    ax_acc.set_xlabel("bits per pixel (real files, log scale)")
    ax_acc.set_ylabel(f"{metric} (%)")
    acc_title = f"{metric} · {n} images"
    if few and n:
        lo, hi = wilson_interval(n / 2, n)
        acc_title += f": ±{(hi - lo) / 2:.0f} points (95%)"
    ax_acc.set_title(acc_title, fontsize=10)
    ax_acc.legend(fontsize=7, loc="lower right")
    ax_kl.set_yscale("log")
    ax_kl.set_xlabel("bits per pixel (real files, log scale)")
    ax_kl.set_ylabel("mean KL(pristine ‖ compressed) (nats, log)")
    ax_kl.set_title(f"{s['model']} · JPEG at {s['at']} · {n} images ({s['split']} split): output distortion",
                    fontsize=10)  # fmt: skip
    if few:
        ax_kl.legend(fontsize=7, loc="upper right")
    _log_rate_axes(ax_acc, ax_kl)
    _plot_savings(ax_save, result)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _plot_stored(ax_acc, ax_kl, stored: float | None, accuracy: float) -> None:
    """The files as they are: the point every curve leaves from (a star; on the KL panel, where KL is
    0 and a log axis has no place for it, a vertical line at their bits per pixel)."""
    if stored:
        ax_acc.plot(
            [stored], [accuracy], marker="*", ms=13, color="k", ls="", label=f"files as stored ({stored:.2f} bpp)"
        )
        ax_kl.axvline(stored, color="k", ls=":", lw=1, label=f"files as stored ({stored:.2f} bpp, KL 0)")


def _log_rate_axes(*axes) -> None:
    """Bits per pixel on a log axis labelled with plain numbers (not 4×10⁻¹), a light grid."""
    from matplotlib.ticker import FormatStrFormatter

    for a in axes:
        a.set_xscale("log")
        a.grid(True, which="both", alpha=0.3)
        a.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        a.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
        a.tick_params(axis="x", which="minor", labelsize=7)


def _plot_savings(ax, result) -> None:
    """BD-rate on KL per curve against the reference, with 95% intervals: the same numbers, with the
    same sign, as the report's table (negative: fewer bits at equal KL). Names are wrapped, never cut."""
    import textwrap

    rows = [k for k in result["comparisons"] if k.get("bd_rate_kl") is not None and k["bd_rate_kl"] == k["bd_rate_kl"]]
    ref = result["settings"].get("reference")
    if not rows:
        ax.text(0.5, 0.5, "no comparison: the curves do not overlap", ha="center", va="center", fontsize=9)
        ax.set_axis_off()
        return
    names = [textwrap.fill(k["test"], 26, break_on_hyphens=False) for k in rows]
    bd = [k["bd_rate_kl"] for k in rows]
    ci = [k.get("bd_rate_kl_ci") or (None, None) for k in rows]
    lo = [c[0] if c[0] is not None and c[0] == c[0] else v for c, v in zip(ci, bd)]
    hi = [c[1] if c[1] is not None and c[1] == c[1] else v for c, v in zip(ci, bd)]
    err = [[max(0.0, v - a) for v, a in zip(bd, lo)], [max(0.0, b - v) for v, b in zip(bd, hi)]]
    y = list(range(len(rows)))
    colors = ["tab:green" if v < 0 else "tab:red" for v in bd]
    ax.barh(y, bd, height=0.6, xerr=err, color=colors, alpha=0.7, capsize=3)
    ax.set_xlim(min(0.0, *lo) - 8, max(0.0, *hi) + 8)
    ax.set_yticks(y, names, fontsize=7)
    ax.set_ylim(len(rows) - 0.4, -0.6)  # first comparison on top; one bar stays a bar, not a block
    ax.axvline(0, color="k", lw=1)
    for yi, v in zip(y, bd):
        ax.annotate(f"{v:+.0f}%", (v, yi), fontsize=8, xytext=(4 if v >= 0 else -4, -10),
                    textcoords="offset points", ha="left" if v >= 0 else "right")  # fmt: skip
    ax.set_xlabel(f"BD-rate on KL vs {ref} (%, 95% interval; negative = fewer bits)")
    ax.set_title("bits at equal output distortion (as in the table)", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)


def fmt_value(x, fmt="{:.2f}", why: str = "not measured") -> str:
    """A number, or the reason there is none (never a bare n/a or nan)."""
    return f"— ({why})" if x is None or x != x else fmt.format(x)


def fmt_ci(ci, fmt="{:.1f}", why: str = "fewer than 10 resamples defined") -> str:
    lo, hi = ci
    return f"(no interval: {why})" if lo is None or lo != lo else f"[{fmt.format(lo)}, {fmt.format(hi)}]"


NO_OVERLAP = "the two curves share too little accuracy range"


def _at_target(k: dict) -> str:
    """Bits per pixel each curve needs for the target accuracy, or which curve never reaches it."""
    r, t = k["ref_bpp_at_target"], k["test_bpp_at_target"]
    target = f"target {k['target_accuracy']:.1f}%"
    gone_r, gone_t = r is None or r != r, t is None or t != t  # (results.json stores NaN as null)
    if gone_r and gone_t:
        return f"neither curve reaches the {target}"
    if gone_r or gone_t:
        return f"{fmt_value(r, '{:.3f}', 'never reaches it')} → {fmt_value(t, '{:.3f}', 'never reaches it')} ({target})"
    return f"{r:.3f} → {t:.3f} ({target})"


def _tables(result: dict) -> tuple[list[str], list[list[list[str]]], list[str], list[list[str]]]:
    curve_headers = ["setting", "bpp", "mean image bpp", "ratio vs BMP", "top-1 %", "top-5 %", "agree %", "KL"]
    curve_rows = []
    for c in result["curves"]:
        rows = []
        for p in c["points"]:
            rows.append(
                [
                    p["label"],
                    fmt_value(p["bpp"], "{:.3f}"),
                    fmt_value(p["mean_image_bpp"], "{:.3f}"),
                    fmt_value(p["compression_ratio"], "{:.1f}"),
                    fmt_value(p["top1"], "{:.1f}"),
                    fmt_value(p["top5"], "{:.1f}"),
                    fmt_value(p["agreement"], "{:.1f}"),
                    fmt_value(p["kl"], "{:.4f}"),
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
                f"{fmt_value(k['bd_rate'], '{:+.1f}', NO_OVERLAP)} {fmt_ci(k['bd_rate_ci'], '{:+.1f}')}"
                + (
                    f" ({100 * k['nan_fraction']['bd_rate']:.0f}% of resamples undefined)"
                    if k["nan_fraction"].get("bd_rate", 0) > 0.01
                    else ""
                ),
                f"{fmt_value(k.get('bd_rate_kl'), '{:+.1f}', NO_OVERLAP)} "
                f"{fmt_ci(k.get('bd_rate_kl_ci', (None, None)), '{:+.1f}')}",
                f"{fmt_value(k['bd_accuracy'], '{:+.2f}', 'the curves share too little rate range')} "
                f"{fmt_ci(k['bd_accuracy_ci'], '{:+.2f}')}",
                _at_target(k),
                f"{fmt_value(k['bpp_ratio'], '{:.3f}', 'no rate at the target')} "
                + (
                    fmt_ci(k["bpp_ratio_ci"], "{:.3f}")
                    if k["bpp_ratio"] is not None and k["bpp_ratio"] == k["bpp_ratio"]
                    else ""
                ),
            ]
        )
    return curve_headers, curve_rows, cmp_headers, cmp_rows


def _settings_lines(result: dict) -> list[tuple[str, str]]:
    s = result["settings"]
    p = result["pristine"]
    return (
        [
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
        ]
        + (
            [
                (
                    "files as stored",
                    f"{p['stored_bpp']:.3f} bpp, {s['accuracy_metric']} {p[s['accuracy_metric']]:.1f}% "
                    "(the point on the curves where the data is now)",
                )
            ]
            if p.get("stored_bpp")
            else []
        )
        + [
            ("bootstrap", f"{s['n_boot']} paired resamples of the images, seed {s['seed']}"),
            ("versions", ", ".join(f"{k} {v}" for k, v in result["versions"].items())),
        ]
        + _precision_lines(s)
        + [("note", n) for n in result.get("notes", [])]
    )


def _precision_lines(s: dict) -> list[tuple[str, str]]:
    n = int(s.get("n_images") or 0)
    if not n or n >= FEW_IMAGES:
        return []
    lo, hi = wilson_interval(n / 2, n)
    return [
        (
            "how sure",
            f"with {n} images one point's {s['accuracy_metric']} is known to ±{(hi - lo) / 2:.0f} points (95% "
            "Wilson interval at 50%): compare codecs by KL and by bits saved at equal KL, which every image moves",
        )
    ]


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
