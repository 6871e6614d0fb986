"""The HTML report: one self-contained file (figures inlined as SVG, no scripts, no CDN) plus a PNG
of each figure. Each plotted series carries its name as the SVG element id (`series:NAME`), so the
file says what it holds without reading pixels."""

from __future__ import annotations

import html
import io
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from equinox_cli.report.figures import Figure

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; color: #222 }
table { border-collapse: collapse; font-size: 0.85em } td, th { border: 1px solid #ccc; padding: 3px 8px }
td { text-align: right } th { background: #f4f4f4 } figure { margin: 1.5em 0 }
nav a { margin-right: 1em }
"""


def render(figure: Figure) -> tuple[str, bytes]:
    """(SVG text, PNG bytes) of one figure."""
    from matplotlib.figure import Figure as MplFigure  # ~0.3 s: only a report pays for it

    canvas = MplFigure(figsize=(9, 4), layout="constrained")
    axes = canvas.add_subplot()
    for series in figure.series:
        artist: Any
        if series.style == "scatter":
            artist = axes.scatter(series.x, series.y, label=series.name, s=18)
        elif series.style == "front":
            (artist,) = axes.plot(series.x, series.y, "k--", label=series.name, linewidth=1)
        elif series.style == "step":
            (artist,) = axes.step(series.x, series.y, where="post", label=series.name, linewidth=1.2)
        else:
            (artist,) = axes.plot(
                series.x,
                series.y,
                label=series.name,
                linewidth=1.2,
                marker="." if len(series.x) < 30 else None,
            )
        artist.set_gid(f"series:{series.name}")
    axes.set_title(figure.title, fontsize=11)
    axes.set_xlabel(figure.x_label)
    axes.set_ylabel(figure.y_label)
    if figure.log_x:
        axes.set_xscale("log")
    axes.grid(alpha=0.3)
    if figure.series:
        axes.legend(fontsize=8, ncols=min(4, len(figure.series)))
    svg, png = io.StringIO(), io.BytesIO()
    canvas.savefig(svg, format="svg")
    canvas.savefig(png, format="png", dpi=100)
    text = svg.getvalue()
    return text[text.index("<svg") :], png.getvalue()


def write_html(
    out: Path,
    title: str,
    tables: Sequence[tuple[str, pd.DataFrame]],
    figures: Sequence[Figure],
    notes: Sequence[str] = (),
) -> Path:
    """OUT (the .html) and OUT's sibling folder `figures/` with PNGs, both replaced atomically."""
    png_dir = out.parent / "figures"
    staging = Path(tempfile.mkdtemp(prefix=".report.", dir=out.parent))
    try:
        (staging / "figures").mkdir()
        parts = [f"<h1>{html.escape(title)}</h1>"]
        parts += [f"<p>{html.escape(n)}</p>" for n in notes]
        parts.append(
            "<nav>" + "".join(f'<a href="#{f.slug}">{html.escape(f.title)}</a>' for f in figures) + "</nav>"
        )
        for caption, table in tables:
            parts.append(
                f"<h2>{html.escape(caption)}</h2>"
                + table.to_html(index=False, na_rep="–", float_format=_number)
            )
        for figure in figures:
            svg, png = render(figure)
            (staging / "figures" / f"{figure.slug}.png").write_bytes(png)
            parts.append(f'<figure id="{figure.slug}">{svg}</figure>')
        head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>"
        page = f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>\n"
        (staging / out.name).write_text(page, encoding="utf-8")
        if png_dir.exists():
            shutil.rmtree(png_dir)
        (staging / "figures").replace(png_dir)
        (staging / out.name).replace(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _number(value: float) -> str:
    return f"{value:.4g}"
