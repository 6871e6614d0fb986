"""MoPE artifacts: `predictors/<name>/` with manifest.json, weights.npz, metrics and predictions.

Weights are plain numpy arrays (`np.load(allow_pickle=False)`), never a pickle, so loading a file
someone else made cannot run code. The manifest records the schema version, every target's feature
list, router rule and thresholds, which experts exist, each tree ensemble's baseline and depth, the
evaluation metrics, the seed, the training data and library versions, the SHA-256 of the weights,
and `manifest_sha256`, the SHA-256 of the manifest's canonical JSON without that field: together
they cover the whole artifact. load_artifact() refuses an artifact whose hashes, schema or features
do not match, and validates every field it uses (types, ranges, finite numbers) before use: no loop
or allocation is sized by an unchecked value from the file.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from equinox_cli.core.checks import reject_constant
from equinox_cli.core.errors import UserInputError
from equinox_cli.core.files import atomic_folder
from equinox_cli.predict.mope import TARGETS, Router, TargetModel
from equinox_cli.predict.trees import ARRAY_NAMES, TreeEnsemble, from_arrays

ARTIFACT_SCHEMA = "equinox.mope/1"
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
MANIFEST_MAX_BYTES = 16 * 1024 * 1024
WEIGHTS_MAX_BYTES = 1024 * 1024 * 1024
MAX_DEPTH = 64  # tree depth: predict() walks this many levels
MAX_EXPERTS = 16
STEP_COEF_MAX_S = 10.0  # per step, per token or per sequence: far above any real engine


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
        # exactly what a reader will see; a metric that is not a number (R² of a constant) is null
        document = _finite(json.loads(json.dumps(document, default=str)))
        document["manifest_sha256"] = _manifest_sha256(document)
        (tmp / MANIFEST).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        for file_name, writer in (extra_files or {}).items():
            writer(tmp / file_name)
    return out_dir


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _refuse(path: Path, why: str) -> UserInputError:
    return UserInputError(f"{path}: not a usable MoPE artifact: {why}")


def _manifest_sha256(document: Mapping[str, Any]) -> str:
    body = {key: value for key, value in document.items() if key != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, read within bounds and checked against its own hash."""
    file = path / MANIFEST
    if not path.is_dir() or not file.exists():
        raise _refuse(path, f"no {MANIFEST} (a folder written by `equinox train-mope`)")
    if not file.is_file() or file.stat().st_size > MANIFEST_MAX_BYTES:
        raise _refuse(path, f"{MANIFEST} is not a regular file of at most {MANIFEST_MAX_BYTES} bytes")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"), parse_constant=reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _refuse(path, f"{MANIFEST} is not valid JSON ({reason})") from None
    if not isinstance(manifest, dict):
        raise _refuse(path, f"{MANIFEST} is not a JSON object")
    if manifest.get("schema") != ARTIFACT_SCHEMA:
        schema = str(manifest.get("schema"))[:40]
        raise _refuse(path, f"schema {schema!r}; this version reads {ARTIFACT_SCHEMA!r}")
    if manifest.get("manifest_sha256") != _manifest_sha256(manifest):
        raise _refuse(path, f"{MANIFEST} does not match its manifest_sha256 (modified, corrupt or older)")
    return manifest


def step_fit(path: Path) -> dict[str, float]:
    """The artifact's fitted step-time coefficients (c0_s, c_prefill_s, c_decode_s, c_kv_s),
    each a finite number in [0, STEP_COEF_MAX_S]."""
    fit = read_manifest(path).get("step_model")
    if not isinstance(fit, dict):
        raise UserInputError(f"{path}: the artifact has no step_model (trained without step rows)")
    return {key: _number(fit.get(key), f"step_model.{key}", path, 0.0, STEP_COEF_MAX_S) for key in STEP_KEYS}


STEP_KEYS = ("c0_s", "c_prefill_s", "c_decode_s", "c_kv_s")
MAX_RESIDUAL_RATIO = 100.0


def step_residuals(path: Path) -> tuple[float, ...]:
    """The artifact's measured/fitted step-time ratios (quantiles); () when it has none."""
    fit = read_manifest(path).get("step_model")
    raw = fit.get("residual_ratios", []) if isinstance(fit, dict) else []
    if not isinstance(raw, list) or len(raw) > 1000:
        raise UserInputError(f"{path}: step_model.residual_ratios: not a list of up to 1,000 numbers")
    return tuple(_number(v, "step_model.residual_ratios", path, 0.0, MAX_RESIDUAL_RATIO) for v in raw)


ENGINE_COUNTS = {  # engine_config key → largest accepted value
    "block_size": 1024,
    "max_num_seqs": 1_000_000,
    "max_num_batched_tokens": 100_000_000,
    "kv_total_blocks": 1_000_000_000,
}


