"""Output predictors by name, for `--predictor` (replay) and EQUINOX_PREDICTOR (the vLLM plug-in)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.protocols import Predictor
from equinox_cli.predict.baselines import MovingAveragePredictor, NoPredictor, OraclePredictor
from equinox_cli.predict.guarded import GuardedPredictor

if TYPE_CHECKING:  # artifacts need pandas and the trees: imported when one is loaded
    from equinox_cli.predict.artifact import Artifact

PREDICTOR_NAMES = ("moving-average", "oracle", "none")


def predictor_from_spec(spec: str, truth: Mapping[str, int] | None, cache: dict[Path, Artifact]) -> Predictor:
    """A fresh predictor: moving-average, oracle (needs `truth`), none, PATH, mope:PATH, single:PATH
    or mope-only:PATH. PATH and mope:PATH are MoPE guarded by the moving average (guarded.py: the
    two blended, weighted by their recent accuracy); mope-only:PATH is MoPE alone (for ablations).

    `cache` shares loaded artifacts between the predictors of one run."""
    if spec == "moving-average":
        return MovingAveragePredictor()
    if spec == "oracle":
        if truth is None:
            raise UserInputError("--predictor oracle needs the trace's true lengths (simulator only)")
        return OraclePredictor(truth)
    if spec == "none":
        return NoPredictor()
    kind, sep, rest = spec.partition(":")
    kinds = ("mope", "single", "mope-only")
    kind, path = (kind, Path(rest)) if sep and kind in kinds else ("mope", Path(spec))
    if not path.exists():
        raise UserInputError(
            f"--predictor {spec!r}: no such artifact folder; valid: {', '.join(PREDICTOR_NAMES)}, "
            "PATH, mope:PATH, single:PATH, mope-only:PATH"
        )
    from equinox_cli.predict.artifact import load_artifact
    from equinox_cli.predict.online import ArtifactPredictor

    if path not in cache:
        cache[path] = load_artifact(path)
    if kind == "mope":
        mope = ArtifactPredictor(cache[path], "mope")
        return GuardedPredictor(mope, MovingAveragePredictor(), name=f"{mope.name}+moving-average")
    return ArtifactPredictor(cache[path], "mope" if kind == "mope-only" else kind)
