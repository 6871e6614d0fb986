"""The real-engine scenario of issue 9 item 7, shared by the real run and the simulator's forecast.

A heavy tenant floods the engine with uniform requests; a light tenant, well within its share,
sends bursts: two long documents first, then six short questions (arriving a millisecond apart).
A fair policy serves the light tenant soon after each burst arrives (VTC lifts its counter), but
VTC then takes the burst in arrival order: once the first document is admitted, the light tenant's
counter is 900 tokens ahead and the questions wait while the heavy tenant catches up. Equinox
orders a tenant's own queue shortest-predicted-first, so the questions go before the documents:
the light tenant's mean TTFT falls while what each tenant is served stays the same.

The simulator half calibrates on the recorded real run in tests/engines/data/fidelity (the same
engine configuration as the real half's server) and predicts the direction the real engine must show.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from equinox_cli import api
from equinox_cli.core.types import Request, Workload, WorkloadItem
from equinox_cli.engines.sim.engine import SimEngine
from equinox_cli.engines.sim.profiles import Profile
from equinox_cli.policies import make_policy
from equinox_cli.predict.baselines import MovingAveragePredictor

FIDELITY = Path(__file__).resolve().parents[1] / "engines" / "data" / "fidelity"
SECONDS = 30.0
HEAVY_RPS, HEAVY_PROMPT = 60.0, 64
# Heavy outputs spread over 32-224 tokens (mean 128, seeded): with one length for all, the 16 running
# heavy requests finished and were replaced in waves (the real engine admitted none for ~120 steps,
# then 16 at once), so a light burst's TTFT was mostly where it fell in that cycle, for either policy
HEAVY_OUTPUT_RANGE, HEAVY_SEED = (32, 224), 0
# bursts from when the flood has built a backlog until it drains (FCFS's light TTFT ~15 s on average);
# 11 bursts: each burst's TTFT scatters (14-90 steps), so the test compares means over many
BURST_START_S, BURST_PERIOD_S, BURST_UNTIL_S = 2.0, 3.0, 35.0
BURST_PROMPTS = (900, 900, 16, 16, 16, 16, 16, 16)  # documents first, then questions
LIGHT_OUTPUT = 32
# the server the real half starts: the engine configuration of the recorded calibration run
MAX_MODEL_LEN, MAX_SEQS, MAX_BATCHED = 1024, 16, 2048


def items() -> list[WorkloadItem]:
    """The scenario's requests in arrival order (max_tokens = the output: lengths are forced)."""
    rng = random.Random(HEAVY_SEED)
    out = [
        _item(f"heavy-{i}", "heavy", i / HEAVY_RPS, HEAVY_PROMPT, rng.randint(*HEAVY_OUTPUT_RANGE))
        for i in range(int(SECONDS * HEAVY_RPS))
    ]
    start, k = BURST_START_S, 0
    while start < BURST_UNTIL_S:
        for j, prompt in enumerate(BURST_PROMPTS):
            out.append(_item(f"light-{k}", "light", start + 0.001 * j, prompt, LIGHT_OUTPUT))
            k += 1
        start += BURST_PERIOD_S
    return sorted(out, key=lambda it: (it.request.arrival_s, it.request.request_id))


def _item(request_id: str, client: str, arrival_s: float, prompt: int, output: int) -> WorkloadItem:
    return WorkloadItem(Request(request_id, client, arrival_s, prompt, output), output)


def write_trace(path: Path) -> Path:
    """The scenario as a JSON-lines trace, for `replay --engine vllm`."""
    lines = [
        json.dumps(
            {
                "request_id": it.request.request_id,
                "client_id": it.request.client_id,
                "arrival_s": it.request.arrival_s,
                "prompt_tokens": it.request.prompt_tokens,
                "output_tokens": it.output_tokens,
            }
        )
        + "\n"
        for it in items()
    ]
    path.write_text("".join(lines))
    return path


def recorded_engine_profile() -> Profile:
    """The simulator calibrated on the recorded real run (step rows and configuration)."""
    engine = json.loads((FIDELITY / "engine.json").read_text())
    steps = pd.read_parquet(FIDELITY / "calibration_steps.parquet")
    return api.profile_from_steps(steps, engine, "vllm-cpu-tiny", str(FIDELITY))


def simulated_light_ttft_s(policy: str, seeds: int = 3) -> float:
    """The light tenant's mean TTFT the simulator predicts for `policy`, averaged over seeds."""
    runs = [_simulated_light(policy, seed) for seed in range(seeds)]
    return sum(float((r["first_token_s"] - r["arrival_s"]).mean()) for r in runs) / seeds


def _simulated_light(policy: str, seed: int) -> pd.DataFrame:
    """The light tenant's request rows in one seeded simulation of the scenario."""
    workload = Workload("light-bursts", tuple(items()))
    scheduler = make_policy(policy, {}, MovingAveragePredictor())
    result = SimEngine(recorded_engine_profile(), seed=seed).run(workload, scheduler)
    requests = pd.DataFrame(result.requests)
    return requests[requests["client_id"] == "light"]


def burst_index(request_ids: pd.Series) -> pd.Series:
    """Which burst each light request (`light-<k>`) belongs to."""
    return request_ids.str.split("-").str[1].astype(int) // len(BURST_PROMPTS)


def burst_spans(light: pd.DataFrame, start: str, end: str) -> pd.Series:
    """Each burst's span from its first `start` to its last `end`: how long the light tenant took to
    be served a whole burst. Order within the tenant barely changes it (the burst is done when all
    its tokens are), so it measures the tenant's share of the engine while it had work, unlike a
    snapshot of service / demand, which Equinox's questions-first order lowers mid-burst."""
    by_burst = light.groupby(burst_index(light["request_id"]))
    return by_burst[end].max() - by_burst[start].min()


def simulated_light_burst_span_s(policy: str, seeds: int = 3) -> float:
    """The mean burst span (arrival to last finish) the simulator predicts for `policy`."""
    runs = [_simulated_light(policy, seed) for seed in range(seeds)]
    return sum(float(burst_spans(r, "arrival_s", "finish_s").mean()) for r in runs) / seeds
