"""Per-request latencies and their percentiles.

ttft = first_token − arrival; e2e = finish − arrival; queue = first admission − arrival;
tpot = (finish − first_token) / (output − 1) for requests with more than one output token.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PERCENTILES = (50, 90, 99)


def with_latencies(requests: pd.DataFrame) -> pd.DataFrame:
    """The requests table plus ttft_s, e2e_s, queue_s, tpot_s (NaN where not applicable)."""
    out = requests.copy()
    finished = out["status"] == "finished"
    arrival = out["arrival_s"].astype(float)
    out["ttft_s"] = np.where(finished, out["first_token_s"].astype(float) - arrival, np.nan)
    out["e2e_s"] = np.where(finished, out["finish_s"].astype(float) - arrival, np.nan)
    out["queue_s"] = out["admitted_s"].astype(float) - arrival
    decode_tokens = out["output_tokens"].astype(float) - 1
    span = out["finish_s"].astype(float) - out["first_token_s"].astype(float)
    out["tpot_s"] = np.where(finished & (decode_tokens > 0), span / decode_tokens.clip(lower=1), np.nan)
    return out


def percentiles(values: pd.Series, prefix: str) -> dict[str, float]:
    """mean and p50/p90/p99 of a latency column, named like 'ttft_p99_s'."""
    clean = values.dropna().to_numpy(dtype=float)
    stem = prefix.removesuffix("_s")
    if clean.size == 0:
        return {
            f"{stem}_mean_s": float("nan"),
            **{f"{stem}_p{q}_s": float("nan") for q in PERCENTILES},
        }
    result = {f"{stem}_mean_s": float(clean.mean())}
    for q in PERCENTILES:
        result[f"{stem}_p{q}_s"] = float(np.percentile(clean, q))
    return result
