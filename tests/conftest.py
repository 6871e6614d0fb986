"""Test factories (vLLM habit: make_request, make_workload) and the shared-traces location."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from equinox_cli.core.types import Request, Workload, WorkloadItem
from equinox_cli.predict.baselines import OutputOnly

SHARED_TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"


def pytest_configure(config: pytest.Config) -> None:
    """CI sets EQUINOX_REQUIRE_VLLM: there the vLLM tests must run, never skip for want of vllm."""
    if os.environ.get("EQUINOX_REQUIRE_VLLM") and importlib.util.find_spec("vllm") is None:
        raise pytest.UsageError("EQUINOX_REQUIRE_VLLM is set but vllm is not importable (.ci/vllm-venv)")


def make_request(
    rid: str = "r0",
    client: str = "c0",
    arrival_s: float = 0.0,
    prompt: int = 16,
    max_tokens: int = 16,
    weight: float = 1.0,
) -> Request:
    return Request(rid, client, arrival_s, prompt, max_tokens, weight)


def make_workload(
    rows: list[tuple[str, float, int, int]], weights: dict[str, float] | None = None
) -> Workload:
    """rows: (client, arrival_s, prompt_tokens, output_tokens)."""
    weights = weights or {}
    ordered = sorted(enumerate(rows), key=lambda x: (x[1][1], x[0]))
    items = tuple(
        WorkloadItem(make_request(f"r{i}", c, t, p, o, weights.get(c, 1.0)), o) for i, (c, t, p, o) in ordered
    )
    return Workload("test", items)


class ConstantPredictor(OutputOnly):
    """A deliberately wrong predictor (misprediction tests): the same guess for every request."""

    name = "constant"

    def __init__(self, tokens: float) -> None:
        self.tokens = tokens

    def prepare(self, request: Request) -> None:
        return None

    def predict_output_tokens(self, request: Request) -> float:
        return self.tokens

    def observe(self, request: Request, output_tokens: int) -> None:
        return None


@pytest.fixture
def shared_traces() -> Path:
    if not SHARED_TRACES.is_dir():
        pytest.fail(f"shared traces not found at {SHARED_TRACES}")
    return SHARED_TRACES
