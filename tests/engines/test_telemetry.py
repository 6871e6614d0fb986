"""Utilisation samplers, tested against a fake NVML module (no GPU needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from equinox_cli.engines.telemetry import BusyFractionSampler, NvmlSampler, NvmlUnavailable


class FakeNvml:
    def __init__(self, gpu_percent: list[int], fail_init: bool = False) -> None:
        self.values = list(gpu_percent)
        self.fail_init = fail_init
        self.calls: list[str] = []

    def nvmlInit(self) -> None:
        self.calls.append("init")
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        self.calls.append(f"handle {index}")
        return f"gpu{index}"

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> SimpleNamespace:
        return SimpleNamespace(gpu=self.values.pop(0), memory=0)

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return b"NVIDIA Fake"

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> SimpleNamespace:
        return SimpleNamespace(used=30, total=120)

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")


def test_nvml_sampler_reads_percent_as_fraction_and_clamps() -> None:
    fake = FakeNvml([0, 94, 100, 250])
    sampler = NvmlSampler(1, nvml=fake)
    assert [sampler.sample() for _ in range(4)] == [0.0, 0.94, 1.0, 1.0]
    assert fake.calls[:2] == ["init", "handle 1"]
    assert sampler.device_name() == "NVIDIA Fake" and sampler.memory_used_fraction() == 0.25
    sampler.close()
    assert fake.calls[-1] == "shutdown"


def test_nvml_missing_is_a_clear_error() -> None:
    with pytest.raises(NvmlUnavailable, match="Shared Library Not Found"):
        NvmlSampler(nvml=FakeNvml([], fail_init=True))


def test_busy_fraction_counts_step_time_inside_the_window() -> None:
    now = [10.0]
    sampler = BusyFractionSampler(window_s=1.0, clock=lambda: now[0])
    sampler.record_step(8.0, 8.5)  # outside the window
    sampler.record_step(9.2, 9.5)  # 0.3 s
    sampler.record_step(9.9, 10.0)  # 0.1 s
    assert sampler.sample() == pytest.approx(0.4)
    now[0] = 11.5
    assert sampler.sample() == 0.0


def test_busy_fraction_clips_a_step_that_straddles_the_window_start() -> None:
    now = [10.0]
    sampler = BusyFractionSampler(window_s=1.0, clock=lambda: now[0])
    sampler.record_step(8.8, 9.2)  # 0.2 s of it inside [9, 10]
    sampler.record_step(9.5, 9.6)
    assert sampler.sample() == pytest.approx(0.3)
    now[0] = 10.4  # window [9.4, 10.4]: only the second step is left
    assert sampler.sample() == pytest.approx(0.1)
