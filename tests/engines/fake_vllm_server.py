"""Stands in for `python -m vllm.entrypoints.openai.api_server` in launcher and `--engine vllm` tests.

Run as `python fake_vllm_server.py <vLLM's argv>`: serves /health and a fake /v1/completions on
--host/--port, and, like the plug-in, appends one engine row per finished request to EQUINOX_LOG_DIR.
Exits with code 3 at once when FAKE_VLLM_FAIL_POLICY names the EQUINOX_POLICY it was given.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from equinox_cli.engines.vllm.recorder import ENGINE_CONFIG_FILE, REQUESTS_FILE, STEPS_FILE
from tests.engines.fake_openai import BEHAVIOUR, Behaviour, _completions


def _arg(name: str, default: str) -> str:
    argv = sys.argv[1:]
    return argv[argv.index(name) + 1] if name in argv else default


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _logged_completions(request: web.Request) -> web.StreamResponse:
    response = await _completions(request)
    log_dir = os.environ.get("EQUINOX_LOG_DIR")
    if log_dir:
        body = request.app[BEHAVIOUR].seen[-1]
        xargs = body["vllm_xargs"]
        assert isinstance(xargs, dict)
        row = {"request_id": xargs["equinox_request"], "preemptions": 0, "running_at_admit": 1}
        with open(Path(log_dir) / REQUESTS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        with open(Path(log_dir) / STEPS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step_time_s": 0.01, "prefill_tokens": len(body["prompt"])}) + "\n")  # type: ignore[arg-type]
    return response


def main() -> None:
    if os.environ.get("FAKE_VLLM_FAIL_POLICY") == os.environ.get("EQUINOX_POLICY"):
        sys.exit(3)
    if os.environ.get("EQUINOX_LOG_DIR"):  # like the plug-in: its configuration at start
        Path(os.environ["EQUINOX_LOG_DIR"]).mkdir(parents=True, exist_ok=True)
        config = {"block_size": 16, "max_num_seqs": 8, "max_num_batched_tokens": 512, "kv_total_blocks": 99}
        (Path(os.environ["EQUINOX_LOG_DIR"]) / ENGINE_CONFIG_FILE).write_text(json.dumps(config))
    app = web.Application()
    app[BEHAVIOUR] = Behaviour()
    app.router.add_get("/health", _health)
    app.router.add_post("/v1/completions", _logged_completions)
    web.run_app(app, host=_arg("--host", "127.0.0.1"), port=int(_arg("--port", "8000")), print=None)


if __name__ == "__main__":
    main()
