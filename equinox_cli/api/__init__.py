"""The toolkit as Python functions, one module per verb; the CLI only parses and calls these.

    replay.py   equinox replay          collect.py  equinox collect
    train.py    equinox train-mope      serve.py    equinox serve
    traces.py   equinox traces ...      report.py   equinox report
    compare.py  equinox compare         sweep.py    equinox sweep
Shared: engines.py (which engine, checked), params.py (-P, policies, predictors), profiles.py
(simulator profiles), runs.py (output folders, versions), choices.py (the names the CLI offers).
"""

from equinox_cli.api.choices import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_PROFILE,
    ENGINE_KEYS,
    FORMATS,
    MAX_SEED,
    PARAM_CLASSES,
    POLICY_NAMES,
    PROFILES,
    SUITES,
    FitConfig,
    TrainConfig,
    UserInputError,
    WorkloadSpec,
    check_number,
    formats_help,
    policy_help,
    suite_summaries,
)
from equinox_cli.api.collect import CollectConfig, CollectOutcome, collect
from equinox_cli.api.compare import COMPARE_SCHEMA, CompareConfig, CompareOutcome, compare
from equinox_cli.api.engines import (
    ENGINE_KINDS,
    ENGINES,
    HttpOptions,
    VllmOptions,
    check_url,
    is_http,
    make_engine,
)
from equinox_cli.api.experiment import Experiment, load_experiment
from equinox_cli.api.params import (
    build_policies,
    make_policy_checked,
    make_predictor,
    route_policy_params,
    split_key_values,
)
from equinox_cli.api.profiles import calibrated_profile, profile_from_fit, profile_from_steps, resolve_profile
from equinox_cli.api.replay import ReplayConfig, ReplayOutcome, config_from_experiment, metrics_config, replay
from equinox_cli.api.report import report
from equinox_cli.api.serve import ServeOptions, serve_config, start_server
from equinox_cli.api.sweep import SweepConfig, SweepOutcome, sweep
from equinox_cli.api.traces import convert_trace, trace_stats, workload_frame
from equinox_cli.api.train import TrainMopeConfig, TrainMopeOutcome, train_mope_artifact

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
