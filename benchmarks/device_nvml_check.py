"""Validate the NVML utilisation sampler on a real GPU (run on a lent GPU machine; needs nvidia-ml-py).

    PYTHONPATH=. python benchmarks/device_nvml_check.py

Prints the device, utilisation sampled while idle and while a matmul loop keeps the GPU busy
(torch, when the machine has it), and the cost of one sample() call.
"""

from __future__ import annotations

import json
import statistics
import threading
import time

from equinox_cli.engines.telemetry import NvmlSampler


def _samples(sampler: NvmlSampler, seconds: float, every_s: float = 0.1) -> list[float]:
    values = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        values.append(sampler.sample())
        time.sleep(every_s)
    return values


def _busy_loop(stop: threading.Event) -> None:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    while not stop.is_set():
        a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()


def main() -> None:
    sampler = NvmlSampler(0)
    result: dict[str, object] = {"device": sampler.device_name()}
    start = time.perf_counter()
    for _ in range(1000):
        sampler.sample()
    result["sample_cost_us"] = round((time.perf_counter() - start) / 1000 * 1e6, 2)
    idle = _samples(sampler, 2.0)
    result["idle_util_mean"] = round(statistics.mean(idle), 3)
    try:
        import torch  # noqa: F401

        stop = threading.Event()
        worker = threading.Thread(target=_busy_loop, args=(stop,), daemon=True)
        worker.start()
        time.sleep(1.0)  # warm-up: allocation and first kernels
        busy = _samples(sampler, 3.0)
        stop.set()
        worker.join(10)
        result["busy_util_mean"] = round(statistics.mean(busy), 3)
        result["busy_util_min"] = round(min(busy), 3)
        after = _samples(sampler, 2.0)
        result["after_util_last"] = round(after[-1], 3)
    except ImportError:
        result["busy"] = "torch not on this machine: busy phase skipped"
    result["memory_used_fraction"] = round(sampler.memory_used_fraction(), 4)
    sampler.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
