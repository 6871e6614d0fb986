"""Options shared by several commands, so every verb spells them the same way."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from equinox_cli.api import (
    DEFAULT_MAX_TOKENS,
    ENGINE_KEYS,
    ENGINE_KINDS,
    PARAM_CLASSES,
    HttpOptions,
    VllmOptions,
    WorkloadSpec,
    formats_help,
)

WorkloadArg = Annotated[
    str | None,
    typer.Argument(
        help="Trace file, ServeGen folder or built-in suite name (default: 'default').",
        show_default=False,
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help=f"Trace format (detected when omitted): {formats_help()}.",
    ),
]
TenantsOpt = Annotated[
    str | None,
    typer.Option(
        "--tenants",
        help="Tenant rule for traces without tenants: round-robin:N, zipf:N[:S], column:NAME, single.",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random choice.")]
RateOpt = Annotated[
    float,
    typer.Option("--rate", help="Poisson arrival rate (req/s) for traces without timestamps."),
]
TimeScaleOpt = Annotated[
    float,
    typer.Option("--time-scale", help="Compress the trace's time axis by this factor (>1 = more load)."),
]
DurationOpt = Annotated[
    float | None,
    typer.Option("--duration", help="Keep arrivals before this many seconds (suites: their length)."),
]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Keep the first N requests.")]
StartOpt = Annotated[
    float,
    typer.Option(
        "--start",
        help="Start of the time window (s): ServeGen's window; other traces drop earlier arrivals.",
    ),
]
MaxTokensOpt = Annotated[
    int,
    typer.Option(
        "--max-tokens",
        help="The max_tokens a client sends where the trace has none (longer outputs are cut to it). "
        "VTC's suites keep their forced lengths.",
    ),
]
TokenizerOpt = Annotated[
    Path | None,
    typer.Option("--tokenizer", help="tokenizer.json for exact token counts of text traces."),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="; ".join(f"{name}: {summary}" for name, summary in ENGINE_KINDS.items()) + ".",
    ),
]
ModelOpt = Annotated[str, typer.Option("--model", help="http engine: model name sent in each request.")]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--max-concurrency",
        help="http/vllm engine: most requests in flight at once. Keep it above the server's backlog: "
        "requests held back here wait in first-come order, outside the policy under test.",
    ),
]
RequestTimeoutOpt = Annotated[
    float, typer.Option("--request-timeout", help="http engine: seconds one request may take.")
]
DeadlineOpt = Annotated[
    float | None,
    typer.Option(
        "--deadline", help="http engine: seconds for the whole replay; later requests are not sent."
    ),
]
ApiKeysOpt = Annotated[
    Path | None,
    typer.Option("--api-keys", help="http engine: JSON file {client_id: API key} sent as Bearer tokens."),
]
VllmModelOpt = Annotated[
    Path | None,
    typer.Option("--vllm-model", help="vllm engine: model folder (default: the tiny random-weight model)."),
]
VllmPythonOpt = Annotated[
    str, typer.Option("--vllm-python", help="vllm engine: Python interpreter that has vllm installed.")
]
VllmArgOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--vllm-arg",
        help="vllm engine: argument for the vLLM server, repeatable (--vllm-arg=--max-num-seqs=64). "
        "Default: --enforce-eager.",
    ),
]
AllowMismatchOpt = Annotated[
    bool,
    typer.Option(
        "--allow-length-mismatch",
        help="http/vllm engine: a request served at another length than the forced one counts as "
        "finished (length_ok false) instead of making the run incomplete (exit 2).",
    ),
]
ApiOpt = Annotated[
    str,
    typer.Option(
        "--api",
        help="http engine: vllm (/v1/completions, token ids, forced lengths, the tenant in vllm_xargs), "
        "vllm-chat (/v1/chat/completions), openai or openai-chat (any OpenAI-compatible server: text "
        "prompts, no extensions; lengths cannot be forced, so mismatches are reported, not failed).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def http_options(
    model: str,
    max_concurrency: int,
    request_timeout: float,
    deadline: float | None,
    api_keys: Path | None,
    allow_length_mismatch: bool = False,
    api: str = "vllm",
) -> HttpOptions:
    return HttpOptions(
        model, max_concurrency, request_timeout, deadline, api_keys, allow_length_mismatch, api
    )


def workload_spec(
    workload: str | None,
    fmt: str | None,
    tenants: str | None,
    seed: int,
    rate: float,
    time_scale: float,
    duration: float | None,
    limit: int | None,
    start: float,
    tokenizer: Path | None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> WorkloadSpec:
    return WorkloadSpec(
        source=workload,
        format=fmt,
        tenants=tenants,
        seed=seed,
        rate_rps=rate,
        time_scale=time_scale,
        duration_s=duration,
        limit=limit,
        start_s=start,
        tokenizer=tokenizer,
        max_tokens=max_tokens,
    )


def vllm_options(model: Path | None, python: str, args: list[str] | None) -> VllmOptions:
    return VllmOptions(model=model, python=python, server_args=tuple(args) if args else ("--enforce-eager",))


def policy_param_help() -> str:
    """-P help generated from the policy registry: every policy's keys."""
    keys = "; ".join(
        f"{name}: {', '.join(f.name for f in dataclasses.fields(cls))}"
        for name, cls in PARAM_CLASSES.items()
        if cls is not None
    )
    return f"Policy parameter key=value (main policy) or policy.key=value. Keys: {keys}."


ENGINE_PARAM_HELP = f"Simulated engine override key=value; keys: {', '.join(ENGINE_KEYS)}."

SloOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--slo",
        help="Latency objectives: ttft=SECONDS,tpot=SECONDS for every tenant (default ttft=2,tpot=0.2), "
        "TENANT:ttft=...,tpot=... for one (repeatable). Goodput counts requests within their tenant's; "
        "Equinox aims at them unless -P sets ttft_slo_s/tpot_slo_s.",
    ),
]
