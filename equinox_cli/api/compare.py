"""`equinox compare BASE NEW`: per policy and metric, the change and whether it is a regression."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from equinox_cli.api.params import split_key_values
from equinox_cli.core.errors import UserInputError
from equinox_cli.core.schema import SUMMARY_BETTER, metric_name
from equinox_cli.metrics.compare import Thresholds, compare_runs, unmatched
from equinox_cli.report.read import summary_rows

THRESHOLD_SECTIONS = ("max_regression", "min", "max")
COMPARE_SCHEMA = "equinox.compare/1"  # the --json document


@dataclass(frozen=True, slots=True)
class CompareConfig:
    base: Path
    new: Path
    max_regression: tuple[str, ...] = ()  # "metric=10%"
    minimum: tuple[str, ...] = ()  # "metric=value"
    maximum: tuple[str, ...] = ()
    thresholds: Path | None = None  # TOML with [max_regression], [min], [max]


@dataclass(frozen=True, slots=True)
class CompareOutcome:
    table: pd.DataFrame  # metrics/compare.py COMPARE_COLUMNS
    regressions: int
    warnings: list[str] = field(default_factory=list)


def compare(config: CompareConfig) -> CompareOutcome:
    rules = Thresholds()
    if config.thresholds is not None:
        rules = load_thresholds(config.thresholds)
    rules = rules.merged(
        Thresholds(
            _flag_rules(config.max_regression, "--max-regression", percent=True),
            _flag_rules(config.minimum, "--min", percent=False),
            _flag_rules(config.maximum, "--max", percent=False),
        )
    )
    base, new = summary_rows(config.base), summary_rows(config.new)
    warnings: list[str] = []
    if base["key"].nunique() == 1 and new["key"].nunique() == 1 and set(base["key"]) != set(new["key"]):
        # one run configuration a side (e.g. before/after an engine change): compare them
        warnings.append(f"comparing different configurations: {base['key'].iloc[0]} → {new['key'].iloc[0]}")
        new = new.assign(key=base["key"].iloc[0])
    table = compare_runs(base, new, rules)
    if table.empty:
        raise UserInputError(
            f"{config.base} and {config.new}: no (workload, policy) in common; BASE has "
            f"{_pairs(base)}, NEW has {_pairs(new)}"
        )
    regressions = int((table["verdict"] == "regression").sum())
    return CompareOutcome(table, regressions, warnings + unmatched(base, new))


def _pairs(rows: pd.DataFrame) -> str:
    pairs = rows[["key", "policy"]].drop_duplicates().to_numpy()
    return ", ".join(f"{k} / {p}" for k, p in pairs[:4]) + (" ..." if len(pairs) > 4 else "")


def load_thresholds(path: Path) -> Thresholds:
    """[max_regression] metric = "10%" (or 0.1); [min] metric = value; [max] metric = value."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such thresholds file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserInputError(f"{path}: not readable TOML ({exc})") from None
    for section in data:
        if section not in THRESHOLD_SECTIONS:
            raise UserInputError(
                f"{path}: unknown section [{section}]; valid: {', '.join(THRESHOLD_SECTIONS)}"
            )
    parsed = []
    for section in THRESHOLD_SECTIONS:
        table = data.get(section, {})
        if not isinstance(table, Mapping):
            raise UserInputError(f"{path}: [{section}] must be a table of metric = value")
        where = f"{path}: [{section}]"
        parsed.append(
            {
                _metric(k, where): _value(v, f"{where} {k}", section == "max_regression")
                for k, v in table.items()
            }
        )
    return Thresholds(*parsed)


def _flag_rules(pairs: Sequence[str], flag: str, percent: bool) -> dict[str, float]:
    return {_metric(k, flag): _value(v, f"{flag} {k}", percent) for k, v in split_key_values(pairs, flag)}


def _metric(name: str, where: str) -> str:
    found = metric_name(name)
    if found is None:
        raise UserInputError(f"{where}: unknown metric {name!r}; valid: {', '.join(SUMMARY_BETTER)}")
    return found


def _value(raw: object, where: str, percent: bool) -> float:
    """A number; for a relative rule "10%" or 0.1 (a fraction)."""
    text = str(raw).strip()
    is_percent = percent and text.endswith("%")
    try:
        value = float(text.removesuffix("%")) if isinstance(raw, (str, int, float)) else math.nan
    except ValueError:
        value = math.nan
    if isinstance(raw, bool) or not math.isfinite(value):
        raise UserInputError(
            f"{where}: expected a number{' or a percentage such as 10%' if percent else ''}, got {raw!r}"
        )
    value = value / 100 if is_percent else value
    if percent and value < 0:
        raise UserInputError(f"{where}: a regression limit cannot be negative")
    return value
