"""Equinox: the bound, no drift, the latency term, the GPU-time counter and the order within a client."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.protocols import RequestForecast, StepForecast
from equinox_cli.core.types import Completion, EngineState, Request
from equinox_cli.engines.sim.engine import SimEngine
from equinox_cli.engines.sim.profiles import get_profile
from equinox_cli.policies import make_policy
from equinox_cli.policies.equinox import latency_excess
from equinox_cli.policies.gpu_time import GpuTimeModel, prior_from_predictor
from equinox_cli.predict.baselines import MovingAveragePredictor, OutputOnly
from equinox_cli.workload.build import WorkloadSpec, build_workload
from tests.conftest import ConstantPredictor, make_request, make_workload


def _run(workload, name: str, profile, predictor=None, **params: str):  # type: ignore[no-untyped-def]
    policy = make_policy(name, params, predictor or MovingAveragePredictor())
    result = SimEngine(profile, counter_sample_s=0.05).run(workload, policy)
    return policy, pd.DataFrame(result.requests), pd.DataFrame(result.counters)


TIGHT = replace(get_profile("a10g-llama2-7b"), admission="vllm", kv_capacity_tokens=2000, max_num_seqs=32)


def test_without_latency_term_and_order_equinox_is_exactly_vtc() -> None:
    """α = 1, Λ = 0, FIFO within a client: the same admissions and counters as VTC, step by step."""
    rows = [(f"c{i % 3}", i * 0.01, 50 + 37 * (i % 7), 20 + 53 * (i % 5)) for i in range(150)]
    workload = make_workload(rows)
    _, eq, eq_counters = _run(workload, "equinox", TIGHT, alpha="1", latency_tokens="0", order="fifo")
    _, vtc, vtc_counters = _run(workload, "vtc", TIGHT)
    assert eq["admitted_s"].tolist() == vtc["admitted_s"].tolist()
    assert np.allclose(eq_counters["counter"], vtc_counters["counter"])


class _HfService:
    """Equinox whose counters() (what the engine samples) are its HF service, the latency term
    added back. A wrapper: the compiled policies cannot be patched (equinox_cli/native.py)."""

    def __init__(self, policy: Any, latency_tokens: float) -> None:
        self.policy, self.latency_tokens = policy, latency_tokens

    def __len__(self) -> int:
        return len(self.policy)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)

    def counters(self) -> dict[str, float]:
        hf, badness = self.policy.counters(), self.policy.latency_badness()
        return {c: hf[c] + self.latency_tokens * badness[c] for c in hf}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompt_a=st.integers(10, 400),
    prompt_b=st.integers(10, 400),
    out_a=st.integers(20, 300),
    out_b=st.integers(20, 300),
    guess=st.sampled_from([1.0, 50.0, 2000.0]),
    latency_tokens=st.sampled_from([0.0, 300.0, 5000.0]),
    slack=st.sampled_from([0.0, 700.0, 3000.0]),
    slack_order=st.sampled_from(["size", "slowdown"]),
)
def test_service_difference_bound_holds_with_latency_term_and_mispredictions(
    prompt_a: int,
    prompt_b: int,
    out_a: int,
    out_b: int,
    guess: float,
    latency_tokens: float,
    slack: float,
    slack_order: str,
) -> None:
    """Two backlogged clients: the gap of their HF service (HF + α·Λ·b, i.e. without the latency
    term) stays within VTC's 2·max(w_p·L_input, w_q·M) plus α·Λ plus the window δ, whatever the
    predictor says (with δ the smaller client's requests always rank first: unbounded, it would
    starve the other)."""
    rows = [("a", i * 0.001, prompt_a, out_a) for i in range(150)]
    rows += [("b", i * 0.001, prompt_b, out_b) for i in range(150)]
    params = {"alpha": "1", "latency_tokens": str(latency_tokens), "ttft_slo_s": "0.05"}
    params |= {"size_slack_tokens": str(slack), "slack_order": slack_order}
    policy = _HfService(make_policy("equinox", params, ConstantPredictor(guess)), latency_tokens)
    badness = policy.latency_badness()
    result = SimEngine(TIGHT, counter_sample_s=0.05).run(make_workload(rows), policy)  # type: ignore[arg-type]
    assert min(badness.values()) > 0  # the latency term was active for both clients
    counters = pd.DataFrame(result.counters)
    both = counters.groupby("time_s").filter(lambda g: g["backlogged"].sum() == 2)
    gaps = both.groupby("time_s")["counter"].agg(lambda s: s.max() - s.min())
    bound = 2 * max(max(prompt_a, prompt_b), 2 * TIGHT.kv_capacity_tokens) + latency_tokens + slack
    assert len(gaps) > 5
    assert gaps.max() <= bound


def test_counters_do_not_drift_under_misprediction_and_preemption() -> None:
    """One client: UFC equals VTC's counter exactly (preemptions included), and RFC, charged from
    predictions at admission, settles to the same GPU seconds whatever was predicted."""
    workload = make_workload([("a", 0.0, 100 + i, 300 + 17 * i) for i in range(40)])
    tight = replace(get_profile("a100-llama2-7b"), kv_capacity_tokens=8000, max_num_seqs=64)
    vtc_policy, _, _ = _run(workload, "vtc", tight)
    rfc = []
    for guess in (5.0, 5000.0):
        policy, requests, _ = _run(
            workload, "equinox", tight, ConstantPredictor(guess), alpha="1", order="fifo"
        )
        assert requests["preemptions"].sum() > 0
        assert policy.user_counters()["a"] == pytest.approx(vtc_policy.counters()["a"], rel=1e-12)  # type: ignore[attr-defined]
        rfc.append(policy.resource_counters()["a"])  # type: ignore[attr-defined]
    assert rfc[0] == pytest.approx(rfc[1], rel=1e-9) and rfc[0] > 0


def test_latency_acts_at_the_lift_by_at_most_alpha_lambda() -> None:
    """A client whose last request waited a million seconds (b → 1, never 1) comes back: it is
    lifted to the backlogged reference's HF less α·Λ·b, so it goes first, by less than α·Λ."""
    params = {"alpha": "0.5", "latency_tokens": "1000", "latency_ema": "1", "ttft_target": "slo"}
    policy = make_policy("equinox", params, ConstantPredictor(0))
    b1 = make_request("b1", "b", 0.0, prompt=100)
    policy.on_arrival(b1, 0.0)
    policy.pick_next(0.0)  # HF_b = α·100 + β·100 (no GPU price known yet: the request's tokens)
    for i in range(3):
        policy.on_arrival(make_request(f"a{i}", "a", 0.0, prompt=4000), 0.0)
    policy.pick_next(0.0)  # a was lifted to b's 100, then charged 4000: HF_a = 4100
    assert policy.counters()["a"] == pytest.approx(4100)
    policy.on_finish(Completion(b1, "finished", 1, 1e6, first_token_s=1e6, admitted_s=0.0))
    badness = policy.latency_badness()["b"]  # type: ignore[attr-defined]
    assert badness == pytest.approx(latency_excess(1e6, 2.0)) and badness < 1
    # b is idle: only its finish correction moved it (β·w_q·1 output token)
    assert policy.counters()["b"] == pytest.approx(101)
    policy.on_arrival(make_request("b2", "b", 1e6, prompt=100), 1e6)
    assert policy.counters()["b"] == pytest.approx(4100 - 0.5 * 1000 * badness)
    assert policy.counters()["b"] > 4100 - 0.5 * 1000
    picked = policy.pick_next(1e6)
    assert picked is not None and picked.request_id == "b2"
    assert latency_excess(1.0, 2.0) == 0.0 and latency_excess(4.0, 2.0) == pytest.approx(0.5)


