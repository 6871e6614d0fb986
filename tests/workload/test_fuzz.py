"""Fuzzing build_workload() with hypothesis: every format's real snippet, mutated, is either refused
in one line or accepted as a workload that keeps the invariants (benchmarks/fuzz_workload.py runs
the long campaign); and the bad inputs the hardening review found, one by one."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.build import WorkloadSpec, build_workload
from tests.workload.fuzzing import TOKENS, invariant_problem, mutate, run_one, seeds

SEEDS = seeds()


@pytest.mark.parametrize("seed", SEEDS, ids=[s.name for s in SEEDS])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rng=st.randoms(use_true_random=False), extra=st.sampled_from(TOKENS))
def test_mutated_traces_are_refused_in_one_line_or_keep_the_invariants(
    seed: object, rng: random.Random, extra: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = mutate(seed.data, rng)  # type: ignore[attr-defined]
    if rng.random() < 0.3:
        cut = rng.randrange(len(data) + 1)
        data = data[:cut] + extra + data[cut:]
    outcome = run_one(seed, data, tmp_path_factory.mktemp("case"))  # type: ignore[arg-type]
    assert outcome.kind != "crash", (outcome.detail, data[:300])


def test_the_unmutated_seeds_are_accepted(tmp_path: Path) -> None:
    for seed in SEEDS:
        outcome = run_one(seed, seed.data, tmp_path / seed.name)
        assert outcome.kind == "accepted", (seed.name, outcome.detail)


def _csv(
    tmp_path: Path, body: str, header: str = "request_id,client_id,arrival_s,prompt_tokens,output_tokens"
) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(f"{header}\n{body}\n")
    return path


def _refused(path: Path, fragment: str, **spec: object) -> None:
    with pytest.raises(UserInputError, match=fragment) as info:
        build_workload(WorkloadSpec(source=str(path), **spec))  # type: ignore[arg-type]
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("row", "fragment"),
    ids=["1e20", "uint64-max", "5000-digits", "true", "arrival-1e300", "fraction"],
    argvalues=[
        ("a,c,0,1e20,5", r"row 1: field 'prompt_tokens': must be in \(0, 1e\+07\], got 1e\+20"),
        ("a,c,0,5,18446744073709551615", "row 1: field 'output_tokens': must be in"),
        ("a,c,0,5," + "9" * 5000, "row 1: field 'output_tokens': (not a number|out of range|must be in)"),
        ("a,c,0,5,true", "row 1: field 'output_tokens': not a number: '(?i:true)'"),
        ("a,c,1e300,5,5", "row 1: field 'arrival_s': must be in"),
        ("a,c,0,5,2.5", "not an integer"),
    ],
)
def test_counts_are_bounded_before_any_cast(tmp_path: Path, row: str, fragment: str) -> None:
    _refused(_csv(tmp_path, row), fragment)


def test_json_booleans_are_not_counts(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    row = {"request_id": "a", "client_id": "c", "arrival_s": 0, "prompt_tokens": True, "output_tokens": 3}
    path.write_text(json.dumps(row) + "\n")
    _refused(path, "row 1: field 'prompt_tokens': not a number: 'True'")


def test_a_canonical_trace_without_arrivals_is_an_error_not_poisson(tmp_path: Path) -> None:
    _refused(
        _csv(tmp_path, "a,c,5,5", "request_id,client_id,prompt_tokens,output_tokens"),
        "missing column arrival_s",
    )


def test_parquet_timestamps_are_refused_not_read_as_nanoseconds(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    frame = pd.DataFrame(
        {
            "request_id": ["a"],
            "client_id": ["c"],
            "arrival_s": pd.to_datetime(["2024-01-01T00:00:01"]),
            "prompt_tokens": [5],
            "output_tokens": [5],
        }
    )
    frame.to_parquet(path)
    _refused(path, "field 'arrival_s': a datetime64.* column; give plain seconds")


def test_weights_outside_the_server_range_are_refused(tmp_path: Path) -> None:
    header = "request_id,client_id,arrival_s,prompt_tokens,output_tokens,weight"
    _refused(_csv(tmp_path, "a,c,0,5,5,1e308", header), r"field 'weight': must be in \[0.01, 100\]")


def test_deep_nesting_and_non_finite_constants_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    _refused(path, "bad JSON")
    path.write_text(
        '{"request_id": "a", "client_id": "c", "arrival_s": NaN, "prompt_tokens": 1, "output_tokens": 1}\n'
    )
    _refused(path, "NaN is not a number")


def test_a_sharegpt_reply_without_value_is_handled(tmp_path: Path) -> None:
    path = tmp_path / "sg.json"
    conv = [{"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt"}]}]
    path.write_text(json.dumps(conv))
    try:
        workload, _ = build_workload(WorkloadSpec(source=str(path), format="sharegpt"))
    except UserInputError as exc:
        assert "\n" not in str(exc)
    else:
        assert invariant_problem(workload) is None


def test_special_files_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    _refused(fifo, "not a regular file or folder")
    with pytest.raises(UserInputError, match="not a regular file or folder"):
        build_workload(WorkloadSpec(source="/dev/zero"))


def test_servegen_rates_that_would_allocate_gigabytes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "chunk-0-trace.csv").write_text("0,9999,1,Gamma,1,1\n600,9999,1,Gamma,1,1\n" * 200)
    _refused(tmp_path, "over 5000000 requests", duration_s=1e6)
    (tmp_path / "chunk-0-trace.csv").write_text("0,1e12,1,Gamma,1,1\n")
    _refused(tmp_path, "row 1: field 'rate': not a number in")
    (tmp_path / "chunk-0-trace.csv").write_text("0,1,1,Zipf,1,1\n")
    _refused(tmp_path, "row 1: field 'family'")


def test_lone_surrogates_and_line_breaks_in_names_stay_one_line(tmp_path: Path) -> None:
    path = tmp_path / "sg.json"
    turns = '[{"from": "human", "value": "hi \\ud800"}, {"from": "gpt", "value": "ok"}]'
    path.write_text(f'[{{"id": "a", "conversations": {turns}}}]')
    workload, _ = build_workload(WorkloadSpec(source=str(path), format="sharegpt"))
    assert workload.items[0].request.prompt == "hi \ufffd"
    _refused(
        _csv(tmp_path, "a,c,0,5,5", 'request_id,client_id,arrival_s,prompt_tokens,"output\ntokens"'),
        "unknown column",
    )
    azure = tmp_path / "az.csv"
    azure.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:50,3,9\n1690,396,109\n")
    _refused(azure, "field 'arrival_s': must be in", format="azure")  # 333 years: a unit mistake


def test_invalid_utf8_inside_a_parquet_string_column_is_refused(tmp_path: Path) -> None:
    seed = next(s for s in SEEDS if s.name == "trace.parquet")
    data = bytearray(seed.data)
    at = data.find(b"2\x05\x06\x003\x05\x06")  # request id "r3" in the dictionary page
    assert at > 0
    data[at + 4] = 0xA7  # not UTF-8: found by the fuzz campaign as an ArrowException deep in pandas
    path = tmp_path / "t.parquet"
    path.write_bytes(bytes(data))
    _refused(path, "not a readable Parquet file: .*Invalid UTF8")


def test_a_servegen_probability_too_large_for_a_float_is_refused(tmp_path: Path) -> None:
    # found by the 100,000-input campaign, seed 4: an OverflowError converting 10**400 to a float
    (tmp_path / "chunk-0-trace.csv").write_text("0,1,1,Gamma,1,1\n")
    huge = "1" + "0" * 400
    table = {"input_tokens": f"{{52: {huge}, 53: 0.5}}", "output_tokens": "{10: 1.0}"}
    (tmp_path / "chunk-0-dataset.json").write_text(json.dumps({"0": table}))
    _refused(tmp_path, "field 'input_tokens': a probability too large for a number")
