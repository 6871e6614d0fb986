"""The guarded predictor switches to whichever predictor has been more accurate lately."""

from __future__ import annotations

from equinox_cli.predict.baselines import OutputOnly
from equinox_cli.predict.guarded import GuardedPredictor
from tests.conftest import make_request


class _Fixed(OutputOnly):
    def __init__(self, tokens: float) -> None:
        self.tokens = tokens
        self.observed = 0

    def prepare(self, request) -> None:  # type: ignore[no-untyped-def]
        return None

    def predict_output_tokens(self, request) -> float:  # type: ignore[no-untyped-def]
        return self.tokens

    def observe(self, request, output_tokens: int) -> None:  # type: ignore[no-untyped-def]
        self.observed += 1


def _feed(guard: GuardedPredictor, truths: list[int], start: int = 0) -> list[float]:
    out = []
    for i, truth in enumerate(truths, start):
        request = make_request(f"r{i}", "a")
        out.append(guard.predict_output_tokens(request))
        guard.observe(request, truth)
    return out


def test_falls_back_when_the_primary_is_worse_and_returns_when_it_recovers() -> None:
    primary, fallback = _Fixed(100.0), _Fixed(500.0)
    guard = GuardedPredictor(primary, fallback, warmup=5, ema=0.2)
    first = _feed(guard, [500] * 30)  # the truth is what the fallback says
    assert first[:5] == [100.0] * 5  # warm-up: the primary
    assert first[-1] == 500.0 and not guard.uses_primary()
    later = _feed(guard, [100] * 30, start=30)  # traffic shifts back to the primary's world
    assert later[-1] == 100.0 and guard.uses_primary()
    assert primary.observed == fallback.observed == 60  # both keep learning whichever predicts


def test_requests_that_never_finish_do_not_count() -> None:
    guard = GuardedPredictor(_Fixed(1.0), _Fixed(2.0), warmup=0)
    guard.predict_output_tokens(make_request("lost", "a"))
    assert guard.finished == 0 and guard.uses_primary()