def test_continuously_backlogged_weighted_clients_are_served_exactly_as_vtc() -> None:
    """VTC's weighted overload at 3× load: every client always has requests waiting, so the
    latency term never acts and Equinox (FIFO, like VTC) is VTC to the request. With the latency
    term inside HF (the earlier design) its moves set off oscillations of whole admission waves:
    2–17× VTC's service difference on this workload."""
    workload, _ = build_workload(
        WorkloadSpec(source="overload-weighted", seed=8, time_scale=3.0, duration_s=120)
    )
    profile = get_profile("a10g-llama2-7b")
    equinox = pd.DataFrame(
        SimEngine(profile)
        .run(workload, make_policy("equinox", {"order": "fifo"}, MovingAveragePredictor()))
        .requests
    )
    vtc = pd.DataFrame(
        SimEngine(profile).run(workload, make_policy("vtc", {}, MovingAveragePredictor())).requests
    )
    pd.testing.assert_series_equal(equinox["admitted_s"], vtc["admitted_s"])


def test_measured_ttft_and_tpot_feed_the_latency_term_at_finish() -> None:
    policy = make_policy(
        "equinox",
        {"latency_ema": "1", "ttft_target": "slo", "ttft_slo_s": "1", "tpot_slo_s": "0.1"},
        ConstantPredictor(10),
    )
    request = make_request("a1", "a", 0.0, prompt=10, max_tokens=100)
    policy.on_arrival(request, 0.0)
    policy.pick_next(0.0)
    # TTFT 0.5 s (within SLO) but 11 tokens in 4 s after the first: TPOT 0.4 s, 4× its SLO
    policy.on_finish(Completion(request, "finished", 11, 4.5, first_token_s=0.5, admitted_s=0.0))
    assert policy.latency_badness()["a"] == pytest.approx(0.75)  # type: ignore[attr-defined]


