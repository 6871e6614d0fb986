"""Bounds every trace value is checked against before it is cast or used (one place for all readers)."""

from __future__ import annotations

MAX_TOKENS = 10_000_000  # per request: far above any model's context, far below int64 overflow
MAX_ARRIVAL_S = 1e9  # ~30 years: a larger time is a unit mistake (ns, ms), not a trace
WEIGHT_RANGE = (0.01, 100.0)  # as the server's tenant weights (engines/vllm/identity.py)
# What a client asks for when its trace does not say (--max-tokens): never the true output, which
# no client knows before the answer ends. Longer true outputs are cut to it, as a server would.
DEFAULT_MAX_TOKENS = 2048
MAX_REQUESTS = 5_000_000  # a generated workload (ServeGen windows, Poisson) larger than this is refused
