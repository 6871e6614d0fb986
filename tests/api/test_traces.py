"""`equinox traces stats` figures on hand-computed cases."""

from __future__ import annotations

from pathlib import Path

from equinox_cli.api import trace_stats
from equinox_cli.workload.spec import WorkloadSpec


def test_stats_count_what_each_builtin_context_refuses_and_cuts(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    rows = [(0.0, 100, 5), (1.0, 4000, 5), (2.0, 5000, 5), (3.0, 9000, 5), (4.0, 4095, 5)]
    trace.write_text(
        "request_id,client_id,arrival_s,prompt_tokens,output_tokens\n"
        + "".join(f"r{i},c,{t},{p},{o}\n" for i, (t, p, o) in enumerate(rows))
    )
    overall, _, _ = trace_stats(WorkloadSpec(source=str(trace), max_tokens=2048))
    assert overall["prompt_max"] == 9000
    # 4,096 (Llama-2): 5000 and 9000 refused; 4000 and 4095 fit but leave less than 2,048
    assert overall["prompts_over_4096"] == 2 and overall["max_tokens_cut_4096"] == 2
    # 8,192 (Llama-3): 9000 refused; 5000 + 2048 fits
    assert overall["prompts_over_8192"] == 1 and overall["max_tokens_cut_8192"] == 0
