"""Which tokenizer counts a text trace: --tokenizer (file or model folder), else the served model's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from equinox_cli import api
from equinox_cli.api.engines import with_model_tokenizer
from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.tokens import load_token_counter


def test_a_folder_without_tokenizer_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"has no tokenizer\.json"):
        load_token_counter(tmp_path)


def test_the_served_models_tokenizer_is_used_when_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tokenizer.json").write_text("{}")
    spec = api.WorkloadSpec(source="trace.json")
    options = api.VllmOptions(model=tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: object() if name == "tokenizers" else real(name)
    )
    chosen, warnings = with_model_tokenizer(spec, "vllm", options)
    assert chosen.tokenizer == tmp_path and warnings == []
    # an explicit --tokenizer wins; the simulator and live servers name no model folder
    explicit = api.WorkloadSpec(source="trace.json", tokenizer=tmp_path / "other.json")
    assert with_model_tokenizer(explicit, "vllm", options)[0].tokenizer == tmp_path / "other.json"
    assert with_model_tokenizer(spec, "sim", options)[0].tokenizer is None
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "tokenizers" else real(name)
    )
    chosen, warnings = with_model_tokenizer(spec, "vllm", options)
    assert chosen.tokenizer is None and "approximated" in warnings[0]
