"""Each reader on its shared real sample, and on hand-made bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.build import WorkloadSpec, build_workload, detect_format


def _build(path: Path | str, **kw: object):
    return build_workload(WorkloadSpec(source=str(path), **kw))  # type: ignore[arg-type]


def test_azure_2023_code_sample(shared_traces: Path) -> None:
    path = shared_traces / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv"
    assert detect_format(path) == "azure"
    workload, _warnings = _build(path, tenants="zipf:8")
    assert len(workload) == 8819  # the README's row count: no row with 0 output in this file
    first = workload.items[0].request
    assert first.arrival_s == 0.0 and first.prompt_tokens == 4808
    assert workload.items[0].output_tokens == 10
    assert set(workload.clients) <= {f"c{i}" for i in range(8)}
    assert workload.duration_s == pytest.approx(3435.9, abs=1.0)


def test_azure_2024_timestamp_format(tmp_path: Path) -> None:
    path = tmp_path / "azure2024.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-05-10 00:00:00.009930+00:00,2162,5\n2024-05-10 00:00:01.509930+00:00,100,7\n"
    )
    workload, _ = _build(path)
    assert [it.request.arrival_s for it in workload.items] == pytest.approx([0.0, 1.5])


def test_mooncake_sample_with_prefix_tenants(shared_traces: Path) -> None:
    path = shared_traces / "mooncake" / "conversation_trace.jsonl"
    workload, _ = _build(path, tenants="column:prefix", limit=500)
    assert len(workload) == 500
    assert all(c.startswith("prefix=") for c in workload.clients)
    assert workload.items[0].request.prompt_tokens == 6758
    first = workload.items[0].request
    assert first.prefix_hashes == tuple(range(14)) and first.prefix_block_tokens == 512


def test_prefix_hashes_survive_conversion(tmp_path: Path, shared_traces: Path) -> None:
    from equinox_cli.api import convert_trace

    spec = WorkloadSpec(source=str(shared_traces / "mooncake" / "conversation_trace.jsonl"), limit=50)
    out = tmp_path / "m.parquet"
    convert_trace(spec, out)
    converted, _ = _build(out)
    original, _ = build_workload(spec)
    assert converted.items == original.items and original.items[1].request.prefix_hashes[:2] == (0, 14)


def test_servegen_folder_is_multi_tenant(shared_traces: Path) -> None:
    workload, _ = _build(shared_traces / "servegen_m_large", duration_s=30.0)
    assert len(workload.clients) > 10
    assert all(0 <= it.request.arrival_s < 30.0 for it in workload.items)
    again, _ = _build(shared_traces / "servegen_m_large", duration_s=30.0)
    assert again.items == workload.items  # seeded


def test_servegen_length_tables(shared_traces: Path) -> None:
    workload, _ = _build(shared_traces / "servegen_m_small", duration_s=5.0)
    lengths = {it.request.prompt_tokens for it in workload.items}
    assert len(lengths) > 10


def test_sharegpt_prompts_warn_about_missing_replies(shared_traces: Path) -> None:
    path = shared_traces / "sharegpt_prompts_500" / "ShareGPT_V3_filtered_500.json"
    workload, warnings = _build(path, rate_rps=10.0)
    assert len(workload) == 500
    assert any("no reply" in w for w in warnings) and any("chars / 4" in w for w in warnings)
    assert workload.items[0].request.prompt is not None


def test_sharegpt_conversation_pairs(tmp_path: Path) -> None:
    path = tmp_path / "sg.json"
    conv = [
        {
            "id": "a",
            "conversations": [
                {"from": "human", "value": "x" * 40},
                {"from": "gpt", "value": "y" * 80},
            ],
        }
    ]
    path.write_text(json.dumps(conv))
    workload, _ = _build(path, tenants="single")
    assert (workload.items[0].request.prompt_tokens, workload.items[0].output_tokens) == (10, 20)


def test_lmsys_records_by_model(tmp_path: Path) -> None:
    path = tmp_path / "lmsys.jsonl"
    rows = [
        {
            "conversation_id": str(i),
            "model": m,
            "conversation": [
                {"role": "user", "content": "hello there"},
                {"role": "assistant", "content": "hi" * 20},
            ],
        }
        for i, m in enumerate(["vicuna", "llama", "vicuna"])
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    workload, _ = _build(path, tenants="column:model")
    assert workload.clients == ("model=llama", "model=vicuna")


def test_burstgpt_drops_failed_rows(tmp_path: Path) -> None:
    path = tmp_path / "burst.csv"
    path.write_text(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "5,ChatGPT,100,50,150,Conversation log\n6,GPT-4,80,0,80,Conversation log\n"
        "7.5,GPT-4,30,20,50,API log\n"
    )
    workload, warnings = _build(path, tenants="column:model")
    assert len(workload) == 2 and any("0 output tokens" in w for w in warnings)
    assert [it.request.arrival_s for it in workload.items] == [0.0, 2.5]


def test_vidur_lengths_sample_is_shuffled_with_the_seed(shared_traces: Path) -> None:
    path = shared_traces / "sharegpt_lengths_sarathi" / "sharegpt_8k_filtered_stats_llama2_tokenizer.csv"
    assert detect_format(path) == "vidur"
    workload, _ = _build(path, rate_rps=10.0, seed=3)
    assert len(workload) == 30731  # the README's row count: every turn has output
    file = pd.read_csv(path)
    pairs = [(it.request.prompt_tokens, it.output_tokens) for it in workload.items]
    in_file = list(zip(file["num_prefill_tokens"], file["num_decode_tokens"], strict=True))
    assert sorted(pairs) == sorted(in_file) and pairs[:50] != in_file[:50]  # the rows, reordered
    again, _ = _build(path, rate_rps=10.0, seed=3)
    other, _ = _build(path, rate_rps=10.0, seed=4)
    assert again.items == workload.items and other.items != workload.items
    assert workload.duration_s == pytest.approx(3073, rel=0.05)  # Poisson at 10 req/s


def test_vidur_timed_trace_keeps_its_arrivals(tmp_path: Path) -> None:
    path = tmp_path / "splitwise.csv"
    path.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n10.5,100,20\n11.0,50,0\n12.25,30,7\n")
    workload, warnings = _build(path, tenants="single")
    assert [it.request.arrival_s for it in workload.items] == [0.0, 1.75]
    assert [it.output_tokens for it in workload.items] == [20, 7]
    assert any("0 output tokens" in w for w in warnings)


def test_rows_without_prompt_are_dropped_with_a_warning_or_refused_when_all_are(tmp_path: Path) -> None:
    path = tmp_path / "lengths.csv"
    path.write_text("num_prefill_tokens,num_decode_tokens\n0,5\n12,3\n")
    workload, warnings = _build(path, tenants="single")
    assert [it.request.prompt_tokens for it in workload.items] == [12]
    assert any("dropped 1 row(s) with 0 prompt tokens" in w for w in warnings)
    path.write_text("num_prefill_tokens,num_decode_tokens\n0,5\n0,3\n")
    with pytest.raises(UserInputError, match="no request with prompt tokens > 0"):
        _build(path, tenants="single")


def test_canonical_parquet_round_trip(tmp_path: Path) -> None:
    from equinox_cli.api import convert_trace

    out = tmp_path / "o.parquet"
    convert_trace(WorkloadSpec(source="overload", duration_s=20.0), out)
    workload, _ = _build(out)
    original, _ = build_workload(WorkloadSpec(source="overload", duration_s=20.0))
    assert workload.items == original.items


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("empty.jsonl", "", "empty trace"),
        ("bad.jsonl", '{"request_id": "a"\n', "row 1: bad JSON"),
        (
            "neg.csv",
            "request_id,client_id,arrival_s,prompt_tokens,output_tokens\na,c,0,-5,3\n",
            "row 1: field 'prompt_tokens': must be in (0, 1e+07], got -5",
        ),
        (
            "missing.csv",
            "request_id,client_id,arrival_s,prompt_tokens\na,c,0,5\n",
            "missing column(s) output_tokens",
        ),
        (
            "extra.csv",
            "request_id,client_id,arrival_s,prompt_tokens,output_tokens,zzz\na,c,0,5,5,1\n",
            "unknown column(s) zzz",
        ),
        (
            "nan.csv",
            "request_id,client_id,arrival_s,prompt_tokens,output_tokens\na,c,x,5,5\n",
            "row 1: field 'arrival_s': not a number",
        ),
        (
            "dup.csv",
            "request_id,client_id,arrival_s,prompt_tokens,output_tokens\na,c,0,5,5\na,c,1,5,5\n",
            "row 2: field 'request_id': duplicate",
        ),
        (
            "az.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\nnot-a-time,5,5\n",
            "row 1: field 'TIMESTAMP'",
        ),
        (
            "mc.jsonl",
            '{"timestamp": 0, "input_length": -1, "output_length": 3}\n',
            "row 1: field 'input_length'",
        ),
        ("sg.json", '[{"id": 1, "conversations": 5}]', "row 1: field 'conversations'"),
        (
            "ph.csv",
            "request_id,client_id,arrival_s,prompt_tokens,output_tokens,prefix_hashes,prefix_block_tokens\n"
            "a,c,0,5,5,1 2,16\nb,c,1,5,5,1 x,16\n",
            "row 2: field 'prefix_hashes': not space-separated ids",
        ),
        (
            "pb.csv",
            "request_id,client_id,arrival_s,prompt_tokens,output_tokens,prefix_hashes\na,c,0,5,5,1 2\n",
            "prefix_hashes needs a prefix_block_tokens column",
        ),
        (
            "vd.csv",
            "num_prefill_tokens,num_decode_tokens\n10,5\n12,2.5\n",
            "row 2: field 'num_decode_tokens': not a count",
        ),
        (
            "vt.csv",
            "arrived_at,num_prefill_tokens,num_decode_tokens\n0,10,5\ninf,12,2\n",
            "row 2: field 'arrived_at': out of range",
        ),
        (
            "mh.jsonl",
            '{"timestamp": 0, "input_length": 5, "output_length": 3, "hash_ids": [1, "x"]}\n',
            "row 1: field 'prefix_hashes'",
        ),
    ],
)
def test_bad_files_name_file_row_and_field(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserInputError) as info:
        _build(path)
    message = str(info.value)
    assert str(path) in message and fragment in message and "\n" not in message


def test_unknown_suite_and_format_list_choices(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"suites: .*overload"):
        _build("no-such-suite")
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    with pytest.raises(UserInputError, match=r"valid: .*azure"):
        _build(path, format="nope")


def test_canonical_frame_is_sorted_and_typed() -> None:
    workload, _ = build_workload(WorkloadSpec(source="poisson-short-long", duration_s=30))
    arrivals = [it.request.arrival_s for it in workload.items]
    assert arrivals == sorted(arrivals)
    assert pd.Series([it.request.prompt_tokens for it in workload.items]).isin([64, 256]).all()


def test_arena_answers_keep_text_and_model_as_tenant(shared_traces) -> None:  # type: ignore[no-untyped-def]
    from equinox_cli.workload.build import WorkloadSpec, build_workload, detect_format

    path = shared_traces / "arena_hard_auto" / "arena_hard_flat.jsonl"
    assert detect_format(path) == "arena"
    workload, warnings = build_workload(WorkloadSpec(source=str(path), limit=500, rate_rps=4.0))
    assert warnings == [] and len(workload) == 500
    assert all(it.request.prompt for it in workload.items)
    assert len(workload.clients) > 10  # answers of many models interleave (seeded shuffle)
    again, _ = build_workload(WorkloadSpec(source=str(path), limit=500, rate_rps=4.0))
    assert [it.request.request_id for it in again.items] == [it.request.request_id for it in workload.items]
    assert [it.request.client_id for it in again.items] == [it.request.client_id for it in workload.items]
    later, _ = build_workload(WorkloadSpec(source=str(path), start_s=100.0, limit=10, rate_rps=4.0))
    assert later.items[0].request.arrival_s < 1.0  # --start drops earlier arrivals and shifts to 0


def test_arena_bad_record_names_row_and_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from equinox_cli.core.errors import UserInputError
    from equinox_cli.workload.build import WorkloadSpec, build_workload

    path = tmp_path / "a.jsonl"
    path.write_text(
        '{"qid": "1", "model": "m", "prompt": "hi", "prompt_tokens_llama2": 2, "output_tokens_llama2": 5}\n'
        '{"qid": "2", "model": "m", "prompt": "yo", "prompt_tokens_llama2": 2, "output_tokens_llama2": "x"}\n'
    )
    with pytest.raises(UserInputError, match="row 2: field 'output_tokens_llama2'"):
        build_workload(WorkloadSpec(source=str(path)))
