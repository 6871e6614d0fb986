"""`equinox report DIR`: one self-contained HTML file and a PNG per figure, for a replay report
folder or a sweep folder."""

from __future__ import annotations

from pathlib import Path

from equinox_cli.report.build import build_report


def report(folder: Path, out: Path | None = None) -> Path:
    """Write DIR/report.html (or `out`) and DIR/figures/*.png; return the HTML's path."""
    return build_report(folder, out)
