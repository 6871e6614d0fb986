"""Experiment files (TOML, or YAML when PyYAML is installed): the grid that `equinox sweep` runs and
the single run that `equinox replay --config` runs. Every key is checked: an unknown key, a wrong
type or an empty list is one line naming the file and the key.

    workloads = ["overload", "../shared/traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv"]
    policies = ["equinox", "vtc", "fcfs"]
    seeds = [1, 2, 3]
    rates = [2.0, 5.0]          # Poisson req/s for traces without times (or time_scales = [...])
    profile = "a10g-llama2-7b"
    duration_s = 120
    [params]                    # -P grid: policy.key = [values]
    "equinox.alpha" = [0.5, 1.0]
    [engine_params]             # -E grid: key = [values]
    kv_gate = [false, true]
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.slo import parse_slos
from equinox_cli.engines.sim.profiles import DEFAULT_PROFILE
from equinox_cli.policies import POLICY_NAMES
from equinox_cli.workload.limits import DEFAULT_MAX_TOKENS

Scalar = str | int | float | bool
GRID_KEYS = {"workloads": str, "policies": str, "seeds": int, "rates": float, "time_scales": float}
SCALAR_KEYS: dict[str, type | tuple[type, ...]] = {
    "profile": str,
    "predictor": str,
    "duration_s": (int, float),
    "limit": int,
    "tenants": str,
    "format": str,
    "max_tokens": int,
    "start_s": (int, float),
    "slo": list,  # of --slo values: ["ttft=2,tpot=0.1", "chat:ttft=1"]
}
TABLE_KEYS = ("params", "engine_params")


@dataclass(frozen=True, slots=True)
class Experiment:
    source: Path
    workloads: tuple[str, ...]
    policies: tuple[str, ...]
    seeds: tuple[int, ...] = (42,)
    rates: tuple[float, ...] = (5.0,)
    time_scales: tuple[float, ...] = (1.0,)
    profile: str = DEFAULT_PROFILE
    predictor: str = "moving-average"
    duration_s: float | None = None
    limit: int | None = None
    tenants: str | None = None
    format: str | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    start_s: float = 0.0
    slo: tuple[str, ...] = ()
    params: Mapping[str, tuple[Scalar, ...]] = field(default_factory=dict)  # "policy.key" → values
    engine_params: Mapping[str, tuple[Scalar, ...]] = field(default_factory=dict)

    def policy_params(self, policy: str) -> list[list[str]]:
        """Every -P combination for `policy` ("key=value" lists); [[]] when it has none."""
        keys = [k for k in self.params if k.split(".", 1)[0] == policy]
        return [
            [f"{k.split('.', 1)[1]}={value_text(v)}" for k, v in zip(keys, combo, strict=True)]
            for combo in itertools.product(*(self.params[k] for k in keys))
        ]

    def engine_combos(self) -> list[list[str]]:
        keys = list(self.engine_params)
        return [
            [f"{k}={value_text(v)}" for k, v in zip(keys, combo, strict=True)]
            for combo in itertools.product(*(self.engine_params[k] for k in keys))
        ]


def value_text(value: Scalar) -> str:
    """A config value as -P/-E text (TOML's true is -E's true)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def load_experiment(path: Path) -> Experiment:
    data = _read(path)
    unknown = [k for k in data if k not in GRID_KEYS and k not in SCALAR_KEYS and k not in TABLE_KEYS]
    if unknown:
        valid = ", ".join([*GRID_KEYS, *SCALAR_KEYS, *TABLE_KEYS])
        raise UserInputError(f"{path}: unknown key {unknown[0]!r}; valid: {valid}")
    for key in ("workloads", "policies"):
        if key not in data:
            raise UserInputError(f"{path}: missing key {key!r} (a list)")
    if "rates" in data and "time_scales" in data:
        raise UserInputError(f"{path}: give rates or time_scales, not both")
    values: dict[str, object] = {}
    for key, kind in GRID_KEYS.items():
        if key in data:
            values[key] = _grid(path, key, data[key], kind)
    for key, kinds in SCALAR_KEYS.items():
        if key in data:
            values[key] = _scalar(path, key, data[key], kinds)
    if "slo" in values:
        slos = values["slo"]
        if not all(isinstance(v, str) for v in slos):  # type: ignore[attr-defined]
            raise UserInputError(f'{path}: slo: expected a list of strings such as "ttft=2,tpot=0.1"')
        try:
            parse_slos(slos)  # type: ignore[arg-type]
        except UserInputError as exc:
            raise UserInputError(f"{path}: slo: {exc}") from None
        values["slo"] = tuple(slos)  # type: ignore[arg-type]
    for policy in values["policies"]:  # type: ignore[attr-defined]
        if policy not in POLICY_NAMES:
            valid = ", ".join(POLICY_NAMES)
            raise UserInputError(f"{path}: policies: unknown policy {policy!r}; valid: {valid}")
    values["params"] = _table(path, "params", data.get("params", {}))
    values["engine_params"] = _table(path, "engine_params", data.get("engine_params", {}))
    for key in values["params"]:  # type: ignore[attr-defined]
        policy, dot, _ = key.partition(".")
        if not dot or policy not in values["policies"]:  # type: ignore[operator]
            raise UserInputError(
                f"{path}: params: key {key!r}: expected POLICY.KEY with POLICY one of the experiment's "
                f"policies ({', '.join(values['policies'])})"  # type: ignore[arg-type]
            )
    return Experiment(source=path, **values)  # type: ignore[arg-type]


def _read(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such experiment file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: cannot read ({exc})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        return _read_yaml(path, text)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"{path}: not valid TOML ({exc})") from None


def _read_yaml(path: Path, text: str) -> dict[str, object]:
    try:
        import yaml
    except ImportError:
        hint = "YAML needs PyYAML (pip install pyyaml), or write the file as TOML"
        raise UserInputError(f"{path}: {hint}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a mapping of keys at the top level")
    return data


def _is(value: object, kinds: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return kinds is bool or (isinstance(kinds, tuple) and bool in kinds)
    if kinds is float:
        return isinstance(value, (int, float))
    return isinstance(value, kinds)


def _grid(path: Path, key: str, raw: object, kind: type) -> tuple[object, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise UserInputError(f"{path}: {key}: empty list (the grid would have no cells)")
    for item in items:
        if not _is(item, kind):
            raise UserInputError(f"{path}: {key}: expected {kind.__name__} values, got {item!r}")
    if len(set(items)) != len(items):
        raise UserInputError(f"{path}: {key}: repeated value")
    return tuple(float(i) if kind is float else i for i in items)  # type: ignore[arg-type]


def _scalar(path: Path, key: str, raw: object, kinds: type | tuple[type, ...]) -> object:
    if not _is(raw, kinds):
        names = "/".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
        raise UserInputError(f"{path}: {key}: expected a {names}, got {raw!r}")
    return raw


def _table(path: Path, key: str, raw: object) -> dict[str, tuple[Scalar, ...]]:
    if not isinstance(raw, dict):
        raise UserInputError(f"{path}: {key}: expected a table of name = [values]")
    table: dict[str, tuple[Scalar, ...]] = {}
    for name, values in raw.items():
        items = values if isinstance(values, list) else [values]
        if not items:
            raise UserInputError(f"{path}: {key}.{name}: empty list (the grid would have no cells)")
        if not all(isinstance(v, (str, int, float, bool)) for v in items):
            raise UserInputError(f"{path}: {key}.{name}: expected numbers, strings or booleans")
        table[str(name)] = tuple(items)
    return table
