"""Every column the toolkit writes, declared once: the engines' records, the replay report's tables
and the collected training data. Writers select and order their frames by these tuples (a column
not declared here cannot reach a file), and reports/README.md and traces/README.md document each
one (a test checks both).

Versions: a report folder's run.json and every Parquet file in it carry REPORT_SCHEMA; collected
data carries COLLECT_SCHEMA. Readers refuse another version with a one-line error.
"""

from __future__ import annotations

REPORT_SCHEMA = "equinox.report/2"  # /2: schema and seed in run.json, a policy column per file
COLLECT_SCHEMA = "equinox.collect/1"
REPORT_META_KEY = b"equinox.run"
COLLECT_META_KEY = b"equinox.collect"

# --- what every engine records ------------------------------------------------------------------
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
ENGINE_REQUEST_COLUMNS = (
    "request_id",
    "client_id",
    "weight",
    "arrival_s",
    "prompt_tokens",
    "output_tokens",
    "max_tokens",
    "status",
    "admitted_s",
    "first_token_s",
    "finish_s",
    "preemptions",
    "cached_tokens",  # prompt tokens found in the prefix cache at its (last) admission
    "running_at_arrival",  # engine state when the request arrived (known before it runs)
    "waiting_at_arrival",
    "kv_used_frac_at_arrival",
    "running_at_admit",  # engine state when it was first admitted (NaN if never)
    "waiting_at_admit",
    "kv_used_frac_at_admit",
)
# what a client of a live server adds to each request row (engines/http/engine.py)
HTTP_REQUEST_COLUMNS = (
    "reason",
    "attempt_s",
    "sent_s",
    "send_lag_s",
    "connect_attempts",  # TCP connections tried: a connect timeout before anything was sent is retried
    "target_output_tokens",
    "length_ok",
    "itl_p50_s",
    "itl_max_s",
    # --engine vllm: the engine's own first-token latency (the plug-in's log), from its arrival at the
    # engine: without the client's send lag or the API server; in seconds and in engine steps
    "engine_ttft_s",
    "engine_ttft_steps",
)
COUNTER_COLUMNS = ("time_s", "client_id", "counter", "backlogged")
LATENCY_COLUMNS = ("ttft_s", "e2e_s", "queue_s", "tpot_s")  # metrics/latency.py derives them

# --- the replay report (report/parquet.py) --------------------------------------------------------
LATENCY_STATS = ("mean", "p50", "p90", "p99")
SUMMARY_COLUMNS = (
    "policy",
    "requests",
    "finished",
    "rejected",
    "aborted",
    "failed",
    "makespan_s",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "requests_per_s",
    "goodput_requests_per_s",
    "gpu_util_mean",
    "preemptions",
    *(f"{m}_{s}_s" for m in ("ttft", "tpot", "e2e") for s in LATENCY_STATS),
    "engine_ttft_mean_s",  # --engine vllm: the engine's own TTFT (requests' engine_ttft_s); else NaN
    "engine_ttft_p99_s",
    "jain_index",
    "jain_windowed_mean",
    "service_diff_max",
    "service_diff_mean",
    "service_diff_var",
    "counter_gap_max",
    "counter_gap_mean",
    "fairness_window_end_s",
)
REPORT_TABLES: dict[str, tuple[str, ...]] = {
    "requests": ("policy", *ENGINE_REQUEST_COLUMNS, *LATENCY_COLUMNS),
    "clients": (
        "policy",
        "client_id",
        "weight",
        "requests",
        "finished",
        "rejected",
        "aborted",
        "demand",
        "service",
        "service_rate",
        "ttft_mean_s",
        "ttft_p99_s",
        "e2e_mean_s",
        "output_tokens_served",
        "requests_in_slo",
        "gpu_s",  # engine seconds its requests took to the last arrival (steps split by the step-time model)
        "gpu_share",
    ),
    "steps": ("policy", *ENGINE_STEP_COLUMNS),
    "timeline": (
        "policy",
        "time_s",
        "client_id",
        "service",
        "demand",
        "service_rate",
        "demand_rate",
        "cumulative_service",
    ),
    "counters": ("policy", *COUNTER_COLUMNS),
}
OPTIONAL_REPORT_COLUMNS = {"requests": HTTP_REQUEST_COLUMNS}  # live runs only

# --- collected training data (report/collect.py, predict/dataset.py) ------------------------------
COLLECT_REQUEST_COLUMNS = (
    "request_id",
    "client_id",
    "weight",
    "arrival_s",
    "prompt_tokens",
    "prompt",  # text where the trace has it, else null
    "output_tokens",
    "max_tokens",
    "status",
    "admitted_s",
    "first_token_s",
    "finish_s",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "queue_s",
    "preemptions",
    "running_at_arrival",
    "waiting_at_arrival",
    "kv_used_frac_at_arrival",
    "running_at_admit",
    "waiting_at_admit",
    "kv_used_frac_at_admit",
)
COLLECT_STEP_COLUMNS = (*ENGINE_STEP_COLUMNS, "throughput_tokens_per_s")  # (prefill + decode) / step time


def report_columns(table: str, present: set[str] | frozenset[str]) -> list[str]:
    """The columns of a report table in their declared order: its own, plus the optional ones that
    are present. Raises if a frame holds a column the schema does not declare."""
    declared = REPORT_TABLES[table]
    optional = OPTIONAL_REPORT_COLUMNS.get(table, ())
    unknown = present - set(declared) - set(optional)
    if unknown:
        raise ValueError(f"{table}: column(s) not declared in core/schema.py: {sorted(unknown)}")
    return [*declared, *(c for c in optional if c in present)]


# Which way is better for each summary metric (what `equinox compare` calls a regression).
_HIGHER_IS_BETTER = (
    "finished",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "requests_per_s",
    "goodput_requests_per_s",
    "gpu_util_mean",
    "jain_index",
    "jain_windowed_mean",
)
_NEUTRAL = ("policy", "requests", "fairness_window_end_s")
SUMMARY_BETTER: dict[str, str] = {
    name: "higher" if name in _HIGHER_IS_BETTER else "lower"
    for name in SUMMARY_COLUMNS
    if name not in _NEUTRAL
}
METRIC_ALIASES = {"jain_60s": "jain_windowed_mean", "throughput": "output_tokens_per_s"}


def metric_name(name: str) -> str | None:
    """A summary metric by its name, its name without `_s` (ttft_p99) or an alias (jain_60s)."""
    for candidate in (name, f"{name}_s", METRIC_ALIASES.get(name, "")):
        if candidate in SUMMARY_BETTER:
            return candidate
    return None