def test_shortest_predicted_first_within_a_client_with_aging() -> None:
    def order(aging: str) -> list[str]:
        policy = make_policy("equinox", {"aging_tokens_per_s": aging}, ConstantPredictor(0))
        policy.on_arrival(make_request("long", "a", 0.0, prompt=1000), 0.0)
        policy.on_arrival(make_request("short", "a", 1.0, prompt=10), 1.0)
        return [policy.pick_next(2.0).request_id for _ in range(2)]  # type: ignore[union-attr]

    assert order("50") == ["short", "long"]  # 10 + 50·1 < 1000 + 0
    assert order("5000") == ["long", "short"]  # aged: 1000 < 10 + 5000·1
    fifo = make_policy("equinox", {"order": "fifo"}, ConstantPredictor(0))
    fifo.on_arrival(make_request("long", "a", 0.0, prompt=1000), 0.0)
    fifo.on_arrival(make_request("short", "a", 1.0, prompt=10), 1.0)
    assert fifo.pick_next(2.0).request_id == "long"  # type: ignore[union-attr]


def test_a_rank_cap_bounds_how_long_later_arrivals_overtake_a_large_request() -> None:
    def order(cap: str, second_arrival_s: float) -> list[str]:
        policy = make_policy("equinox", {"rank_cap_tokens": cap}, ConstantPredictor(0))
        policy.on_arrival(make_request("long", "a", 0.0, prompt=1000), 0.0)
        later = make_request("short", "a", second_arrival_s, prompt=10)
        policy.on_arrival(later, second_arrival_s)
        return [policy.pick_next(30.0).request_id for _ in range(2)]  # type: ignore[union-attr]

    assert order("0", 15.0) == ["short", "long"]  # uncapped: 10 + 50·15 < 1000
    assert order("500", 15.0) == ["long", "short"]  # capped: 500 < 10 + 750
    assert order("500", 5.0) == ["short", "long"]  # within 500 / 50 s it still overtakes
    with pytest.raises(UserInputError, match="rank_cap_tokens must be >= 0"):
        make_policy("equinox", {"rank_cap_tokens": "-1"}, ConstantPredictor(0))


def test_a_requeued_request_goes_back_to_the_front_of_its_client() -> None:
    policy = make_policy("equinox", {}, ConstantPredictor(0))
    for rid, prompt in (("big", 900), ("small", 5)):
        policy.on_arrival(make_request(rid, "a", 0.0, prompt=prompt), 0.0)
    first = policy.pick_next(0.0)
    second = policy.pick_next(0.0)
    policy.requeue(second, 0.0)  # type: ignore[arg-type]
    assert first.request_id == "small" and policy.pick_next(0.0).request_id == "big"  # type: ignore[union-attr]


def test_gpu_time_model_learns_the_step_cost_and_prices_long_contexts_higher() -> None:
    model = GpuTimeModel(refit_steps=50)
    rng = np.random.default_rng(0)
    true = np.array([0.01, 1e-4, 2e-4, 1e-6])
    for _ in range(400):
        p, n, c = int(rng.integers(0, 2000)), int(rng.integers(1, 64)), int(rng.integers(0, 100_000))
        step_s = true @ [1.0, p, n, c + p]
        model.observe(p, n, c, step_s, 0.8)
    assert np.allclose(model.coef, true, rtol=1e-6)
    assert model.request_units(4000, 100) > model.request_units(100, 100) > 0


def test_resource_counter_charges_the_gpu_time_a_client_costs() -> None:
    """Same tokens, longer context: the long-context client is charged more GPU seconds."""
    workload = make_workload(
        [("short", i * 0.05, 100, 100) for i in range(40)]
        + [("long", i * 0.05, 3000, 100) for i in range(40)]
    )
    profile = replace(get_profile("a100-llama2-7b"), kv_capacity_tokens=200_000)
    policy, requests, _ = _run(workload, "equinox", profile)
    assert (requests["status"] == "finished").all()
    rfc = policy.resource_counters()  # type: ignore[attr-defined]
    assert rfc["long"] > 2 * rfc["short"] > 0


