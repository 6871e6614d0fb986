"""A live server's own policy is checked against --policy and -P before a replay files its results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from equinox_cli import api
from equinox_cli.core.errors import UserInputError
from tests.engines.fake_openai import Behaviour, fake_server


def _config(url: str, tmp_path: Path, policy: str = "vtc", params: tuple[str, ...] = ()) -> api.ReplayConfig:
    return api.ReplayConfig(
        workload=api.WorkloadSpec(source="overload", duration_s=2),
        engine=url,
        policy=policy,
        policy_params=params,
        http=api.HttpOptions(api="openai"),
        out=tmp_path / "run",
    )


def test_a_server_running_another_policy_is_refused(tmp_path: Path) -> None:
    with fake_server(Behaviour(policy_info={"policy": "vtc", "params": {"w_q": "3"}})) as url:
        with pytest.raises(UserInputError, match=r"runs policy 'vtc'.*pass --policy vtc"):
            api.replay(_config(url, tmp_path, policy="equinox"))
        with pytest.raises(UserInputError, match=r"with w_q='3'.*not -P w_q=2"):
            api.replay(_config(url, tmp_path, params=("w_q=2",)))
        assert not (tmp_path / "run").exists()
        outcome = api.replay(_config(url, tmp_path, params=("w_q=3",)))
    run = json.loads((outcome.out_dir / "run.json").read_text())
    assert run["server"]["policy"] == "vtc" and run["server"]["params"] == {"w_q": "3"}


def test_a_server_that_does_not_say_is_a_warning(tmp_path: Path) -> None:
    with fake_server(Behaviour()) as url:
        outcome = api.replay(_config(url, tmp_path))
    assert any("does not say which policy it runs" in w for w in outcome.warnings)
    assert "server" not in json.loads((outcome.out_dir / "run.json").read_text())
    # a live run has no engine steps: its report draws what the client saw
    page = api.report(outcome.out_dir).read_text()
    assert "throughput over time" in page and "engine busy fraction" not in page
