"""Compiles the simulator's step loop with mypyc when it can (equinox_cli/native.py says what and
why); everything else is in pyproject.toml. Without mypyc or a C compiler the package installs as
plain Python, and `EQUINOX_PURE_PYTHON=1 pip install ...` skips the compilation."""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent


def native_extensions() -> list[Extension]:
    if os.environ.get("EQUINOX_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    native = runpy.run_path(str(ROOT / "equinox_cli" / "native.py"))
    stamp = f'"""Written by setup.py."""\n\nSOURCES_SHA256 = "{native["sources_sha256"](ROOT)}"\n'
    (ROOT / native["STAMP"]).write_text(stamp)
    try:
        extensions = mypycify(
            [*native["MODULES"], native["STAMP"]],
            opt_level="3",
            group_name=native["GROUP"],
        )
    except BaseException as exc:  # mypyc reports type errors with SystemExit
        print(f"equinox: not compiling the simulator ({exc!r}); installing plain Python", file=sys.stderr)
        return []
    for extension in extensions:
        extension.optional = True  # no C compiler: plain Python
    return extensions


setup(ext_modules=native_extensions())