def test_alone_target_scales_with_the_requests_own_prefill() -> None:
    """Same wait, longer prompt: a smaller latency excess (its own prefill takes longer alone)."""
    excess = {}
    for prompt in (10, 4000):
        policy = make_policy("equinox", {"latency_ema": "1", "ttft_target": "alone"}, ConstantPredictor(0))
        policy.on_arrival(make_request("a1", "a", 0.0, prompt=prompt), 0.0)
        policy.pick_next(2.0)
        excess[prompt] = policy.latency_badness()["a"]  # type: ignore[attr-defined]
        target = 4.0 * policy.gpu.prefill_s(prompt)  # type: ignore[attr-defined]
        assert excess[prompt] == pytest.approx(latency_excess(2.0 + target / 4.0, target))
    assert excess[10] > excess[4000] > 0


def test_a_flooders_wait_behind_its_own_requests_is_not_counted() -> None:
    """Ten requests at t=0 admitted one per second: each waited only since the previous admission."""
    policy = make_policy(
        "equinox", {"latency_ema": "1", "ttft_target": "slo", "ttft_slo_s": "2"}, ConstantPredictor(0)
    )
    for i in range(10):
        policy.on_arrival(make_request(f"r{i}", "a", 0.0, prompt=10), 0.0)
    for second in range(10):
        policy.pick_next(float(second))
    assert policy.latency_badness()["a"] == 0.0  # type: ignore[attr-defined]


def test_only_a_request_that_found_its_client_idle_reports_its_wait() -> None:
    """The first of ten requests (its client had nothing waiting) waited 10 s for the others and
    is observed; the nine behind it wait for their client's own turns and are not, so b keeps the
    first one's excess instead of falling back as they are admitted a second apart."""
    policy = make_policy(
        "equinox", {"latency_ema": "1", "ttft_target": "slo", "ttft_slo_s": "2"}, ConstantPredictor(0)
    )
    for i in range(10):
        policy.on_arrival(make_request(f"r{i}", "a", 0.0, prompt=10), 0.0)
    policy.pick_next(10.0)
    first = policy.latency_badness()["a"]  # type: ignore[attr-defined]
    assert first > 0.75  # 1 − 2 / (10 s + its prefill)
    for second in range(11, 20):
        policy.pick_next(float(second))
    assert policy.latency_badness()["a"] == first  # type: ignore[attr-defined]


def test_newcomer_first_puts_a_newly_backlogged_client_ahead_at_equal_service() -> None:
    policy = make_policy("equinox", {"newcomer_first": "true", "latency_tokens": "0"}, ConstantPredictor(0))
    for i in range(3):
        policy.on_arrival(make_request(f"a{i}", "a", 0.0, prompt=100), 0.0)
    policy.pick_next(0.0)  # a's HF: 100
    policy.on_arrival(make_request("b0", "b", 0.1, prompt=100), 0.1)
    assert policy.counters()["b"] == pytest.approx(100.0) and policy.counters()["b"] < 100.0
    assert policy.pick_next(0.1).client_id == "b"  # type: ignore[union-attr]


def _two_clients(**params: str):  # type: ignore[no-untyped-def]
    """Client a (HF 0) waits with a 1,000-token prompt since t = 0; client b, served once (HF 100),
    waits with a 10-token prompt since t = 1."""
    policy = make_policy("equinox", {"latency_tokens": "0", **params}, ConstantPredictor(0))
    policy.on_arrival(make_request("b0", "b", 0.0, prompt=100), 0.0)
    policy.pick_next(0.0)
    policy.on_arrival(make_request("a0", "a", 0.0, prompt=1000), 0.0)  # lifted to b's 100 ...
    policy._add("a", -100.0)  # ... and set back: a's HF 0, b's 100 (test set-up)
    policy.on_arrival(make_request("b1", "b", 1.0, prompt=10), 1.0)
    return policy


def test_the_window_admits_the_better_ranked_request_of_a_client_within_delta() -> None:
    first = lambda **p: _two_clients(**p).pick_next(2.0).client_id  # noqa: E731
    assert first() == "a"  # δ = 0: the lowest HF, as VTC
    assert first(size_slack_tokens="500") == "b"  # b's HF 100 is within 0 + 500; 10 + 50 < 1000
    assert first(size_slack_tokens="50") == "a"  # b's HF is outside the window
    # slowdown so far: a waited 2 s for a long prefill, b 1 s for a prefill ~100× shorter
    assert first(size_slack_tokens="500", slack_order="slowdown") == "b"
    assert first(size_slack_tokens="500", slack_order="slowdown", aging_tokens_per_s="5000") == "b"
    assert first(size_slack_tokens="500", aging_tokens_per_s="5000") == "a"  # aged: 1000 < 10 + 5000


