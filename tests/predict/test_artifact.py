"""Artifacts: round trip, refusal of tampered or mismatched ones, online/offline agreement."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from equinox_cli.core.errors import UserInputError
from equinox_cli.predict.artifact import (
    ARTIFACT_SCHEMA,
    MAX_DEPTH,
    _manifest_sha256,
    load_artifact,
    save_artifact,
    step_fit,
)
from equinox_cli.predict.features import OUTPUT_FEATURES, request_feature_frame
from equinox_cli.predict.online import ArtifactPredictor
from equinox_cli.workload.build import build_workload
from tests.predict.conftest import arena_spec, replay_events


def _copy(artifact_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(artifact_dir, target)
    return target


def _rewrite(copy: Path, manifest: dict[str, Any], rehash: bool = True) -> None:
    """Edit the manifest as a careful tamperer would: with its hash recomputed."""
    if rehash:
        manifest = {**manifest, "manifest_sha256": _manifest_sha256(manifest)}
    (copy / "manifest.json").write_text(json.dumps(manifest))


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
    online = np.empty(len(requests))
    for kind, i, request in replay_events(requests):
        if kind == 0:
            predictor.observe(request, int(requests["output_tokens"].iloc[i]))
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
    _rewrite(copy, {**manifest, "schema": "equinox.mope/0"})
    with pytest.raises(UserInputError, match=r"schema 'equinox\.mope/0'"):
        load_artifact(copy)
    manifest["targets"]["output_tokens"]["features"] = ["prompt_tokens_log"]
    _rewrite(copy, manifest)
    with pytest.raises(UserInputError, match="feature list differs"):
        load_artifact(copy)


def test_pickled_weights_are_never_loaded(artifact_dir: Path, tmp_path: Path) -> None:
    copy = _copy(artifact_dir, tmp_path)
    np.savez(copy / "weights.npz", evil=np.array([object()], dtype=object))
    manifest = json.loads((copy / "manifest.json").read_text())
    import hashlib

    manifest["weights_sha256"] = hashlib.sha256((copy / "weights.npz").read_bytes()).hexdigest()
    _rewrite(copy, manifest)
    with pytest.raises(UserInputError, match=r"unreadable|weights lack"):
        load_artifact(copy)


def test_a_manifest_edited_without_its_hash_is_refused(artifact_dir: Path, tmp_path: Path) -> None:
    copy = _copy(artifact_dir, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["targets"]["output_tokens"]["base"]["baseline"] += 1.0
    _rewrite(copy, manifest, rehash=False)
    with pytest.raises(UserInputError, match="does not match its manifest_sha256"):
        load_artifact(copy)
    del manifest["manifest_sha256"]  # an artifact from before the hash
    _rewrite(copy, manifest, rehash=False)
    with pytest.raises(UserInputError, match="manifest_sha256"):
        load_artifact(copy)


def _set(manifest: dict[str, Any], dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    node = manifest
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value


DELETE = object()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "targets.output_tokens.base.depth",
            10**9,
            rf"depth = 1000000000: expected a whole number in \[0, {MAX_DEPTH}\]",
        ),
        ("targets.output_tokens.base.depth", -1, "depth = -1"),
        ("targets.output_tokens.base.depth", "3", "depth = 3: expected a whole number"),
        ("targets.output_tokens.base.baseline", "x", "baseline = x: expected a finite number"),
        ("targets.output_tokens.base.baseline", 1e400, "Infinity is not a number"),
        ("targets.output_tokens.base", DELETE, "each tree ensemble's entry must be an object"),
        ("targets.output_tokens.router.thresholds", [5.0, 1.0], "not in ascending order"),
        ("targets.output_tokens.router.thresholds", [0.0] * 40, "a list of under 16"),
        ("targets.output_tokens.router.thresholds", "1,2", "a list of under 16"),
        ("targets.output_tokens.router.column", "client_id", "router column differs"),
        ("targets.output_tokens.experts", {"7": {}}, "experts must be an object keyed by"),
        ("targets.output_tokens", [], "target output_tokens: not an object"),
        ("targets.nonsense", {}, "unknown target 'nonsense'"),
        ("targets", [], "targets must be an object"),
        ("step_model.c0_s", -1.0, r"step_model.c0_s = -1.0: expected a finite number in \[0, 10\]"),
        ("step_model.c_decode_s", 1e9, "step_model.c_decode_s = 1000000000.0"),
        ("step_model.c_kv_s", True, "step_model.c_kv_s = True"),
    ],
)
def test_every_manifest_field_is_validated_before_use(
    artifact_dir: Path, tmp_path: Path, field: str, value: object, message: str
) -> None:
    copy = _copy(artifact_dir, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.setdefault("step_model", {"c0_s": 0.01, "c_prefill_s": 1e-5, "c_decode_s": 1e-4, "c_kv_s": 0.0})
    _set(manifest, field, value)
    _rewrite(copy, manifest)
    with pytest.raises(UserInputError, match=message) as info:
        step_fit(copy) if field.startswith("step_model") else load_artifact(copy)
    assert str(copy) in str(info.value) and "\n" not in str(info.value)


def test_non_finite_numbers_and_special_files_are_refused(artifact_dir: Path, tmp_path: Path) -> None:
    copy = _copy(artifact_dir, tmp_path)
    text = (copy / "manifest.json").read_text()
    (copy / "manifest.json").write_text(text.replace('"seed": 7', '"seed": NaN'))
    with pytest.raises(UserInputError, match=r"not valid JSON \(NaN is not a number\)"):
        load_artifact(copy)
    (copy / "manifest.json").unlink()
    (copy / "manifest.json").mkdir()
    with pytest.raises(UserInputError, match="not a regular file"):
        load_artifact(copy)


def test_tree_arrays_are_validated(artifact_dir: Path, tmp_path: Path) -> None:
    copy = _copy(artifact_dir, tmp_path)
    with np.load(copy / "weights.npz") as data:
        arrays = {k: data[k] for k in data.files}
    for name, change in (("value", np.nan), ("feature", 999), ("feature", -1)):
        edited = dict(arrays)
        key = f"output_tokens.base.{name}"
        edited[key] = arrays[key].copy()
        edited[key][0, 0] = change
        np.savez(copy / "weights.npz", **edited)
        manifest = json.loads((copy / "manifest.json").read_text())
        import hashlib

        manifest["weights_sha256"] = hashlib.sha256((copy / "weights.npz").read_bytes()).hexdigest()
        _rewrite(copy, manifest)
        with pytest.raises(UserInputError, match=r"values must be finite|feature index outside"):
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
