"""The names and defaults the CLI offers (choices in help texts, option defaults, option types),
re-exported so that the CLI imports nothing but `equinox_cli.api`."""

from equinox_cli.api.engines import ENGINE_KINDS, HttpOptions, VllmOptions
from equinox_cli.core.checks import MAX_SEED, check_number
from equinox_cli.core.errors import UserInputError
from equinox_cli.engines.sim.options import ENGINE_KEYS
from equinox_cli.engines.sim.profiles import DEFAULT_PROFILE, PROFILES
from equinox_cli.policies import PARAM_CLASSES, POLICY_NAMES, policy_help
from equinox_cli.predict.config import FitConfig, TrainConfig
from equinox_cli.workload.limits import DEFAULT_MAX_TOKENS
from equinox_cli.workload.readers import FORMATS, formats_help
from equinox_cli.workload.spec import WorkloadSpec
from equinox_cli.workload.suites import SUITES, suite_summaries

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_PROFILE",
    "ENGINE_KEYS",
    "ENGINE_KINDS",
    "FORMATS",
    "MAX_SEED",
    "PARAM_CLASSES",
    "POLICY_NAMES",
    "PROFILES",
    "SUITES",
    "FitConfig",
    "HttpOptions",
    "TrainConfig",
    "UserInputError",
    "VllmOptions",
    "WorkloadSpec",
    "check_number",
    "formats_help",
    "policy_help",
    "suite_summaries",
]
