"""Scheduling policies, one module per family, and the registry that builds them by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from equinox_cli.core.errors import UserInputError, unknown_name
from equinox_cli.core.protocols import Policy, Predictor
from equinox_cli.policies.equinox import EquinoxParams, EquinoxPolicy
from equinox_cli.policies.fcfs import FCFSPolicy, RPMParams, RPMPolicy
from equinox_cli.policies.params import parse_params
from equinox_cli.policies.vtc import LCFPolicy, VTCParams, VTCPolicy, VTCPredPolicy


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One policy of the registry: what it is (for help texts), its -P parameters, and how to build it."""

    summary: str
    params: type | None  # the -P dataclass; None: no parameters
    build: Callable[[Any, Predictor | None], Policy]
    needs_predictor: bool = False


POLICIES: dict[str, PolicyEntry] = {
    "equinox": PolicyEntry(
        "holistic fair: user- and resource-fairness counters from predicted and measured cost",
        EquinoxParams,
        lambda p, predictor: EquinoxPolicy(p, predictor),  # type: ignore[arg-type]
        needs_predictor=True,
    ),
    "vtc": PolicyEntry(
        "Virtual Token Counter (Sheng et al., OSDI '24)", VTCParams, lambda p, _: VTCPolicy(p)
    ),
    "vtc-pred": PolicyEntry(
        "VTC charging predicted output at admission, corrected at finish",
        VTCParams,
        lambda p, predictor: VTCPredPolicy(p, predictor),  # type: ignore[arg-type]
        needs_predictor=True,
    ),
    "lcf": PolicyEntry(
        "least counter first without VTC's lift of newcomers", VTCParams, lambda p, _: LCFPolicy(p)
    ),
    "fcfs": PolicyEntry("first come, first served (vLLM's default)", None, lambda p, _: FCFSPolicy()),
    "rpm": PolicyEntry(
        "FCFS that rejects a request once its tenant had `limit` in the last window",
        RPMParams,
        lambda p, _: RPMPolicy(p),
    ),
}
POLICY_NAMES = tuple(POLICIES)
NEEDS_PREDICTOR = tuple(name for name, entry in POLICIES.items() if entry.needs_predictor)
PARAM_CLASSES: dict[str, type | None] = {name: entry.params for name, entry in POLICIES.items()}


def policy_help() -> str:
    """The policies with one line each, for the CLI's help."""
    return "; ".join(f"{name} ({entry.summary})" for name, entry in POLICIES.items())


def make_policy(name: str, raw_params: Mapping[str, str], predictor: Predictor | None = None) -> Policy:
    """A fresh policy object; `predictor` is required by equinox and vtc-pred."""
    if name not in POLICY_NAMES:
        raise unknown_name("policy", name, POLICY_NAMES)
    cls = PARAM_CLASSES[name]
    params = parse_params(name, cls, raw_params) if cls is not None else None
    if cls is None and raw_params:
        raise UserInputError(f"policy {name} takes no -P keys (got {', '.join(raw_params)})")
    if name in NEEDS_PREDICTOR and predictor is None:
        raise ValueError(f"policy {name} needs an output predictor")
    return POLICIES[name].build(params, predictor)
