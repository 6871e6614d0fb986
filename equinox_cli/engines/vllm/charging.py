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

from equinox_cli.core.types import ClientStepService, EngineState, Progress


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
    load: EngineState | None = None,
) -> Progress:
    """The Progress a policy is charged with for one step (requests unknown to `clients` are skipped).

    Runs after every engine step over every scheduled request, so it is one flat loop (the
    scheduler-overhead benchmark measures it)."""
    totals: dict[str, list[int]] = {}
    client_of, generated_of = clients.get, generated.get
    for rid, n in scheduled.items():
        client = client_of(rid)
        if client is None or n <= 0:
            continue
        before = computed_before[rid]
        prefill = min(n, max(0, prompt_tokens[rid] - before))  # = request_service(...)[0]
        entry = totals.get(client)
        if entry is None:
            entry = totals[client] = [0, 0, 0]
        entry[0] += prefill
        entry[1] += generated_of(rid, 0)
        entry[2] += before
    by_client = {c: ClientStepService(p, d, k) for c, (p, d, k) in totals.items()}
    return Progress(now_s, step_time_s, gpu_util, by_client, load)
