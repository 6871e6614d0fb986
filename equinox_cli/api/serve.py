"""`equinox serve`: vLLM's OpenAI-compatible server with an Equinox policy as its scheduler.

`serve_config` checks everything a user can get wrong before anything starts; `start` launches the
server and waits until it is healthy (the caller owns stopping it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from equinox_cli.api.params import make_policy_checked, route_policy_params
from equinox_cli.core.errors import UserInputError
from equinox_cli.engines.vllm import launcher
from equinox_cli.engines.vllm.launcher import (
    ServeConfig,
    Server,
    check_has_vllm,
    check_startable,
    tiny_model_path,
)


@dataclass(frozen=True, slots=True)
class ServeOptions:
    policy: str = "equinox"
    policy_params: tuple[str, ...] = ()
    predictor: str = "moving-average"
    model: Path | None = None
    tiny_model: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    python: str = sys.executable
    kv_cache_gib: int = 1
    tenant_map: Path | None = None
    engine_log: Path | None = None
    log: Path | None = None
    kv_gate: bool = False
    vllm_args: Sequence[str] = ()


def serve_config(options: ServeOptions) -> ServeConfig:
    """The server's recipe, every mistake in it as one line (UserInputError) before anything starts."""
    if (options.model is None) == (not options.tiny_model):
        raise UserInputError("give exactly one of --model PATH and --tiny-model")
    routed = route_policy_params(options.policy_params, options.policy, [options.policy])
    make_policy_checked(options.policy, routed[options.policy])
    path = tiny_model_path(options.python) if options.tiny_model else options.model
    assert path is not None
    config = ServeConfig(
        model=path,
        policy=options.policy,
        params=routed[options.policy],
        predictor=options.predictor,
        host=options.host,
        port=options.port,
        python=options.python,
        kv_cache_gib=options.kv_cache_gib,
        extra_args=tuple(options.vllm_args),
        log_path=options.log,
        tenant_map=options.tenant_map,
        engine_log_dir=options.engine_log,
        kv_gate=options.kv_gate,
    )
    check_startable(config)
    check_has_vllm(config.python)
    return config


def start_server(config: ServeConfig) -> Server:
    """Start the server and wait until it answers /health."""
    return launcher.start_server(config)
