"""The guarded predictor blends its two predictors, weighted by their recent accuracy."""

from __future__ import annotations

import pytest

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


def test_weighs_the_more_accurate_predictor_more_and_follows_a_shift() -> None:
    primary, fallback = _Fixed(100.0), _Fixed(500.0)
    guard = GuardedPredictor(primary, fallback, warmup=5, ema=0.2)
    first = _feed(guard, [500] * 30)  # the truth is what the fallback says
    assert first[:5] == [100.0] * 5  # warm-up: the primary alone
    assert first[-1] > 490.0 and guard.primary_weight() < 0.03
    later = _feed(guard, [100] * 30, start=30)  # traffic shifts back to the primary's world
    assert later[-1] < 110.0 and guard.primary_weight() > 0.97
    assert primary.observed == fallback.observed == 60  # both keep learning whatever the weights


def test_the_blend_is_the_inverse_error_weighted_mean() -> None:
    # errors: primary |100-200| = 100, fallback |400-200| = 200 -> weights 2/3 and 1/3
    guard = GuardedPredictor(_Fixed(100.0), _Fixed(400.0), warmup=1, ema=0.5)
    _feed(guard, [200])
    assert guard.error == [100.0, 200.0]
    assert guard.predict_output_tokens(make_request("next", "a")) == pytest.approx(200.0)


def test_blending_beats_both_when_they_err_in_opposite_directions() -> None:
    # one under-predicts by 100, the other over-predicts by 100: each alone has MAE 100
    guard = GuardedPredictor(_Fixed(100.0), _Fixed(300.0), warmup=10)
    guesses = _feed(guard, [200] * 50)
    assert guesses[:10] == [100.0] * 10
    assert all(g == pytest.approx(200.0) for g in guesses[10:])


def test_requests_that_never_finish_do_not_count() -> None:
    guard = GuardedPredictor(_Fixed(1.0), _Fixed(2.0), warmup=0)
    guard.predict_output_tokens(make_request("lost", "a"))
    assert guard.finished == 0 and guard.primary_weight() == 1.0
