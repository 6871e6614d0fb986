"""`equinox collect`: one run's per-request and per-step training rows under traces/."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from equinox_cli.api.engines import (
    HttpOptions,
    VllmOptions,
    check_engine,
    check_engine_params,
    is_http,
    make_engine,
    managed_server,
    run_one,
    server_policy,
    with_model_tokenizer,
)
from equinox_cli.api.params import params_of, route_policy_params
from equinox_cli.api.profiles import resolve_profile
from equinox_cli.api.runs import check_out, default_run_dir, versions
from equinox_cli.core.protocols import RunObserver
from equinox_cli.core.types import PolicySpec
from equinox_cli.engines.sim.profiles import DEFAULT_PROFILE
from equinox_cli.policies import NEEDS_PREDICTOR, make_policy
from equinox_cli.predict.baselines import MovingAveragePredictor
from equinox_cli.report.collect import collected_requests, collected_steps, write_collected
from equinox_cli.workload.build import WorkloadSpec, build_workload


@dataclass(frozen=True, slots=True)
class CollectConfig:
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    engine: str = "sim"
    profile: str = DEFAULT_PROFILE
    policy: str = "fcfs"
    policy_params: tuple[str, ...] = ()
    engine_params: tuple[str, ...] = ()
    http: HttpOptions = field(default_factory=HttpOptions)
    vllm: VllmOptions = field(default_factory=VllmOptions)
    out: Path | None = None
    traces_root: Path = Path("traces")


@dataclass(frozen=True, slots=True)
class CollectOutcome:
    out_dir: Path
    requests: pd.DataFrame
    steps: pd.DataFrame
    warnings: list[str]


def collect(config: CollectConfig, observer: RunObserver | None = None) -> CollectOutcome:
    """Run a workload once and write per-request and per-step training rows under traces/."""
    check_engine(config.engine, config.http)
    check_engine_params(config.engine, config.engine_params)
    check_out(config.out)
    profile = resolve_profile(config.profile, config.engine_params)
    routed = route_policy_params(config.policy_params, config.policy, [config.policy])
    needs = config.policy in NEEDS_PREDICTOR
    policy = make_policy(config.policy, routed[config.policy], MovingAveragePredictor() if needs else None)
    spec, warnings = with_model_tokenizer(config.workload, config.engine, config.vllm)
    workload, more = build_workload(spec)
    warnings += more
    if is_http(config.engine):
        server_policy(config.engine, config.policy, routed[config.policy])
    out_dir = config.out or default_run_dir(
        config.traces_root, f"collected-{workload.name}", config.workload.seed
    )
    managed = managed_server(config.engine, config.vllm, out_dir, "moving-average", profile.kv_gate)
    engine = make_engine(
        config.engine, profile, config.http, managed, gate=MovingAveragePredictor, seed=config.workload.seed
    )
    policy_spec = PolicySpec(config.policy, routed[config.policy], "moving-average")
    result = run_one(engine, workload, policy, policy_spec, observer)
    requests = collected_requests(pd.DataFrame(result.requests), workload)
    steps = collected_steps(pd.DataFrame(result.steps))
    meta = {
        "command": "collect",
        "workload": asdict(config.workload),
        "workload_name": workload.name,
        "workload_source": dict(workload.source),
        "seed": config.workload.seed,
        "engine": config.engine,
        "profile": asdict(profile),
        "policy": config.policy,
        "policy_params": params_of(policy),
        **({"engine_config": result.config["engine_config"]} if "engine_config" in result.config else {}),
        "versions": versions(),
    }
    write_collected(out_dir, meta, requests, steps)
    return CollectOutcome(out_dir, requests, steps, warnings)
