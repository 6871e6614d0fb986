"""Utilisation samplers for live engines: NVML on a GPU, the engine's busy fraction on a CPU.

NvmlSampler reads `nvmlDeviceGetUtilizationRates(handle).gpu` (percent of time a kernel ran during
the driver's last sample period) through nvidia-ml-py's `pynvml` module, imported only when asked
for. The module can be injected, which is how it is tested without a GPU.
"""

from __future__ import annotations

import importlib
import time
from collections import deque
from types import ModuleType
from typing import Any


class NvmlUnavailable(Exception):
    """No NVML library, no driver or no such device."""


class NvmlSampler:
    name = "nvml"

    def __init__(self, device_index: int = 0, nvml: ModuleType | Any | None = None) -> None:
        try:
            self._nvml = nvml if nvml is not None else importlib.import_module("pynvml")
            self._nvml.nvmlInit()
            self._handle = self._nvml.nvmlDeviceGetHandleByIndex(device_index)
        except Exception as exc:  # ImportError, NVMLError_*: the library decides the types
            raise NvmlUnavailable(f"NVML unavailable: {type(exc).__name__}: {exc}") from None
        self.device_index = device_index

    def device_name(self) -> str:
        name = self._nvml.nvmlDeviceGetName(self._handle)
        return name.decode() if isinstance(name, bytes) else str(name)

    def sample(self) -> float:
        """GPU utilisation in [0, 1]."""
        rates = self._nvml.nvmlDeviceGetUtilizationRates(self._handle)
        return min(1.0, max(0.0, float(rates.gpu) / 100.0))

    def memory_used_fraction(self) -> float:
        info = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
        return float(info.used) / float(info.total) if info.total else 0.0

    def close(self) -> None:
        self._nvml.nvmlShutdown()


class BusyFractionSampler:
    """On a CPU engine: the fraction of the last `window_s` seconds spent inside engine steps."""

    name = "busy-fraction"

    def __init__(self, window_s: float = 1.0, clock: Any = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._spans: deque[tuple[float, float]] = deque()
        self._span_total_s = 0.0  # sum of the spans' lengths: O(1) per sample, not O(spans)

    def record_step(self, start_s: float, end_s: float) -> None:
        self._spans.append((start_s, end_s))
        self._span_total_s += end_s - start_s

    def sample(self) -> float:
        now = self._clock()
        begin = now - self.window_s
        spans = self._spans
        while spans and spans[0][1] <= begin:
            start, end = spans.popleft()
            self._span_total_s -= end - start
        if not spans:
            self._span_total_s = 0.0  # no float drift carried across idle periods
            return 0.0
        busy = self._span_total_s
        busy -= max(0.0, begin - spans[0][0])  # the part of the oldest span before the window
        busy -= max(0.0, spans[-1][1] - now)  # the part of the newest span after now
        return min(1.0, max(0.0, busy / self.window_s))


def best_sampler(device_index: int = 0) -> NvmlSampler | BusyFractionSampler:
    """NVML when a GPU answers, else the busy fraction."""
    try:
        return NvmlSampler(device_index)
    except NvmlUnavailable:
        return BusyFractionSampler()
