"""What training takes (`equinox train-mope`'s options): plain dataclasses, importable without
pandas or scikit-learn so that the CLI can show their defaults at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from equinox_cli.predict.trees import TreeParams

EXPERT_TREES = TreeParams(max_iter=30, learning_rate=0.05, min_samples_leaf=50)


@dataclass(frozen=True, slots=True)
class FitConfig:
    seed: int = 42
    min_expert_rows: int = 200
    trees: TreeParams = field(default_factory=TreeParams)
    expert_trees: TreeParams = EXPERT_TREES


@dataclass(frozen=True, slots=True)
class TrainConfig:
    fit: FitConfig = field(default_factory=FitConfig)
    min_rows: int = 200
    max_step_rows: int = 50_000
    test_fraction: float = 0.2
