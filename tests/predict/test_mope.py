"""MoPE: the router's rule, training determinism, experts per regime, evaluation splits and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equinox_cli.core.errors import UserInputError
from equinox_cli.predict.config import FitConfig
from equinox_cli.predict.dataset import load_collected
from equinox_cli.predict.evaluate import split_masks
from equinox_cli.predict.mope import TARGETS, Router, fit_target, tertiles
from equinox_cli.predict.train import REQUEST_TARGETS, STEP_TARGETS, train_mope
from equinox_cli.predict.trees import TreeParams
from tests.predict.conftest import SMALL


def test_router_rule_expert_k_serves_values_in_its_half_open_interval() -> None:
    router = Router("v", (1.0, 2.0))
    values = np.array([-5.0, 1.0, 1.0000001, 2.0, 2.5, np.inf])
    assert router.route(values).tolist() == [0, 0, 1, 1, 2, 2]
    assert router.n_experts == 3


def test_tertiles_spread_ties() -> None:
    low, high = tertiles(np.array([0.0] * 90 + [5.0, 7.0, 9.0]))
    assert low == 0.0 and high == 7.0
    assert tertiles(np.arange(9.0)) == pytest.approx((8 / 3, 16 / 3))


def test_fit_target_trains_an_expert_per_populated_regime_only() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((1000, len(TARGETS["step_time_s"].features)))
    route = np.concatenate([np.zeros(700), np.full(290, 0.3), np.full(10, 0.9)])  # prefill-heavy: 10 rows
    y = x[:, 0] + route
    config = FitConfig(min_expert_rows=50, trees=TreeParams(max_iter=10), expert_trees=TreeParams(max_iter=5))
    mope, single = fit_target(TARGETS["step_time_s"], x, y, route, config)
    assert mope.router is not None and mope.router.thresholds == (0.0, 0.5)
    assert [e is not None for e in mope.experts] == [True, True, False]
    assert single.router is None and single.base is mope.base
    # the routed correction changes predictions only where an expert exists
    rows = route == 0.9
    np.testing.assert_array_equal(mope.predict(x[rows], route[rows]), single.predict(x[rows], route[rows]))
    assert not np.array_equal(mope.predict(x[~rows], route[~rows]), single.predict(x[~rows], route[~rows]))


def test_splits_hold_out_rows_clients_and_the_latest_arrivals() -> None:
    order = np.arange(100.0)
    clients = np.array([f"c{i % 10}" for i in range(100)])
    train, test = split_masks(order, clients, "random", seed=1)  # type: ignore[misc]
    assert test.sum() == 20 and not (train & test).any()
    train, test = split_masks(order, clients, "clients", seed=1)  # type: ignore[misc]
    assert set(clients[test]).isdisjoint(set(clients[train])) and len(set(clients[test])) == 2
    train, test = split_masks(order, clients, "shift", seed=1)  # type: ignore[misc]
    assert order[test].min() > order[train].max()
    assert split_masks(order, np.array(["one"] * 100), "clients", seed=1) is None


def test_train_mope_reports_every_split_target_and_baseline(collected_dir: Path) -> None:
    stages: list[str] = []
    result = train_mope(load_collected([collected_dir]), SMALL, stages.append)
    m = result.metrics
    # every fit is announced before it runs (train-mope's progress line)
    fits = {(s, t) for s, t in zip(m["split"], m["target"], strict=True) if t != "throughput_tokens_per_s"}
    assert len(stages) == len(fits) + 1
    assert stages[0].startswith("fitting output_tokens (random split")
    assert stages[-1] == "fitting the step-time model"
    out = m[m["target"] == "output_tokens"]
    assert set(out["split"]) == {"random", "clients", "shift"}
    assert set(out["predictor"]) == {"mope", "single", "constant", "moving-average", "oracle"}
    assert (out[out["predictor"] == "oracle"]["mae"] == 0).all()
    assert set(m["target"]) == {*REQUEST_TARGETS, *STEP_TARGETS, "throughput_tokens_per_s"}
    random_out = out[out["split"] == "random"].set_index("predictor")["mae"]
    # the learned models use text and client history: they must beat the constant guess
    assert random_out["mope"] < random_out["constant"] and random_out["single"] < random_out["constant"]
    step = m[(m["target"] == "step_time_s") & (m["split"] == "random")].set_index("predictor")["mae"]
    assert step["mope"] < 0.2 * step["constant"]
    assert result.step_fit is not None and result.step_fit.r2 > 0.999  # the simulator's model is linear
    assert set(result.predictions["split"]) == {"random", "clients", "shift"}


def test_training_twice_gives_bit_identical_models(collected_dir: Path) -> None:
    data = load_collected([collected_dir])
    a, b = train_mope(data, SMALL), train_mope(data, SMALL)
    assert a.metrics.equals(b.metrics)
    for name, model in a.mope.items():
        other = b.mope[name]
        assert np.array_equal(model.base.value, other.base.value)
        for e, f in zip(model.experts, other.experts, strict=True):
            assert (e is None) == (f is None) and (e is None or np.array_equal(e.threshold, f.threshold))


def test_too_few_rows_is_a_user_error(collected_dir: Path) -> None:
    data = load_collected([collected_dir])
    tiny = data.requests.head(30)
    with pytest.raises(UserInputError, match="need at least 50"):
        train_mope(type(data)(tiny, data.steps, data.sources), SMALL)


def test_step_time_fit_recovers_the_profile_and_calibrates_the_simulator(tmp_path: Path) -> None:
    from equinox_cli import api
    from equinox_cli.engines.sim.profiles import get_profile
    from equinox_cli.predict.step_model import fit_step_time
    from equinox_cli.workload.build import WorkloadSpec

    # a100: one model served (the a10g profile adds S-LoRA's per-adapter cost, which the fit's
    # features do not see)
    out = tmp_path / "a100"
    spec = WorkloadSpec(source="overload", duration_s=30, time_scale=8.0)
    api.collect(api.CollectConfig(spec, profile="a100-llama2-7b", out=out))
    steps = load_collected([out]).steps
    fit = fit_step_time(steps)
    truth = get_profile("a100-llama2-7b")
    assert fit.c0_s == pytest.approx(truth.c0_s, rel=1e-6)
    assert fit.c_decode_s == pytest.approx(truth.c_d_s, rel=1e-6)
    assert fit.c_prefill_s - fit.c_kv_s == pytest.approx(truth.c_p_s, rel=1e-4)
    assert fit.r2 > 0.999999


def test_step_fit_keeps_the_scatter_of_measured_step_times_as_residual_quantiles() -> None:
    from equinox_cli.predict.step_model import RESIDUAL_QUANTILES, fit_step_time

    rng = np.random.default_rng(3)
    n = 2000
    prefill, decode = rng.integers(0, 2000, n), rng.integers(1, 64, n)
    context = decode * rng.integers(100, 1000, n)
    model = 0.01 + 1e-4 * prefill + 2e-4 * decode + 1e-6 * context
    noise = rng.lognormal(0.0, 0.3, n)
    steps = pd.DataFrame(
        {
            "prefill_tokens": prefill,
            "decode_seqs": decode,
            "context_tokens": context,
            "step_time_s": model * noise,
        }
    )
    ratios = np.array(fit_step_time(steps).residual_ratios)
    assert len(ratios) == RESIDUAL_QUANTILES and (np.diff(ratios) >= 0).all()
    # the ratios' spread is the noise's (fitted ≈ model · E[noise], so compare normalised)
    spread = ratios[int(0.9 * len(ratios))] / ratios[int(0.1 * len(ratios))]
    assert spread == pytest.approx(np.exp(0.3 * 2 * 1.2816), rel=0.1)
