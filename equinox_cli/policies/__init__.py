"""Scheduling policies, one module per family, and the registry that builds them by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from equinox_cli.core.errors import UserInputError, unknown_name
from equinox_cli.core.protocols import OutputPredictor, Policy
from equinox_cli.policies.equinox import EquinoxParams, EquinoxPolicy
from equinox_cli.policies.fcfs import FCFSPolicy, RPMParams, RPMPolicy
from equinox_cli.policies.params import parse_params
from equinox_cli.policies.vtc import LCFPolicy, VTCParams, VTCPolicy, VTCPredPolicy

POLICY_NAMES = ("equinox", "vtc", "vtc-pred", "lcf", "fcfs", "rpm")
NEEDS_PREDICTOR = ("equinox", "vtc-pred")
PARAM_CLASSES: dict[str, type | None] = {
    "equinox": EquinoxParams,
    "vtc": VTCParams,
    "vtc-pred": VTCParams,
    "lcf": VTCParams,
    "fcfs": None,
    "rpm": RPMParams,
}


def make_policy(name: str, raw_params: Mapping[str, str], predictor: OutputPredictor | None = None) -> Policy:
    """A fresh policy object; `predictor` is required by equinox and vtc-pred."""
    if name not in POLICY_NAMES:
        raise unknown_name("policy", name, POLICY_NAMES)
    cls = PARAM_CLASSES[name]
    params = parse_params(name, cls, raw_params) if cls is not None else None
    if cls is None and raw_params:
        raise UserInputError(f"policy {name} takes no -P keys (got {', '.join(raw_params)})")
    if name in NEEDS_PREDICTOR and predictor is None:
        raise ValueError(f"policy {name} needs an output predictor")
    p: Any = params
    if name == "equinox":
        return EquinoxPolicy(p, predictor)  # type: ignore[arg-type]
    if name == "vtc-pred":
        return VTCPredPolicy(p, predictor)  # type: ignore[arg-type]
    classes: dict[str, Any] = {"vtc": VTCPolicy, "lcf": LCFPolicy, "rpm": RPMPolicy}
    if name in classes:
        return classes[name](p)
    return FCFSPolicy()
