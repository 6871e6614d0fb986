"""Column names shared across layers: what every engine records per step (engines write them,
the collect dataset reads them). Issue 12's schema module is where the rest of the report and
collect columns move to."""

from __future__ import annotations

ENGINE_STEP_COLUMNS = (
    "step",
    "start_s",
    "step_time_s",
    "prefill_tokens",
    "decode_seqs",
    "context_tokens",
    "running",
    "waiting",
    "kv_used_blocks",
    "kv_total_blocks",
    "gpu_util",
    "preempted",
)
