"""What every verb that writes a folder shares: its default place, the --out check, versions."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from pathlib import Path

from equinox_cli import __version__
from equinox_cli.core.errors import UserInputError


def versions(*extra: str) -> dict[str, str]:
    found = {"equinox-cli": __version__, "python": platform.python_version()}
    for package in ("numpy", "pandas", "pyarrow", *extra):
        found[package] = version_of(package)
    return found


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def default_run_dir(root: Path, workload: str, seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / f"{stamp}-{workload}-seed{seed}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = Path(f"{base}-{n}")
    return candidate


def check_out(out: Path | None) -> None:
    if out is not None and out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: --out exists and is not a folder")
    if out is not None and out.exists() and any(out.iterdir()):
        raise UserInputError(f"{out}: --out folder exists and is not empty")
