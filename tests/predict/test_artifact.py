"""Artifacts: round trip, refusal of tampered or mismatched ones, online/offline agreement."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equinox_cli.core.errors import UserInputError
from equinox_cli.predict.artifact import ARTIFACT_SCHEMA, load_artifact, save_artifact
from equinox_cli.predict.features import OUTPUT_FEATURES, request_feature_frame
from equinox_cli.predict.online import ArtifactPredictor
from equinox_cli.workload.build import build_workload
from tests.predict.conftest import arena_spec


def _copy(artifact_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(artifact_dir, target)
    return target


def test_artifact_layout_and_manifest(artifact_dir: Path) -> None:
    manifest = json.loads((artifact_dir / "manifest.json").read_text())
    assert manifest["schema"] == ARTIFACT_SCHEMA and manifest["seed"] == 7
    assert manifest["targets"]["output_tokens"]["features"] == list(OUTPUT_FEATURES)
    assert len(manifest["targets"]["output_tokens"]["router"]["thresholds"]) == 2
    assert {"numpy", "scikit-learn", "pandas"} <= set(manifest["versions"])
    assert set(pd.read_parquet(artifact_dir / "metrics.parquet")["split"]) == {"random", "clients", "shift"}
    assert len(pd.read_parquet(artifact_dir / "predictions.parquet")) > 0


def test_round_trip_predicts_the_same_as_the_offline_models(artifact_dir: Path, collected_dir: Path) -> None:
    artifact = load_artifact(artifact_dir)
    requests = pd.read_parquet(collected_dir / "requests.parquet")
    frame = request_feature_frame(requests)
    model = artifact.mope["output_tokens"]
    x = frame[list(OUTPUT_FEATURES)].to_numpy(dtype=float)
    offline = model.predict(x, frame[model.spec.route_column].to_numpy())
    # online: replay the same events through the predictor (finishes before arrivals at ties)
    predictor = ArtifactPredictor(artifact)
    workload, _ = build_workload(arena_spec())
    by_id = {it.request.request_id: it.request for it in workload.items}
    events = sorted(
        [(r.arrival_s, 1, i) for i, r in enumerate(requests.itertuples())]
        + [(r.finish_s, 0, i) for i, r in enumerate(requests.itertuples())]
    )
    online = np.empty(len(requests))
    for _, kind, i in events:
        row = requests.iloc[i]
        request = by_id[row["request_id"]]
        if kind == 0:
            predictor.observe(request, int(row["output_tokens"]))
        else:
            online[i] = predictor.predict_output_tokens(request)
    np.testing.assert_allclose(online, offline, rtol=1e-12)


def test_weights_changed_after_training_are_refused(artifact_dir: Path, tmp_path: Path) -> None:
    copy = _copy(artifact_dir, tmp_path)
    with np.load(copy / "weights.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["output_tokens.base.value"] = arrays["output_tokens.base.value"] * 2
    np.savez(copy / "weights.npz", **arrays)
    with pytest.raises(UserInputError, match=r"SHA-256"):
        load_artifact(copy)


def test_other_schema_version_and_feature_list_are_refused(artifact_dir: Path, tmp_path: Path) -> None:
    copy = _copy(artifact_dir, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "schema": "equinox.mope/0"}))
    with pytest.raises(UserInputError, match=r"schema 'equinox\.mope/0'"):
        load_artifact(copy)
    manifest["targets"]["output_tokens"]["features"] = ["prompt_tokens_log"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserInputError, match="feature list differs"):
        load_artifact(copy)


def test_pickled_weights_are_never_loaded(artifact_dir: Path, tmp_path: Path) -> None:
    copy = _copy(artifact_dir, tmp_path)
    np.savez(copy / "weights.npz", evil=np.array([object()], dtype=object))
    manifest = json.loads((copy / "manifest.json").read_text())
    import hashlib

    manifest["weights_sha256"] = hashlib.sha256((copy / "weights.npz").read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserInputError, match=r"unreadable|weights lack"):
        load_artifact(copy)


def test_missing_or_broken_manifest(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"no manifest\.json"):
        load_artifact(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserInputError, match="not valid JSON"):
        load_artifact(tmp_path)


def test_failed_save_leaves_no_half_written_artifact(artifact_dir: Path, tmp_path: Path) -> None:
    artifact = load_artifact(artifact_dir)

    def boom(path: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_artifact(tmp_path / "new", artifact.mope, {"name": "new"}, {"metrics.parquet": boom})
    assert list(tmp_path.iterdir()) == []


def test_prediction_cost_sanity_bound(artifact_dir: Path) -> None:
    """A loose guard against pathological regressions (25x the target); benchmarks/bench_mope.py
    measures the real figures."""
    predictor = ArtifactPredictor(load_artifact(artifact_dir))
    workload, _ = build_workload(arena_spec(limit=200))
    requests = [it.request for it in workload.items]
    for request in requests:
        predictor.prepare(request)
    start = time.perf_counter()
    for _ in range(5):
        predictor.predict_batch(requests[:64])
    per_request_s = (time.perf_counter() - start) / (5 * 64)
    assert per_request_s < 500e-6
