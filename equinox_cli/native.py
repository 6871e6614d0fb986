"""The simulator's step loop compiled to C with mypyc at install time (setup.py), never stale.

`pip install` compiles MODULES (same source, same numbers, ~2× faster: the loop of `equinox replay`)
when it can and installs plain Python when it cannot (no C compiler: the extensions are optional).
An editable install leaves the compiled modules beside their sources, and Python loads a compiled
module before its `.py`, so an edited source would be shadowed by the old build. `use_current()`
(run when `equinox_cli` is imported) therefore compares the SHA-256 of the sources, stamped into
the build, with the sources on disk, and on any difference (or `EQUINOX_PURE_PYTHON=1`) loads
every module of the group from its source: all or none, because compiled modules call each other
directly. This file must stay importable on its own: setup.py reads MODULES from it.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# the modules compiled together (paths relative to the repository root): the step loop and the
# policies it calls every step. Compiled classes cannot be subclassed by plain Python ones: wrap
# a policy (see tests/engines/test_sim_admission.py) instead of subclassing it
MODULES = (
    "equinox_cli/engines/sim/admission/__init__.py",
    "equinox_cli/engines/sim/admission/base.py",
    "equinox_cli/engines/sim/admission/reserve_max.py",
    "equinox_cli/engines/sim/admission/slora.py",
    "equinox_cli/engines/sim/admission/vllm.py",
    "equinox_cli/engines/sim/batch.py",
    "equinox_cli/engines/sim/engine.py",
    "equinox_cli/engines/sim/kv.py",
    "equinox_cli/engines/sim/profiles.py",
    "equinox_cli/engines/sim/records.py",
    "equinox_cli/policies/counter_base.py",
    "equinox_cli/policies/equinox.py",
    "equinox_cli/policies/fcfs.py",
    "equinox_cli/policies/gpu_time.py",
    "equinox_cli/policies/queues.py",
    "equinox_cli/policies/vtc.py",
)
STAMP = "equinox_cli/_native_stamp.py"  # written by setup.py, compiled with the group
GROUP = "equinox_cli.native_group"  # mypyc's shared library: equinox_cli/native_group__mypyc*.so


def sources_sha256(root: Path) -> str:
    """SHA-256 over the group's sources under `root` (the directory holding equinox_cli/)."""
    digest = hashlib.sha256()
    for rel in MODULES:
        digest.update(rel.encode())
        digest.update((root / rel).read_bytes())
    return digest.hexdigest()


def _module_name(rel: str) -> str:
    return rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _is_compiled(name: str) -> bool:
    spec = importlib.util.find_spec(name)
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return spec is not None and spec.origin is not None and spec.origin.endswith(suffixes)


def compiled_is_current(root: Path) -> bool:
    """The compiled group exists and was built from the sources now on disk."""
    stamp = _module_name(STAMP)
    if os.environ.get("EQUINOX_PURE_PYTHON") or not _is_compiled(stamp):
        return False
    built = getattr(importlib.import_module(stamp), "SOURCES_SHA256", None)
    return built == sources_sha256(root)


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds the group's modules as their `.py` files, ahead of any compiled module."""

    def __init__(self, root: Path) -> None:
        self.paths = {_module_name(rel): root / rel for rel in MODULES}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.paths.get(fullname)
        if source is None:
            return None
        package = source.name == "__init__.py"
        locations = [str(source.parent)] if package else None
        return importlib.util.spec_from_file_location(fullname, source, submodule_search_locations=locations)


def use_current() -> bool:
    """Load the compiled group only if it is current, else every module from source; True if
    compiled code runs. Called once, from equinox_cli/__init__.py."""
    root = Path(__file__).resolve().parent.parent
    if compiled_is_current(root):
        return True
    if not any(isinstance(finder, _FromSource) for finder in sys.meta_path):
        sys.meta_path.insert(0, _FromSource(root))
    return False
