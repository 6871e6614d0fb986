"""`equinox collect` and `equinox train-mope`: training data and the MoPE predictor."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from equinox_cli import api
from equinox_cli.api import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_PROFILE,
    MAX_SEED,
    PROFILES,
    FitConfig,
    TrainConfig,
    check_number,
)
from equinox_cli.cli import options as o
from equinox_cli.cli.common import clean, err_console, out_console, warn
from equinox_cli.cli.progress import RichProgressObserver
from equinox_cli.cli.tables import mope_other_table, mope_output_table

COLLECT_EPILOG = (
    "Example: equinox collect ../shared/traces/arena_hard_auto/arena_hard_flat.jsonl --rate 3 "
    "--out traces/arena"
)
TRAIN_EPILOG = "Example: equinox train-mope traces/arena --out predictors/arena"


def collect(
    workload: o.WorkloadArg = None,
    engine: o.EngineOpt = "sim",
    profile: Annotated[
        str, typer.Option("--profile", help=f"Simulator hardware profile: {', '.join(PROFILES)}.")
    ] = DEFAULT_PROFILE,
    policy: Annotated[
        str, typer.Option("--policy", help=f"Scheduling policy while collecting: {api.policy_help()}.")
    ] = "fcfs",
    param: Annotated[
        list[str] | None, typer.Option("-P", "--param", help="Policy parameter key=value.")
    ] = None,
    engine_param: Annotated[
        list[str] | None, typer.Option("-E", "--engine-param", help=o.ENGINE_PARAM_HELP)
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: a new folder under traces/).")
    ] = None,
    model: o.ModelOpt = "equinox",
    max_concurrency: o.ConcurrencyOpt = 2048,
    request_timeout: o.RequestTimeoutOpt = 300.0,
    deadline: o.DeadlineOpt = None,
    api_keys: o.ApiKeysOpt = None,
    allow_length_mismatch: o.AllowMismatchOpt = False,
    http_api: o.ApiOpt = "vllm",
    vllm_model: o.VllmModelOpt = None,
    vllm_python: o.VllmPythonOpt = sys.executable,
    vllm_arg: o.VllmArgOpt = None,
    as_json: o.JsonOpt = False,
    fmt: o.FormatOpt = None,
    tenants: o.TenantsOpt = None,
    seed: o.SeedOpt = 42,
    rate: o.RateOpt = 5.0,
    time_scale: o.TimeScaleOpt = 1.0,
    duration: o.DurationOpt = None,
    limit: o.LimitOpt = None,
    start: o.StartOpt = 0.0,
    tokenizer: o.TokenizerOpt = None,
    max_tokens: o.MaxTokensOpt = DEFAULT_MAX_TOKENS,
) -> None:
    """Run a workload once and record per-request and per-step training rows (Parquet) under traces/."""
    config = api.CollectConfig(
        workload=o.workload_spec(
            workload, fmt, tenants, seed, rate, time_scale, duration, limit, start, tokenizer, max_tokens
        ),
        engine=engine,
        profile=profile,
        policy=policy,
        policy_params=tuple(param or ()),
        engine_params=tuple(engine_param or ()),
        http=o.http_options(
            model, max_concurrency, request_timeout, deadline, api_keys, allow_length_mismatch, http_api
        ),
        vllm=o.vllm_options(vllm_model, vllm_python, vllm_arg),
        out=out,
    )
    observer = (
        None
        if as_json or not err_console.is_terminal
        else RichProgressObserver(err_console, simulated=engine == "sim")
    )
    outcome = api.collect(config, observer)
    warn(outcome.warnings)
    finished = int((outcome.requests["status"] == "finished").sum())
    if as_json:
        document = {
            "out": str(outcome.out_dir),
            "requests": len(outcome.requests),
            "finished": finished,
            "steps": len(outcome.steps),
        }
        out_console.print_json(json.dumps(document))
        return
    out_console.print(
        f"collected {len(outcome.requests)} requests ({finished} finished) and {len(outcome.steps)} steps "
        f"into {outcome.out_dir}"
    )


def train_mope(
    data: Annotated[
        list[Path], typer.Argument(help="Folders written by `equinox collect` (or their .parquet files).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Artifact folder (default: predictors/mope-<time>).")
    ] = None,
    seed: o.SeedOpt = 42,
    min_rows: Annotated[int, typer.Option("--min-rows", help="Fewest training rows a target accepts.")] = 200,
    min_expert_rows: Annotated[
        int, typer.Option("--min-expert-rows", help="Fewest rows for a regime to get its own expert.")
    ] = 200,
    max_step_rows: Annotated[
        int, typer.Option("--max-step-rows", help="Subsample step rows to at most this many (seeded).")
    ] = 50_000,
    as_json: o.JsonOpt = False,
) -> None:
    """Train and evaluate MoPE (output tokens, TTFT, E2E, step time, GPU utilisation) against baselines;
    write a versioned artifact under predictors/ with metrics.parquet and predictions.parquet."""
    check_number("--seed", seed, 0, MAX_SEED, integer=True)
    check_number("--min-rows", min_rows, 1, 1e9, integer=True)
    check_number("--min-expert-rows", min_expert_rows, 1, 1e9, integer=True)
    check_number("--max-step-rows", max_step_rows, 1, 1e9, integer=True)
    train = TrainConfig(FitConfig(seed=seed, min_expert_rows=min_expert_rows), min_rows, max_step_rows)
    if as_json or not err_console.is_terminal:
        outcome = api.train_mope_artifact(api.TrainMopeConfig(tuple(data), out, train=train))
    else:
        with err_console.status("train-mope: starting") as status:
            outcome = api.train_mope_artifact(
                api.TrainMopeConfig(tuple(data), out, train=train),
                lambda stage: status.update(f"train-mope: {stage}"),
            )
    warn(outcome.result.warnings)
    metrics = outcome.result.metrics
    if as_json:
        rows = [{k: clean(v) for k, v in r.items()} for r in metrics.to_dict("records")]
        out_console.print_json(
            json.dumps({"out": str(outcome.out_dir), "ratio": outcome.mae_ratio, "metrics": rows})
        )
        return
    out_console.print(mope_output_table(metrics))
    out_console.print(mope_other_table(metrics))
    fit = outcome.result.step_fit
    if fit is not None:
        out_console.print(
            f"step time fit: t = {fit.c0_s * 1e3:.3f} ms + {fit.c_prefill_s * 1e6:.3f} µs·prefill + "
            f"{fit.c_decode_s * 1e6:.3f} µs·decode + {fit.c_kv_s * 1e9:.3f} ns·context  "
            f"(R² {fit.r2:.4f}, {fit.rows} steps)"
        )
    ratios = ", ".join(f"{split} {value:.2f}×" for split, value in outcome.mae_ratio.items())
    out_console.print(f"output tokens, single-model MAE / MoPE MAE: {ratios}")
    out_console.print(f"artifact: {outcome.out_dir}")
