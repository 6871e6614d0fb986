"""`-P`/`-E` parsing and the policies and predictors of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.protocols import Policy, Predictor
from equinox_cli.core.slo import SloSet
from equinox_cli.core.types import Workload
from equinox_cli.policies import NEEDS_PREDICTOR, POLICY_NAMES, make_policy
from equinox_cli.policies.equinox import EquinoxPolicy
from equinox_cli.predict.baselines import MovingAveragePredictor
from equinox_cli.predict.registry import predictor_from_spec

if TYPE_CHECKING:
    from equinox_cli.predict.artifact import Artifact


def split_key_values(pairs: Sequence[str], flag: str) -> list[tuple[str, str]]:
    result = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"bad {flag} value {pair!r}: expected key=value")
        result.append((key.strip(), value.strip()))
    return result


def route_policy_params(
    pairs: Sequence[str], main: str, policies: Sequence[str]
) -> dict[str, dict[str, str]]:
    """`-P key=value` goes to the main policy, `-P name.key=value` to the named one."""
    routed: dict[str, dict[str, str]] = {name: {} for name in policies}
    for key, value in split_key_values(pairs, "-P"):
        name, dot, sub = key.partition(".")
        target, sub_key = (name, sub) if dot and name in POLICY_NAMES else (main, key)
        if target not in routed:
            raise UserInputError(f"-P {key}: policy {target!r} is not in this run ({', '.join(policies)})")
        routed[target][sub_key] = value
    return routed


def make_policy_checked(name: str, params: Mapping[str, str]) -> None:
    """Validate a policy name and its -P keys (a throwaway predictor satisfies equinox/vtc-pred)."""
    make_policy(name, params, MovingAveragePredictor())


def check_run_names(
    engine: str,
    profile: str,
    policies: Sequence[str],
    policy_params: Sequence[str],
    engine_params: Sequence[str],
) -> None:
    """Policy names, -P and -E checked before anything is loaded, so that a typo costs a one-line
    error at once rather than after the workload is built (`run_policies` checks them again)."""
    from equinox_cli.api.engines import check_engine_params
    from equinox_cli.engines.sim.options import apply_engine_args
    from equinox_cli.engines.sim.profiles import PROFILES, get_profile

    unique = list(dict.fromkeys(policies))
    routed = route_policy_params(policy_params, unique[0], unique)
    for name in unique:
        make_policy_checked(name, routed[name])
    check_engine_params(engine, engine_params)
    if engine == "sim" and profile in PROFILES:  # an artifact's profile is checked once loaded
        apply_engine_args(get_profile(profile), dict(split_key_values(engine_params, "-E")))


def build_policies(
    names: Sequence[str],
    policy_params: Sequence[str],
    predictor: str,
    workload: Workload,
    slo: SloSet | None = None,
) -> dict[str, Policy]:
    """One fresh policy per name (the first is the main one for `-P key=value`); equinox and
    vtc-pred each get their own fresh predictor. The run's SLOs (`--slo`) are Equinox's unless
    -P sets ttft_slo_s / tpot_slo_s; per-tenant SLOs apply to their tenants."""
    unique = list(dict.fromkeys(names))
    routed = route_policy_params(policy_params, unique[0], unique)
    if slo is not None and "equinox" in routed:
        routed["equinox"].setdefault("ttft_slo_s", repr(slo.default.ttft_s))
        routed["equinox"].setdefault("tpot_slo_s", repr(slo.default.tpot_s))
    artifacts: dict[Path, Artifact] = {}
    policies: dict[str, Policy] = {}
    for name in unique:
        model = make_predictor(predictor, workload, artifacts) if name in NEEDS_PREDICTOR else None
        policies[name] = make_policy(name, routed[name], model)
        if slo is not None and isinstance(policies[name], EquinoxPolicy):
            policies[name].tenant_slos = dict(slo.per_client)  # type: ignore[attr-defined]
    return policies


def make_predictor(spec: str, workload: Workload, cache: dict[Path, Artifact]) -> Predictor:
    """A fresh predictor for one policy run (the oracle reads the workload's true lengths)."""
    truth = {it.request.request_id: it.output_tokens for it in workload.items} if spec == "oracle" else None
    return predictor_from_spec(spec, truth, cache)


def params_of(policy: Policy) -> dict[str, object]:
    params = getattr(policy, "params", None)
    return asdict(params) if params is not None else {}
