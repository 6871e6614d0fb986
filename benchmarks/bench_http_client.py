"""HTTP replay client accuracy against a loopback fake server (in its own process).

  python benchmarks/bench_http_client.py            # 1,000 req/s for 10 s
  python benchmarks/bench_http_client.py --quick    # 1,000 req/s for 3 s

Target (issue 4): achieved request rate ≥ 99 % of the target and send lag (actual − intended send
time) p99 < 5 ms. Arrivals are uniform at the target rate; each answer streams 2 tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import time

import numpy as np
from aiohttp import web

from equinox_cli.core.types import Request, Workload, WorkloadItem
from equinox_cli.engines.http.client import HttpConfig, replay_http


async def _completions(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for _ in range(int(body["max_tokens"])):
        await response.write(b'data: {"choices": [{"text": "x"}]}\n\n')
    await response.write(b"data: [DONE]\n\n")
    return response


def _serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/v1/completions", _completions)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 10.0
    port = _port()
    server = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    time.sleep(1.5)
    n = int(args.rate * seconds)
    items = tuple(WorkloadItem(Request(f"r{i}", f"c{i % 10}", i / args.rate, 16, 2), 2) for i in range(n))
    try:
        outcomes = replay_http(
            Workload("bench", items), HttpConfig(f"http://127.0.0.1:{port}", max_concurrency=512)
        )
    finally:
        server.terminate()
    sent = np.array([o.sent_s for o in outcomes if o.sent_s is not None])
    lag = np.array([o.sent_s - o.intended_s for o in outcomes if o.sent_s is not None])
    achieved = (len(sent) - 1) / (sent.max() - sent.min())
    finished = sum(o.status == "finished" for o in outcomes)
    result = {
        "target_rps": args.rate,
        "achieved_rps": round(float(achieved), 1),
        "achieved_over_target": round(float(achieved / args.rate), 4),
        "send_lag_p50_ms": round(float(np.percentile(lag, 50)) * 1e3, 3),
        "send_lag_p99_ms": round(float(np.percentile(lag, 99)) * 1e3, 3),
        "requests": n,
        "finished": finished,
    }
    print(json.dumps(result))
    print("targets: achieved/target >= 0.99, send lag p99 < 5 ms")
    _ = asyncio  # the client runs its own event loop


if __name__ == "__main__":
    main()
