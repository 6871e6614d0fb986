"""VTC's moving average by hand, and which predictors say their forecasts carry latency."""

from __future__ import annotations

from equinox_cli.core.protocols import RequestForecast
from equinox_cli.core.types import EngineState, Request
from equinox_cli.predict.baselines import MovingAveragePredictor, OraclePredictor
from equinox_cli.predict.guarded import GuardedPredictor
from tests.conftest import ConstantPredictor, make_request


def test_the_moving_average_is_the_mean_of_the_clients_last_window_outputs() -> None:
    predictor = MovingAveragePredictor(window=3, prior_tokens=128)
    a, b = make_request("ra", "a", max_tokens=1000), make_request("rb", "b", max_tokens=1000)
    assert predictor.predict_output_tokens(a) == 128  # nothing finished: the prior
    assert predictor.predict_output_tokens(make_request("x", "a", max_tokens=50)) == 50  # capped
    for tokens in (10, 20, 30):
        predictor.observe(a, tokens)
    assert predictor.predict_output_tokens(a) == 20
    predictor.observe(a, 100)  # the window slides: 10 leaves
    assert predictor.predict_output_tokens(a) == 50
    predictor.observe(a, 200)
    predictor.observe(a, 300)  # only the last three: 100, 200, 300
    assert predictor.predict_output_tokens(a) == 200
    # a client with no history gets the mean over every finished request (6 so far)
    assert predictor.predict_output_tokens(b) == (10 + 20 + 30 + 100 + 200 + 300) / 6


class _Forecasting(ConstantPredictor):
    def forecast(self, request: Request, load: EngineState) -> RequestForecast:
        return RequestForecast(self.tokens, 1.0, 2.0)


def test_only_a_predictor_that_overrides_forecast_says_it_forecasts_latency() -> None:
    assert not MovingAveragePredictor().forecasts_latency
    assert not OraclePredictor({}).forecasts_latency
    assert not ConstantPredictor(5).forecasts_latency
    assert _Forecasting(5).forecasts_latency
    assert GuardedPredictor(_Forecasting(5), MovingAveragePredictor()).forecasts_latency
    assert not GuardedPredictor(ConstantPredictor(5), MovingAveragePredictor()).forecasts_latency


def test_the_oracle_knows_the_output_the_engine_will_produce_when_it_cut_max_tokens() -> None:
    """The simulated server cuts max_tokens to the room the context leaves and the output with it:
    the oracle then predicts the cut output, not the trace's."""
    oracle = OraclePredictor({"r1": 1500, "r2": 40})
    assert oracle.predict_output_tokens(make_request("r1", "a", 0.0, 3000, 1096)) == 1096
    assert oracle.predict_output_tokens(make_request("r2", "a", 0.0, 100, 2048)) == 40
