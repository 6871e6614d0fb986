"""Admission rules, one module per engine modelled, chosen with `-E admission=NAME`."""

from __future__ import annotations

from equinox_cli.core.protocols import OutputPredictor
from equinox_cli.engines.sim.admission.base import AdmissionRule, StepPlan
from equinox_cli.engines.sim.admission.reserve_max import ReserveMaxAdmission
from equinox_cli.engines.sim.admission.slora import SLoraAdmission
from equinox_cli.engines.sim.admission.vllm import VllmAdmission
from equinox_cli.engines.sim.profiles import ADMISSION_RULES, Profile

__all__ = ["ADMISSION_RULES", "AdmissionRule", "StepPlan", "make_rule"]


def make_rule(profile: Profile, gate: OutputPredictor | None) -> AdmissionRule:
    """The profile's admission rule; `gate` is the engine's KV-gate predictor (vllm only)."""
    if profile.admission == "slora":
        return SLoraAdmission(profile)
    if profile.admission == "reserve-max":
        return ReserveMaxAdmission(profile)
    return VllmAdmission(profile, gate)
