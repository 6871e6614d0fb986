"""Consoles and small helpers shared by the command modules."""

from __future__ import annotations

import math

from rich.console import Console

out_console = Console()
err_console = Console(stderr=True)


def warn(warnings: list[str]) -> None:
    for line in warnings:
        err_console.print(f"[yellow]warning:[/] {line}", highlight=False)


def clean(value: object) -> object:
    """NaN → None, for JSON output."""
    return None if isinstance(value, float) and math.isnan(value) else value