class _Experts(OutputOnly):
    """A predictor with every MoPE target: a TTFT forecast per client, exactly linear step experts."""

    name = "experts"
    STEP = (0.01, 2e-4, 5e-5, 1e-7)

    def __init__(self, ttft_by_client: dict[str, float]) -> None:
        self.ttft_by_client = ttft_by_client

    def prepare(self, request: Request) -> None:
        return None

    def predict_output_tokens(self, request: Request) -> float:
        return 100.0

    def observe(self, request: Request, output_tokens: int) -> None:
        return None

    def forecast(self, request: Request, load: EngineState) -> RequestForecast:
        return RequestForecast(100.0, self.ttft_by_client[request.client_id], None)

    def predict_step(self, prefill: int, seqs: int, context: int, load: EngineState) -> StepForecast:
        c0, c_p, c_d, c_kv = self.STEP
        return StepForecast(c0 + c_p * prefill + c_d * seqs + c_kv * (context + prefill), 0.8)


def test_the_gpu_cost_model_starts_from_the_predictors_step_experts() -> None:
    """RFC's first charges are MoPE's predicted GPU seconds: the step experts linearised (exact for
    linear ones) and priced at the busy seconds per unit they imply; no step experts, no prior."""
    prior = prior_from_predictor(_Experts({}))
    assert prior is not None and np.allclose(prior.coef, _Experts.STEP, rtol=1e-6)
    assert prior_from_predictor(MovingAveragePredictor()) is None
    policy = make_policy("equinox", {"alpha": "0.5"}, _Experts({"a": 0.1}))
    gpu = policy.gpu  # type: ignore[attr-defined]
    assert np.allclose(gpu.coef, prior.coef) and gpu.price_s() == pytest.approx(prior.price_s)
    assert 0.8 < prior.price_s < 2.0  # busy per marginal unit: the fixed cost and 80 % busy folded in
    policy.on_arrival(make_request("r0", "a", prompt=500, max_tokens=400), 0.0)
    policy.pick_next(0.0)
    predicted_s = gpu.request_units(500, 100.0) * prior.price_s
    assert policy.resource_counters()["a"] == pytest.approx(predicted_s)  # type: ignore[attr-defined]
    assert GpuTimeModel().price_s() == 1.0  # without a prior: relative units until a step is seen


def test_a_forecast_latency_moves_its_client_at_arrival_before_anything_runs() -> None:
    """With Λ > 0, a request MoPE expects to miss its TTFT SLO (8 s forecast, 2 s SLO) raises its
    client's latency term on arrival, before it has waited: z, arriving while a (HF 1,000) is
    backlogged, is lifted to 1,000 − Λ·0.75 and goes first; a predictor without latency experts,
    or Λ = 0, lifts it to a's 1,000."""
    forecasts = {"a": 0.5, "z": 8.0}

    def lifted_to(predictor, latency_tokens: str) -> float:  # type: ignore[no-untyped-def]
        params = {"latency_tokens": latency_tokens, "ttft_slo_s": "2", "order": "fifo"}
        policy = make_policy("equinox", params, predictor)
        for i in range(2):
            policy.on_arrival(make_request(f"a{i}", "a", prompt=1000), 0.0)
        policy.pick_next(0.0)
        policy.on_arrival(make_request("z0", "z"), 0.0)
        lifted = policy.counters()["z"]
        if latency_tokens != "0" and type(predictor) is _Experts:
            badness = policy.latency_badness()  # type: ignore[attr-defined]
            assert badness["z"] == pytest.approx(1 - 2 / 8) and badness["a"] == 0
            picked = policy.pick_next(0.0)
            assert picked is not None and picked.client_id == "z"
        return lifted

    assert lifted_to(_Experts(forecasts), "100") == pytest.approx(1000 - 100 * 0.75)
    assert lifted_to(_Experts(forecasts), "0") == pytest.approx(1000)
    assert lifted_to(MovingAveragePredictor(), "100") == pytest.approx(1000)
    assert lifted_to(_Silent(forecasts), "100") == pytest.approx(1000)  # says it has none: never asked


class _Silent(_Experts):
    """Forecasts latency but says it does not (`forecasts_latency`): Equinox must not ask it."""

    forecasts_latency = False

    def forecast(self, request: Request, load: EngineState) -> RequestForecast:
        raise AssertionError("forecast() called although forecasts_latency is False")
