"""Atomic output folders: a command's output appears complete or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from equinox_cli.core.errors import UserInputError


@contextmanager
def atomic_folder(out_dir: Path) -> Iterator[Path]:
    """Yield a hidden temporary sibling to fill; it becomes `out_dir` only if the block succeeds."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserInputError(f"{out_dir}: --out folder exists and is not empty")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield tmp
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
