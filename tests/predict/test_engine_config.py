"""A real engine's configuration travels collect → train-mope → `--profile predictors/NAME`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from equinox_cli import api
from equinox_cli.core.errors import UserInputError
from equinox_cli.engines.sim.profiles import DEFAULT_PROFILE, get_profile
from tests.predict.conftest import SMALL

ENGINE = {
    "block_size": 32,
    "max_num_seqs": 16,
    "max_num_batched_tokens": 2048,
    "kv_total_blocks": 500,
    "max_model_len": 1024,
    "prefix_caching": True,
}


def _as_real(collected: Path, into: Path, engine: dict[str, object]) -> Path:
    """The collected folder as if the plug-in had recorded `engine` (what collect writes for vLLM)."""
    shutil.copytree(collected, into)
    meta = json.loads((into / "collect.json").read_text())
    (into / "collect.json").write_text(json.dumps({**meta, "engine_config": engine}))
    return into


def test_the_calibrated_profile_models_the_recorded_engine(collected_dir: Path, tmp_path: Path) -> None:
    data = _as_real(collected_dir, tmp_path / "real", ENGINE)
    out = tmp_path / "artifact"
    api.train_mope_artifact(api.TrainMopeConfig((data,), out, train=SMALL))
    profile = api.resolve_profile(str(out), ())
    assert (profile.block_size, profile.max_num_seqs, profile.max_num_batched_tokens) == (32, 16, 2048)
    assert profile.kv_capacity_tokens == 500 * 32 and profile.prefix_caching is True
    assert profile.max_model_len == 1024
    assert "recorded by the engine's plug-in" in profile.sources


def test_without_a_recorded_engine_the_default_shape_stays(artifact_dir: Path) -> None:
    profile = api.resolve_profile(str(artifact_dir), ())
    default = get_profile(DEFAULT_PROFILE)
    assert (profile.kv_capacity_tokens, profile.max_num_seqs) == (
        default.kv_capacity_tokens,
        default.max_num_seqs,
    )


def test_engines_that_differ_keep_no_config(collected_dir: Path, tmp_path: Path) -> None:
    a = _as_real(collected_dir, tmp_path / "a", ENGINE)
    b = _as_real(collected_dir, tmp_path / "b", {**ENGINE, "max_num_seqs": 32})
    outcome = api.train_mope_artifact(api.TrainMopeConfig((a, b), tmp_path / "artifact", train=SMALL))
    assert any("differently configured engines" in w for w in outcome.result.warnings)
    assert "engine_config" not in json.loads((tmp_path / "artifact" / "manifest.json").read_text())


def test_a_bad_recorded_engine_is_refused(collected_dir: Path, tmp_path: Path) -> None:
    data = _as_real(collected_dir, tmp_path / "real", {**ENGINE, "block_size": 0})
    out = tmp_path / "artifact"
    api.train_mope_artifact(api.TrainMopeConfig((data,), out, train=SMALL))
    with pytest.raises(UserInputError, match=r"engine_config\.block_size = 0"):
        api.resolve_profile(str(out), ())
