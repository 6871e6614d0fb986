"""The `equinox` command. Each verb parses its options and calls one function of equinox_cli.api."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from equinox_cli import NATIVE, __version__, api
from equinox_cli.api import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_PROFILE,
    PROFILES,
    UserInputError,
)
from equinox_cli.cli import analyse, errors, learn
from equinox_cli.cli import options as o
from equinox_cli.cli import serve as serve_cmd
from equinox_cli.cli.common import clean as _clean
from equinox_cli.cli.common import err_console, out_console
from equinox_cli.cli.common import warn as _warn
from equinox_cli.cli.progress import RichProgressObserver
from equinox_cli.cli.tables import clients_table, comparison_table, stats_table

app = typer.Typer(
    name="equinox",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    help="Holistic fair scheduling for multi-tenant LLM serving: replay, compare, report.",
)
traces_app = typer.Typer(no_args_is_help=True, help="Inspect and convert traces.")
app.add_typer(traces_app, name="traces")
app.command(epilog=learn.COLLECT_EPILOG)(learn.collect)
app.command(
    epilog=serve_cmd.SERVE_EPILOG,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)(serve_cmd.serve)
app.command("train-mope", epilog=learn.TRAIN_EPILOG)(learn.train_mope)
app.command(epilog=analyse.COMPARE_EPILOG)(analyse.compare)
app.command(epilog=analyse.SWEEP_EPILOG)(analyse.sweep)
app.command(epilog=analyse.REPORT_EPILOG)(analyse.report)


REPLAY_HELP = (
    "Replay a multi-tenant workload under a policy and baselines; print a comparison; write Parquet.\n\n"
    "WORKLOAD is a trace file, a ServeGen folder or a suite name (default: the embedded 'default' "
    "mix). Suites: " + "; ".join(f"{name} ({text})" for name, text in api.suite_summaries().items()) + "."
)


@app.command(
    help=REPLAY_HELP,
    epilog="Example: equinox replay overload --profile a10g-llama2-7b --baseline vtc --baseline fcfs",
)
def replay(
    ctx: typer.Context,
    workload: o.WorkloadArg = None,
    engine: o.EngineOpt = "sim",
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help=f"Simulator hardware profile: {', '.join(PROFILES)}, or a predictors/NAME folder "
            "(its step-time fit calibrates the default profile).",
        ),
    ] = DEFAULT_PROFILE,
    policy: Annotated[
        str, typer.Option("--policy", help=f"Policy under test: {api.policy_help()}.")
    ] = "equinox",
    baseline: Annotated[
        list[str] | None, typer.Option("--baseline", help="Add a policy to compare (repeatable).")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("-P", "--param", help=o.policy_param_help()),
    ] = None,
    engine_param: Annotated[
        list[str] | None,
        typer.Option(
            "-E",
            "--engine-param",
            help=o.ENGINE_PARAM_HELP,
        ),
    ] = None,
    predictor: Annotated[
        str,
        typer.Option(
            "--predictor",
            help="Output predictor of equinox and vtc-pred: moving-average, oracle, none, "
            "a MoPE artifact folder (PATH or mope:PATH: MoPE, or the moving average while that "
            "predicts better), MoPE alone (mope-only:PATH) or its single model (single:PATH).",
        ),
    ] = "moving-average",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Report folder (default: a new folder under reports/)."),
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
    experiment: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="An experiment file (as for `equinox sweep`) with one setting: it gives the workload, "
            "policies, parameters and profile; the command line gives the engine and the output.",
        ),
    ] = None,
    slo: o.SloOpt = None,
    html: Annotated[
        bool, typer.Option("--html", help="Also write report.html and figures/ into the report folder.")
    ] = False,
) -> None:
    """See REPLAY_HELP (generated from the suite registry)."""
    if experiment is None:  # before api.ReplayConfig, which loads the data stack
        api.check_run_names(engine, profile, [policy, *(baseline or ())], param or (), engine_param or ())
    config = api.ReplayConfig(
        workload=o.workload_spec(
            workload, fmt, tenants, seed, rate, time_scale, duration, limit, start, tokenizer, max_tokens
        ),
        engine=engine,
        profile=profile,
        policy=policy,
        baselines=tuple(baseline or ()),
        policy_params=tuple(param or ()),
        engine_params=tuple(engine_param or ()),
        predictor=predictor,
        http=o.http_options(
            model, max_concurrency, request_timeout, deadline, api_keys, allow_length_mismatch, http_api
        ),
        vllm=o.vllm_options(vllm_model, vllm_python, vllm_arg),
        out=out,
        metrics=api.metrics_config(tuple(slo or ())),
    )
    if experiment is not None:
        _no_run_options_beside(ctx, experiment)
        config = api.config_from_experiment(experiment, config)
        profile, engine_param = config.profile, list(config.engine_params)
    observer = (
        None
        if as_json or not err_console.is_terminal
        else RichProgressObserver(err_console, simulated=engine == "sim")
    )
    outcome = api.replay(config, observer)
    _warn(outcome.warnings)
    if html:
        api.report(outcome.out_dir)
    if as_json:
        out_console.print_json(json.dumps(_replay_document(outcome), default=str))
        _fail_if_incomplete(outcome.summary, outcome.out_dir)
        return
    where = f"profile {profile}" if engine == "sim" else f"engine {engine}"
    if engine_param:  # the same engine for every policy: say which
        where += f" with -E {' '.join(engine_param)}"
    title = f"{outcome.workload.name}: {len(outcome.workload)} requests, {where}"
    utilisation = str(outcome.meta.get("utilisation", "GPU util (modelled)"))
    out_console.print(comparison_table(outcome.summary, title, utilisation))
    out_console.print(clients_table({n: r.clients for n, r in outcome.runs.items()}))
    out_console.print(f"Parquet report: {outcome.out_dir}")
    _fail_if_incomplete(outcome.summary, outcome.out_dir)


def _records(frame: object) -> list[dict[str, object]]:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _replay_document(outcome: api.ReplayOutcome) -> dict[str, object]:
    """`replay --json`: what ran (schema version, seed, workload, engine, profile) and its numbers,
    per policy and per tenant."""
    meta = outcome.meta
    profile = meta.get("profile")
    return {
        "schema": meta.get("schema"),
        "out": str(outcome.out_dir),
        "workload": meta.get("workload_name"),
        "seed": meta.get("seed"),
        "engine": meta.get("engine"),
        "engine_params": meta.get("engine_params"),
        "profile": profile.get("name") if isinstance(profile, dict) else profile,
        "summary": _records(outcome.summary),
        "clients": {name: _records(run.clients) for name, run in outcome.runs.items()},
    }


FILE_OPTIONS = {  # what an experiment file sets (replay --config): parameter name → option
    "workload": "WORKLOAD",
    "profile": "--profile",
    "policy": "--policy",
    "baseline": "--baseline",
    "param": "-P",
    "engine_param": "-E",
    "predictor": "--predictor",
    "fmt": "--format",
    "tenants": "--tenants",
    "seed": "--seed",
    "rate": "--rate",
    "time_scale": "--time-scale",
    "duration": "--duration",
    "limit": "--limit",
    "start": "--start",
    "max_tokens": "--max-tokens",
    "slo": "--slo",
}


def _no_run_options_beside(ctx: typer.Context, experiment: Path) -> None:
    """With --config the file is the experiment: a run option on the command line is a mistake."""
    for name, flag in FILE_OPTIONS.items():
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "COMMANDLINE":
            raise api.UserInputError(f"{flag}: set it in {experiment} (--config gives the whole run)")


def _fail_if_incomplete(summary: object, out_dir: Path) -> None:
    """A live run where requests failed: the report is written (marked incomplete); exit 2."""
    import pandas as pd

    assert isinstance(summary, pd.DataFrame)
    failed = int(summary["failed"].sum()) if "failed" in summary else 0
    if failed:
        total = int(summary["requests"].sum())
        err_console.print(
            f"error: incomplete run: {failed} of {total} requests did not finish "
            f"(reasons in requests.parquet); report written to {out_dir}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)


@traces_app.command(
    "stats",
    epilog="Example: equinox traces stats ../shared/traces/mooncake/conversation_trace.jsonl --limit 1000",
)
def traces_stats(
    workload: o.WorkloadArg = None,
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
    """Show statistics of a trace or suite: rates, lengths and burstiness per client."""
    spec = o.workload_spec(
        workload, fmt, tenants, seed, rate, time_scale, duration, limit, start, tokenizer, max_tokens
    )
    overall, per_client, warnings = api.trace_stats(spec)
    _warn(warnings)
    if as_json:
        clients = [{k: _clean(v) for k, v in r.items()} for r in per_client.to_dict("records")]
        out_console.print_json(json.dumps({"overall": overall, "clients": clients}, default=str))
        return
    out_console.print(stats_table(overall, per_client, f"{overall['workload']}"))


@traces_app.command(
    "convert",
    epilog="Example: equinox traces convert overload traces/overload.parquet --duration 60",
)
def traces_convert(
    workload: o.WorkloadArg,
    out: Annotated[Path, typer.Argument(help="Output .parquet file (canonical schema).")],
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
    """Convert any supported trace (or a suite) to canonical Parquet."""
    spec = o.workload_spec(
        workload, fmt, tenants, seed, rate, time_scale, duration, limit, start, tokenizer, max_tokens
    )
    path, rows, warnings = api.convert_trace(spec, out)
    _warn(warnings)
    out_console.print(f"wrote {rows} requests to {path}")


@app.command(epilog="Example: equinox version")
def version() -> None:
    """Print the version, and whether the simulator's step loop runs compiled (mypyc)."""
    out_console.print(f"{__version__} (simulator: {'compiled' if NATIVE else 'plain Python'})")


def main(argv: list[str] | None = None) -> None:
    """Entry point: every user mistake (usage, option value, file, trace) becomes one line on stderr
    and exit code 2, never a traceback; Ctrl-C exits 130."""
    try:
        # in this mode click returns typer.Exit's code and raises everything else to us
        code = app(args=argv, prog_name="equinox", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except UserInputError as exc:
        _fail(str(exc))
    except OSError as exc:  # unreadable, missing, a folder for a file, no space: the file and why
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}")
    except errors.INTERRUPTS:
        err_console.print("aborted")
        sys.exit(130)
    except errors.EXITS as exc:
        sys.exit(errors.exit_code(exc))
    except errors.USAGE_ERRORS as exc:
        _fail(errors.usage_message(exc), errors.exit_code(exc))


def _fail(message: str, code: int = 2) -> None:
    line = " ".join(message.split())  # one line, whatever the message held
    err_console.print(f"error: {line}", highlight=False, soft_wrap=True, markup=False)
    sys.exit(code)
