"""MoPE artifacts: `predictors/<name>/` with manifest.json, weights.npz, metrics and predictions.

Weights are plain numpy arrays (`np.load(allow_pickle=False)`), never a pickle, so loading a file
someone else made cannot run code. The manifest records the schema version, every target's feature
list, router rule and thresholds, which experts exist, each tree ensemble's baseline and depth, the
evaluation metrics, the seed, the training data and library versions, and the SHA-256 of the weights.
load_artifact() refuses an artifact whose schema, features or weights do not match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.files import atomic_folder
from equinox_cli.predict.mope import TARGETS, Router, TargetModel
from equinox_cli.predict.trees import ARRAY_NAMES, TreeEnsemble, from_arrays

ARTIFACT_SCHEMA = "equinox.mope/1"
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: Mapping[str, Any]
    mope: dict[str, TargetModel]
    single: dict[str, TargetModel]

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))


def _ensemble_meta(ensemble: TreeEnsemble) -> dict[str, object]:
    return {"baseline": ensemble.baseline, "depth": ensemble.depth, "trees": ensemble.n_trees}


def _put(arrays: dict[str, np.ndarray], key: str, ensemble: TreeEnsemble) -> None:
    for name, array in ensemble.arrays().items():
        arrays[f"{key}.{name}"] = array


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_artifact(
    out_dir: Path,
    models: Mapping[str, TargetModel],
    manifest: Mapping[str, Any],
    extra_files: Mapping[str, Any] | None = None,
) -> Path:
    """Write the artifact atomically. `models` are the MoPE models (they hold the pooled model too).

    `extra_files` maps a file name to a callable that writes it, given its path (reports).
    """
    arrays: dict[str, np.ndarray] = {}
    targets: dict[str, object] = {}
    for name, model in models.items():
        assert model.router is not None
        _put(arrays, f"{name}.base", model.base)
        experts = {}
        for k, expert in enumerate(model.experts):
            if expert is not None:
                _put(arrays, f"{name}.expert{k}", expert)
                experts[str(k)] = _ensemble_meta(expert)
        targets[name] = {
            "table": model.spec.table,
            "features": list(model.spec.features),
            "router": {"column": model.router.column, "thresholds": list(model.router.thresholds)},
            "loss": model.spec.loss,
            "log_offset": model.spec.log_offset,
            "base": _ensemble_meta(model.base),
            "experts": experts,
        }
    with atomic_folder(out_dir) as tmp:
        np.savez(tmp / WEIGHTS, **arrays)  # type: ignore[arg-type]
        document = {
            "schema": ARTIFACT_SCHEMA,
            **manifest,
            "targets": targets,
            "weights_sha256": _sha256(tmp / WEIGHTS),
        }
        (tmp / MANIFEST).write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
        for file_name, writer in (extra_files or {}).items():
            writer(tmp / file_name)
    return out_dir


def _refuse(path: Path, why: str) -> UserInputError:
    return UserInputError(f"{path}: not a usable MoPE artifact: {why}")


def read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if not path.is_dir() or not file.exists():
        raise _refuse(path, f"no {MANIFEST} (a folder written by `equinox train-mope`)")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _refuse(path, f"{MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise _refuse(path, f"{MANIFEST} is not a JSON object")
    if manifest.get("schema") != ARTIFACT_SCHEMA:
        raise _refuse(path, f"schema {manifest.get('schema')!r}; this version reads {ARTIFACT_SCHEMA!r}")
    return manifest


def _ensemble(
    arrays: Mapping[str, np.ndarray], key: str, meta: Mapping[str, Any], path: Path
) -> TreeEnsemble:
    try:
        parts = {name: arrays[f"{key}.{name}"] for name in ARRAY_NAMES}
    except KeyError as exc:
        raise _refuse(path, f"weights lack {exc.args[0]}") from None
    shapes = {part.shape for part in parts.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise _refuse(path, f"{key}: arrays of inconsistent shapes")
    ensemble = from_arrays(parts, float(meta["baseline"]), int(meta["depth"]))
    width = ensemble.feature.shape[1]
    in_range = (
        ensemble.left.min(initial=0) >= 0
        and max(ensemble.left.max(initial=0), ensemble.right.max(initial=0)) < width
    )
    if not in_range or ensemble.right.min(initial=0) < 0:
        raise _refuse(path, f"{key}: child indices out of range")
    return ensemble


def load_artifact(path: Path) -> Artifact:
    manifest = read_manifest(path)
    weights = path / WEIGHTS
    if not weights.exists():
        raise _refuse(path, f"no {WEIGHTS}")
    if _sha256(weights) != manifest.get("weights_sha256"):
        raise _refuse(path, f"{WEIGHTS} does not match the manifest's SHA-256 (modified or corrupt)")
    try:
        with np.load(weights, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError) as exc:
        raise _refuse(path, f"{WEIGHTS} unreadable ({exc})") from None
    mope: dict[str, TargetModel] = {}
    single: dict[str, TargetModel] = {}
    for name, meta in dict(manifest.get("targets", {})).items():
        spec = TARGETS.get(name)
        if spec is None:
            raise _refuse(path, f"unknown target {name!r}")
        if list(meta.get("features", [])) != list(spec.features):
            raise _refuse(path, f"target {name}: feature list differs from this version's")
        base = _ensemble(arrays, f"{name}.base", meta["base"], path)
        router = Router(str(meta["router"]["column"]), tuple(float(t) for t in meta["router"]["thresholds"]))
        experts = tuple(
            _ensemble(arrays, f"{name}.expert{k}", meta["experts"][str(k)], path)
            if str(k) in meta["experts"]
            else None
            for k in range(router.n_experts)
        )
        n_features = len(spec.features)
        for ensemble in (base, *(e for e in experts if e is not None)):
            if ensemble.feature.size and int(ensemble.feature.max()) >= n_features:
                raise _refuse(path, f"target {name}: a tree reads a feature index >= {n_features}")
        mope[name] = TargetModel(spec, base, router, experts)
        single[name] = TargetModel(spec, base)
    if "output_tokens" not in mope:
        raise _refuse(path, "no output_tokens model")
    return Artifact(path, manifest, mope, single)