def engine_config(path: Path) -> dict[str, int | bool] | None:
    """The configuration of the real engine the artifact's data was collected on (its plug-in
    wrote it: block size, batch caps, KV pool, context, prefix caching); None when unknown (simulated data,
    or data from engines that differ)."""
    raw = read_manifest(path).get("engine_config")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _refuse(path, "engine_config: not an object")
    config: dict[str, int | bool] = {
        key: _count(raw.get(key), f"engine_config.{key}", path, 1, high)
        for key, high in ENGINE_COUNTS.items()
    }
    if "max_model_len" in raw:  # recorded since 2026-12-04; older artifacts keep the default's
        context = _count(raw["max_model_len"], "engine_config.max_model_len", path, 1, 10_000_000)
        config["max_model_len"] = context
    config["prefix_caching"] = bool(raw.get("prefix_caching", False))
    return config


def _number(value: object, field: str, path: Path, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        shown = str(value)[:40]
        raise _refuse(path, f"{field} = {shown}: expected a finite number in [{low:g}, {high:g}]")
    if not math.isfinite(value):
        raise _refuse(path, f"{field}: not finite")
    return float(value)


def _count(value: object, field: str, path: Path, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _refuse(path, f"{field} = {str(value)[:40]}: expected a whole number in [{low}, {high}]")
    return value


def _target_meta(name: str, meta: object, path: Path) -> tuple[Router, dict[str, Mapping[str, Any]]]:
    """A target's router and expert entries, every field checked against this version's spec."""
    spec = TARGETS.get(name)
    if spec is None:
        raise _refuse(path, f"unknown target {name[:40]!r}")
    if not isinstance(meta, dict):
        raise _refuse(path, f"target {name}: not an object")
    if meta.get("features") != list(spec.features):
        raise _refuse(path, f"target {name}: feature list differs from this version's")
    router = meta.get("router")
    if not isinstance(router, dict) or router.get("column") != spec.route_column:
        raise _refuse(path, f"target {name}: router column differs from this version's")
    thresholds = router.get("thresholds")
    if not isinstance(thresholds, list) or len(thresholds) >= MAX_EXPERTS:
        raise _refuse(path, f"target {name}: router.thresholds must be a list of under {MAX_EXPERTS}")
    cuts = tuple(_number(t, f"target {name}: router threshold", path) for t in thresholds)
    if list(cuts) != sorted(cuts):
        raise _refuse(path, f"target {name}: router thresholds are not in ascending order")
    experts = meta.get("experts")
    routed = Router(spec.route_column, cuts)
    valid = {str(k) for k in range(routed.n_experts)}
    if not isinstance(experts, dict) or not set(experts) <= valid:
        raise _refuse(path, f"target {name}: experts must be an object keyed by {sorted(valid)}")
    if not isinstance(meta.get("base"), dict) or not all(isinstance(e, dict) for e in experts.values()):
        raise _refuse(path, f"target {name}: each tree ensemble's entry must be an object")
    return routed, {"base": meta["base"], **{f"expert{k}": v for k, v in experts.items()}}


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
    if any(part.dtype.kind not in "biuf" for part in parts.values()):
        raise _refuse(path, f"{key}: arrays must be numeric")
    if np.isnan(parts["threshold"]).any() or not np.isfinite(parts["value"]).all():
        raise _refuse(path, f"{key}: values must be finite and thresholds numbers (leaves: +inf)")
    baseline = _number(meta.get("baseline"), f"{key}.baseline", path)
    depth = _count(meta.get("depth"), f"{key}.depth", path, 0, MAX_DEPTH)
    ensemble = from_arrays(parts, baseline, depth)
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
    if not weights.is_file() or weights.stat().st_size > WEIGHTS_MAX_BYTES:
        raise _refuse(path, f"no {WEIGHTS} (a regular file of at most {WEIGHTS_MAX_BYTES} bytes)")
    if _sha256(weights) != manifest.get("weights_sha256"):
        raise _refuse(path, f"{WEIGHTS} does not match the manifest's SHA-256 (modified or corrupt)")
    try:
        with np.load(weights, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError) as exc:
        raise _refuse(path, f"{WEIGHTS} unreadable ({exc})") from None
    targets = manifest.get("targets")
    if not isinstance(targets, dict):
        raise _refuse(path, "targets must be an object")
    mope: dict[str, TargetModel] = {}
    single: dict[str, TargetModel] = {}
    for name, meta in targets.items():
        router, ensembles = _target_meta(name, meta, path)
        spec = TARGETS[name]
        base = _ensemble(arrays, f"{name}.base", ensembles["base"], path)
        experts = tuple(
            _ensemble(arrays, f"{name}.expert{k}", ensembles[f"expert{k}"], path)
            if f"expert{k}" in ensembles
            else None
            for k in range(router.n_experts)
        )
        n_features = len(spec.features)
        for ensemble in (base, *(e for e in experts if e is not None)):
            if (
                ensemble.feature.size
                and not 0 <= int(ensemble.feature.min()) <= int(ensemble.feature.max()) < n_features
            ):
                raise _refuse(path, f"target {name}: a tree reads a feature index outside [0, {n_features})")
        mope[name] = TargetModel(spec, base, router, experts)
        single[name] = TargetModel(spec, base)
    if "output_tokens" not in mope:
        raise _refuse(path, "no output_tokens model")
    return Artifact(path, manifest, mope, single)
