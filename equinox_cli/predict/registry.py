"""Output predictors by name, for `--predictor` (replay) and EQUINOX_PREDICTOR (the vLLM plug-in)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.protocols import OutputPredictor
from equinox_cli.predict.artifact import Artifact, load_artifact
from equinox_cli.predict.baselines import MovingAveragePredictor, OraclePredictor
from equinox_cli.predict.online import ArtifactPredictor, NoPredictor

PREDICTOR_NAMES = ("moving-average", "oracle", "none")


def predictor_from_spec(
    spec: str, truth: Mapping[str, int] | None, cache: dict[Path, Artifact]
) -> OutputPredictor:
    """A fresh predictor: moving-average, oracle (needs `truth`), none, PATH, mope:PATH or single:PATH.

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
    kind, path = (kind, Path(rest)) if sep and kind in ("mope", "single") else ("mope", Path(spec))
    if not path.exists():
        raise UserInputError(
            f"--predictor {spec!r}: no such artifact folder; valid: {', '.join(PREDICTOR_NAMES)}, "
            "PATH, mope:PATH, single:PATH"
        )
    if path not in cache:
        cache[path] = load_artifact(path)
    return ArtifactPredictor(cache[path], kind)
