"""The compiled step loop (equinox_cli/native.py): used only when built from the sources on disk,
and it gives the same numbers as the plain Python it was compiled from."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import equinox_cli
from equinox_cli import native

PACKAGE = Path(equinox_cli.__file__).resolve().parent
COMPILED = tuple(importlib.machinery.EXTENSION_SUFFIXES)
# a small overloaded run: preemptions, held heads, every column of the requests table
PROBE = """
import json, sys
import equinox_cli
from equinox_cli.engines.sim import engine, kv
from equinox_cli.engines.sim.engine import SimEngine
from equinox_cli.engines.sim.profiles import get_profile
from equinox_cli.policies import make_policy
from equinox_cli.predict.baselines import MovingAveragePredictor
from equinox_cli.workload.build import WorkloadSpec, build_workload
workload, _ = build_workload(WorkloadSpec(source="sharegpt-like", duration_s=60.0, rate_rps=40.0))
result = SimEngine(get_profile("a100-llama2-7b")).run(
    workload, make_policy("vtc", {}, MovingAveragePredictor()))
columns = {k: [repr(v) for v in result.requests[k]] for k in sorted(result.requests)}
json.dump({"native": equinox_cli.NATIVE, "engine": engine.__file__, "kv": kv.__file__,
           "requests": columns, "steps": len(result.steps["step"])}, sys.stdout)
"""


def _probe(path: Path, pure: bool = False) -> dict[str, object]:
    """Run PROBE with the package found first under `path` (also the working directory)."""
    env = {k: v for k, v in os.environ.items() if k != "EQUINOX_PURE_PYTHON"}
    if pure:
        env["EQUINOX_PURE_PYTHON"] = "1"
    env["PYTHONPATH"] = str(path)
    command = [sys.executable, "-c", PROBE]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=path, check=True)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_the_stamp_covers_every_byte_of_every_compiled_source(tmp_path: Path) -> None:
    root = PACKAGE.parent
    for rel in native.MODULES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / rel, tmp_path / rel)
    assert native.sources_sha256(tmp_path) == native.sources_sha256(root)
    for rel in (native.MODULES[0], native.MODULES[-1]):
        source = tmp_path / rel
        original = source.read_bytes()
        source.write_bytes(original + b"\n")
        assert native.sources_sha256(tmp_path) != native.sources_sha256(root), rel
        source.write_bytes(original)


def test_compiled_and_plain_python_give_identical_runs() -> None:
    compiled, plain = _probe(PACKAGE.parent), _probe(PACKAGE.parent, pure=True)
    assert not plain["native"] and str(plain["engine"]).endswith(".py")
    # compiled whenever the installed build is current (CI's install compiles it)
    assert compiled["native"] == str(compiled["engine"]).endswith(COMPILED)
    assert compiled["requests"] == plain["requests"] and compiled["steps"] == plain["steps"]
    assert compiled["steps"] > 300  # type: ignore[operator]


def test_an_edited_source_is_run_instead_of_the_stale_build(tmp_path: Path) -> None:
    """A copy of the package (compiled modules included, when built); one source edited."""
    shutil.copytree(PACKAGE, tmp_path / "equinox_cli", ignore=shutil.ignore_patterns("__pycache__"))
    current = _probe(tmp_path)
    assert current["native"] == equinox_cli.NATIVE
    kv = tmp_path / "equinox_cli" / "engines" / "sim" / "kv.py"
    kv.write_text(kv.read_text() + "\nEDITED = True\n")
    edited = _probe(tmp_path)
    assert edited["native"] is False
    # every module of the group from source (all or none), and the edit is what ran
    assert edited["kv"] == str(kv) and edited["engine"] == str(kv.parent / "engine.py")
    assert edited["requests"] == current["requests"]
