"""What one vLLM step gave each client: prefill and context from the tokens it scheduled per
request, decode from the tokens it generated.

vLLM advances `num_computed_tokens` when it schedules, so the plug-in reads the tokens computed
before the step right after schedule() as `num_computed_tokens − scheduled` (with async scheduling
the next schedule() may run before this step's output is processed). A request's scheduled tokens
are prefill while they cover its prompt; a resumed, preempted request re-prefills its prompt (charged
again: the engine did that work again) and recomputes its output so far (not charged: it generated
nothing new). Decode service is the tokens the step generated, read from `num_output_tokens`, so the
first token (sampled in the prefill step) counts like every other. The context a request attended
is what was computed before the step.
"""

from __future__ import annotations

from collections.abc import Mapping

from equinox_cli.core.types import ClientStepService, Progress


def request_service(scheduled: int, computed_before: int, prompt_tokens: int) -> tuple[int, int]:
    """(prefill, context) tokens of one request in one step."""
    return min(scheduled, max(0, prompt_tokens - computed_before)), computed_before


def step_progress(
    scheduled: Mapping[str, int],
    computed_before: Mapping[str, int],
    generated: Mapping[str, int],
    prompt_tokens: Mapping[str, int],
    clients: Mapping[str, str],
    now_s: float,
    step_time_s: float,
    gpu_util: float,
) -> Progress:
    """The Progress a policy is charged with for one step (requests unknown to `clients` are skipped)."""
    totals: dict[str, list[int]] = {}
    for rid, n in scheduled.items():
        client = clients.get(rid)
        if client is None or n <= 0:
            continue
        prefill, context = request_service(n, computed_before[rid], prompt_tokens[rid])
        entry = totals.setdefault(client, [0, 0, 0])
        entry[0] += prefill
        entry[1] += generated.get(rid, 0)
        entry[2] += context
    by_client = {c: ClientStepService(p, d, k) for c, (p, d, k) in totals.items()}
    return Progress(now_s, step_time_s, gpu_util, by_client)
