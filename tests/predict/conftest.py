"""Shared fixtures: one small collected Arena-Hard run and one artifact trained on it (session-wide)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from equinox_cli import api
from equinox_cli.core.types import Request
from equinox_cli.predict.config import FitConfig, TrainConfig
from equinox_cli.predict.trees import TreeParams
from equinox_cli.workload.build import WorkloadSpec, build_workload
from tests.conftest import SHARED_TRACES

ARENA = SHARED_TRACES / "arena_hard_auto" / "arena_hard_flat.jsonl"
SMALL = TrainConfig(
    FitConfig(
        seed=7,
        min_expert_rows=50,
        trees=TreeParams(max_iter=30),
        expert_trees=TreeParams(max_iter=10, learning_rate=0.05, min_samples_leaf=20),
    ),
    min_rows=50,
    max_step_rows=5000,
)


def arena_spec(limit: int = 1500, seed: int = 42) -> WorkloadSpec:
    return WorkloadSpec(source=str(ARENA), rate_rps=3.0, limit=limit, seed=seed)


@pytest.fixture(scope="session")
def collected_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collected") / "arena"
    api.collect(api.CollectConfig(workload=arena_spec(), out=out))
    return out


@pytest.fixture(scope="session")
def artifact_dir(collected_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predictors") / "small"
    api.train_mope_artifact(api.TrainMopeConfig((collected_dir,), out, train=SMALL))
    return out


def replay_events(requests: pd.DataFrame) -> list[tuple[int, int, Request]]:
    """The collected run's events in the order the online predictor saw them: (kind, row, request),
    kind 0 a finish and 1 an arrival, finishes first at equal times."""
    workload, _ = build_workload(arena_spec())
    by_id = {it.request.request_id: it.request for it in workload.items}
    events = sorted(
        [(r.arrival_s, 1, i) for i, r in enumerate(requests.itertuples())]
        + [(r.finish_s, 0, i) for i, r in enumerate(requests.itertuples())]
    )
    return [(kind, i, by_id[requests["request_id"].iloc[i]]) for _, kind, i in events]
