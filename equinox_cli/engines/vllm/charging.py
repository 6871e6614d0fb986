"""What one vLLM step gave each client, from the tokens it scheduled per request.

vLLM advances `num_computed_tokens` when it schedules, so the tokens computed before the step are
`num_computed_tokens − scheduled`. A request's scheduled tokens are prefill while they cover its
prompt (a resumed, preempted request re-prefills its prompt and output so far: that counts as
prefill too, capped at the prompt here), decode after; the context it attended is what was computed
before the step.
"""

from __future__ import annotations

from collections.abc import Mapping

from equinox_cli.core.types import ClientStepService, Progress


def request_service(scheduled: int, computed_before: int, prompt_tokens: int) -> tuple[int, int, int]:
    """(prefill, decode, context) tokens of one request in one step."""
    prefill = min(scheduled, max(0, prompt_tokens - computed_before))
    return prefill, scheduled - prefill, computed_before


def step_progress(
    scheduled: Mapping[str, int],
    computed_after: Mapping[str, int],
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
        prefill, decode, context = request_service(n, computed_after[rid] - n, prompt_tokens[rid])
        entry = totals.setdefault(client, [0, 0, 0])
        entry[0] += prefill
        entry[1] += decode
        entry[2] += context
    by_client = {c: ClientStepService(p, d, k) for c, (p, d, k) in totals.items()}
    return Progress(now_s, step_time_s, gpu_util, by_client)
