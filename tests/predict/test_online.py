"""MoPE online: every target the artifact carries reaches the scheduler, as the offline models say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from equinox_cli.core.types import EngineState
from equinox_cli.predict.artifact import load_artifact
from equinox_cli.predict.baselines import MovingAveragePredictor
from equinox_cli.predict.features import (
    LATENCY_FEATURES,
    STEP_FEATURES,
    request_feature_frame,
    step_feature_frame,
)
from equinox_cli.predict.guarded import GuardedPredictor
from equinox_cli.predict.online import ArtifactPredictor
from tests.predict.conftest import replay_events


def test_latency_forecasts_match_the_offline_latency_models(artifact_dir: Path, collected_dir: Path) -> None:
    """Replaying the collected run's events, the forecast at each arrival (history so far, the load
    the request saw) equals the offline TTFT and E2E models on the training features."""
    artifact = load_artifact(artifact_dir)
    requests = pd.read_parquet(collected_dir / "requests.parquet").head(400)
    frame = request_feature_frame(requests)
    x = frame[list(LATENCY_FEATURES)].to_numpy(dtype=float)
    offline = {
        name: artifact.mope[name].predict(x, frame[artifact.mope[name].spec.route_column].to_numpy())
        for name in ("ttft_s", "e2e_s")
    }
    predictor = ArtifactPredictor(artifact)
    online = {"ttft_s": np.empty(len(requests)), "e2e_s": np.empty(len(requests))}
    for kind, i, request in replay_events(requests):
        row = requests.iloc[i]
        if kind == 0:
            predictor.observe(request, int(row["output_tokens"]))
            continue
        load = EngineState(
            row["running_at_arrival"], row["waiting_at_arrival"], row["kv_used_frac_at_arrival"]
        )
        forecast = predictor.forecast(request, load)
        assert forecast.output_tokens == predictor.predict_output_tokens(request)
        online["ttft_s"][i], online["e2e_s"][i] = forecast.ttft_s, forecast.e2e_s
    for name in online:
        np.testing.assert_allclose(online[name], offline[name], rtol=1e-12)
    assert online["e2e_s"].mean() > online["ttft_s"].mean() > 0


def test_step_predictions_match_the_offline_step_models(artifact_dir: Path, collected_dir: Path) -> None:
    artifact = load_artifact(artifact_dir)
    steps = pd.read_parquet(collected_dir / "steps.parquet").head(500)
    frame = step_feature_frame(steps)
    x = frame[list(STEP_FEATURES)].to_numpy(dtype=float)
    route = frame["route_step"].to_numpy()
    predictor = GuardedPredictor(ArtifactPredictor(artifact), MovingAveragePredictor())  # steps: MoPE's
    online = [
        predictor.predict_step(
            int(r.prefill_tokens),
            int(r.decode_seqs),
            int(r.context_tokens),
            EngineState(r.running, 0, r.kv_used_frac),
        )
        for r in frame.itertuples()
    ]
    assert all(f is not None for f in online)
    np.testing.assert_allclose(
        [f.step_time_s for f in online if f], artifact.mope["step_time_s"].predict(x, route), rtol=1e-12
    )
    np.testing.assert_allclose(
        [f.gpu_util for f in online if f],
        np.clip(artifact.mope["gpu_util"].predict(x, route), 0, 1),
        rtol=1e-12,
    )
    assert MovingAveragePredictor().predict_step(10, 1, 10, EngineState(1, 0, 0.1)) is None
