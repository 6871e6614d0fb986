"""The toolkit as Python functions, one module per verb; the CLI only parses and calls these.

    replay.py   equinox replay          collect.py  equinox collect
    train.py    equinox train-mope      serve.py    equinox serve
    traces.py   equinox traces ...      report.py   equinox report
    compare.py  equinox compare         sweep.py    equinox sweep
Shared: engines.py (which engine, checked), params.py (-P, policies, predictors), profiles.py
(simulator profiles), runs.py (output folders, versions), choices.py (the names the CLI offers).

Only choices.py is imported with the package: the CLI builds its help from it, and `equinox
--help` or a bad option must not wait ~0.5 s for pandas. Everything else is imported on first use
(PEP 562 `__getattr__`).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from equinox_cli.api.choices import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_PROFILE,
    ENGINE_KEYS,
    ENGINE_KINDS,
    FORMATS,
    MAX_SEED,
    PARAM_CLASSES,
    POLICY_NAMES,
    PROFILES,
    SUITES,
    FitConfig,
    HttpOptions,
    TrainConfig,
    UserInputError,
    VllmOptions,
    WorkloadSpec,
    check_number,
    formats_help,
    policy_help,
    suite_summaries,
)

# each name imported on first use, and the module it lives in
_LAZY = {
    "CollectConfig": "collect",
    "CollectOutcome": "collect",
    "collect": "collect",
    "COMPARE_SCHEMA": "compare",
    "CompareConfig": "compare",
    "CompareOutcome": "compare",
    "compare": "compare",
    "ENGINES": "engines",
    "check_url": "engines",
    "is_http": "engines",
    "make_engine": "engines",
    "Experiment": "experiment",
    "load_experiment": "experiment",
    "build_policies": "params",
    "check_run_names": "params",
    "make_policy_checked": "params",
    "make_predictor": "params",
    "route_policy_params": "params",
    "split_key_values": "params",
    "calibrated_profile": "profiles",
    "profile_from_fit": "profiles",
    "profile_from_steps": "profiles",
    "resolve_profile": "profiles",
    "ReplayConfig": "replay",
    "ReplayOutcome": "replay",
    "config_from_experiment": "replay",
    "metrics_config": "replay",
    "replay": "replay",
    "report": "report",
    "ServeOptions": "serve",
    "serve_config": "serve",
    "start_server": "serve",
    "SweepConfig": "sweep",
    "SweepOutcome": "sweep",
    "sweep": "sweep",
    "convert_trace": "traces",
    "trace_stats": "traces",
    "workload_frame": "traces",
    "TrainMopeConfig": "train",
    "TrainMopeOutcome": "train",
    "train_mope_artifact": "train",
}

if TYPE_CHECKING:
    from equinox_cli.api.collect import CollectConfig, CollectOutcome, collect
    from equinox_cli.api.compare import COMPARE_SCHEMA, CompareConfig, CompareOutcome, compare
    from equinox_cli.api.engines import ENGINES, check_url, is_http, make_engine
    from equinox_cli.api.experiment import Experiment, load_experiment
    from equinox_cli.api.params import (
        build_policies,
        check_run_names,
        make_policy_checked,
        make_predictor,
        route_policy_params,
        split_key_values,
    )
    from equinox_cli.api.profiles import (
        calibrated_profile,
        profile_from_fit,
        profile_from_steps,
        resolve_profile,
    )
    from equinox_cli.api.replay import (
        ReplayConfig,
        ReplayOutcome,
        config_from_experiment,
        metrics_config,
        replay,
    )
    from equinox_cli.api.report import report
    from equinox_cli.api.serve import ServeOptions, serve_config, start_server
    from equinox_cli.api.sweep import SweepConfig, SweepOutcome, sweep
    from equinox_cli.api.traces import convert_trace, trace_stats, workload_frame
    from equinox_cli.api.train import TrainMopeConfig, TrainMopeOutcome, train_mope_artifact


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """Importing a submodule binds it on its package (`api.replay` = the module replay.py), which
    would hide the function of the same name from `__getattr__`; the functions win, as they did
    when this package imported them eagerly."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "COMPARE_SCHEMA",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_PROFILE",
    "ENGINES",
    "ENGINE_KEYS",
    "ENGINE_KINDS",
    "FORMATS",
    "MAX_SEED",
    "PARAM_CLASSES",
    "POLICY_NAMES",
    "PROFILES",
    "SUITES",
    "CollectConfig",
    "CollectOutcome",
    "CompareConfig",
    "CompareOutcome",
    "Experiment",
    "FitConfig",
    "HttpOptions",
    "ReplayConfig",
    "ReplayOutcome",
    "ServeOptions",
    "SweepConfig",
    "SweepOutcome",
    "TrainConfig",
    "TrainMopeConfig",
    "TrainMopeOutcome",
    "UserInputError",
    "VllmOptions",
    "WorkloadSpec",
    "build_policies",
    "calibrated_profile",
    "check_number",
    "check_run_names",
    "check_url",
    "collect",
    "compare",
    "config_from_experiment",
    "convert_trace",
    "formats_help",
    "is_http",
    "load_experiment",
    "make_engine",
    "make_policy_checked",
    "make_predictor",
    "metrics_config",
    "policy_help",
    "profile_from_fit",
    "profile_from_steps",
    "replay",
    "report",
    "resolve_profile",
    "route_policy_params",
    "serve_config",
    "split_key_values",
    "start_server",
    "suite_summaries",
    "sweep",
    "trace_stats",
    "train_mope_artifact",
    "workload_frame",
]
