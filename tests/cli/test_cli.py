"""The command line end to end: outputs, --json, errors with exit code 2, help and README coverage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import equinox_cli

ROOT = Path(__file__).resolve().parents[2]


def _equinox(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from equinox_cli.cli.app import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=300,
    )


def test_replay_writes_report_and_table(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _equinox(
        "replay",
        "overload",
        "--duration",
        "60",
        "--profile",
        "a10g-llama2-7b",
        "--baseline",
        "vtc",
        "--baseline",
        "fcfs",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Jain" in proc.stdout and "fcfs" in proc.stdout
    summary = pd.read_parquet(out / "summary.parquet")
    assert summary["policy"].tolist() == ["equinox", "vtc", "fcfs"]
    for name in ("requests", "clients", "steps", "timeline", "counters"):
        frame = pd.read_parquet(out / "vtc" / f"{name}.parquet")
        assert name == "counters" or len(frame) > 0
    run = json.loads((out / "run.json").read_text())
    assert run["workload"]["seed"] == 42 and run["profile"]["name"] == "a10g-llama2-7b"


def test_replay_json_is_deterministic(tmp_path: Path) -> None:
    results = []
    for name in ("a", "b"):
        proc = _equinox(
            "replay",
            "--duration",
            "30",
            "--json",
            "--baseline",
            "vtc",
            "--out",
            str(tmp_path / name),
        )
        assert proc.returncode == 0, proc.stderr
        payload = json.loads(proc.stdout)
        results.append(payload["summary"])
    assert results[0] == results[1]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["replay", "no-such-thing"], "no such file, folder or suite"),
        (["replay", "--policy", "magic"], "valid: equinox, fcfs"),
        (["replay", "--profile", "tpu"], "valid: a100-llama2-7b"),
        (["replay", "-P", "alpha=7"], "alpha must be in [0, 1]"),
        (["replay", "-P", "novalue"], "expected key=value"),
        (["replay", "-E", "max_num_seqs=zero"], "bad -E value"),
        (["replay", "--engine", "gpu"], "unknown engine"),
        (["replay", "--engine", "vllm", "--vllm-model", "/nowhere"], "no config.json"),
        (["traces", "stats", "--tenants", "zipf:x"], "bad --tenants value"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    out = tmp_path / "never"
    proc = _equinox(*args, "--out", str(out)) if args[0] == "replay" else _equinox(*args)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists() and not any(tmp_path.iterdir())


def test_bad_trace_leaves_no_partial_report(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("request_id,client_id,arrival_s,prompt_tokens,output_tokens\na,c,0,5,-1\n")
    proc = _equinox("replay", str(bad), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "row 1: field 'output_tokens'" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_traces_stats_and_convert(tmp_path: Path, shared_traces: Path) -> None:
    trace = shared_traces / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
    proc = _equinox("traces", "stats", str(trace), "--tenants", "zipf:4", "--json")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["overall"]["requests"] == 19366 and len(stats["clients"]) == 4
    out = tmp_path / "conv.parquet"
    proc = _equinox("traces", "convert", str(trace), str(out), "--limit", "100")
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(out)) == 100


def _commands() -> list[list[str]]:
    from typer.main import get_command

    from equinox_cli.cli.app import app

    root = get_command(app)
    found = []
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        found += [[name, sub] for sub in subs] if subs else [[name]]
    return found


def test_every_command_has_help_example_and_readme_section() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in _commands():
        proc = _equinox(*command, "--help")
        assert proc.returncode == 0
        assert "Example: equinox" in proc.stdout, command
        assert f"equinox {' '.join(command)}" in readme, command
        example = proc.stdout[proc.stdout.index("Example: equinox") :].split()
        for word in example:  # a file of this repository that the example names must exist
            if word.startswith(("benchmarks/", "tests/", "docs/")):
                assert (ROOT / word).exists(), (command, word)


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, equinox_cli, equinox_cli.api; "
        "heavy = ('vllm', 'torch', 'typer', 'rich', 'matplotlib', 'scipy.stats'); "
        "bad = [m for m in heavy if m in sys.modules]; print(bad)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_the_cli_shows_help_without_loading_the_data_stack() -> None:
    """`equinox --help` and option errors build the whole app: it must not wait for pandas,
    pyarrow or scikit-learn (~0.5 s); a command loads them when it runs, and api names still
    resolve to the functions, also after their modules were imported directly."""
    code = (
        "import sys, equinox_cli.cli.app; "
        "print([m for m in ('pandas', 'pyarrow', 'sklearn', 'aiohttp') if m in sys.modules]); "
        "import equinox_cli.api.replay, equinox_cli.api.report; from equinox_cli import api; "
        "print(callable(api.replay), callable(api.report), 'pandas' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split("\n")[:2] == ["[]", "True True True"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "nope"], "unknown policy 'nope'"),
        (["-P", "vtc.alpha=1"], "policy 'vtc' is not in this run"),
        (["-P", "nope=1"], "unknown -P key 'nope' for policy equinox"),
        (["-E", "nope=1"], "unknown -E key 'nope'"),
        (["--profile", "a10g-llama2-7b", "-E", "kv_gate=true"], "works with admission=vllm"),
    ],
)
def test_replay_rejects_a_bad_name_before_loading_the_workload(args: list[str], message: str) -> None:
    """A typo in a policy, -P or -E name is a one-line error before the data stack or the workload
    is loaded (it used to cost ~1.2 s of loading first)."""
    code = (
        "import atexit, sys; from equinox_cli.cli.app import main; "
        "atexit.register(lambda: print('pandas' in sys.modules)); main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "replay", *args], capture_output=True, text=True, timeout=60
    )
    assert (proc.returncode, proc.stdout.strip()) == (2, "False")
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


ARENA = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "traces"
    / "arena_hard_auto"
    / "arena_hard_flat.jsonl"
)


def test_collect_train_and_replay_with_the_artifact(tmp_path: Path) -> None:
    collected, model, report = tmp_path / "collected", tmp_path / "model", tmp_path / "report"
    proc = _equinox(
        "collect", str(ARENA), "--limit", "1200", "--rate", "3", "--out", str(collected), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["requests"] == 1200
    proc = _equinox(
        "train-mope", str(collected), "--out", str(model), "--min-rows", "50", "--min-expert-rows", "50"
    )
    assert proc.returncode == 0, proc.stderr
    assert "output tokens: held-out accuracy" in proc.stdout and "single-model MAE / MoPE MAE" in proc.stdout
    assert (model / "manifest.json").exists() and (model / "weights.npz").exists()
    proc = _equinox(
        "replay", str(ARENA), "--limit", "600", "--rate", "3", "--predictor", f"single:{model}",
        "--baseline", "vtc-pred", "--profile", str(model), "--out", str(report), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = json.loads((report / "run.json").read_text())
    assert run["predictor"] == f"single:{model}" and run["profile"]["name"] == "calibrated:model"


def test_train_mope_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _equinox("train-mope", str(empty), "--out", str(tmp_path / "m"))
    assert proc.returncode == 2 and "not a collected folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


def test_replay_refuses_a_tampered_or_missing_predictor(tmp_path: Path) -> None:
    proc = _equinox("replay", "--duration", "10", "--predictor", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "valid: moving-average, oracle, none" in proc.stderr
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "manifest.json").write_text('{"schema": "equinox.mope/0"}')
    proc = _equinox("replay", "--duration", "10", "--predictor", str(fake))
    assert proc.returncode == 2 and "schema 'equinox.mope/0'" in proc.stderr


def test_replay_against_a_live_server_reports_rates_and_outcomes(tmp_path: Path) -> None:
    from tests.engines.fake_openai import Behaviour, fake_server

    with fake_server(Behaviour(token_delay_s=0.001)) as url:
        proc = _equinox(
            "replay",
            "overload",
            "--duration",
            "4",
            "--engine",
            url,
            "--policy",
            "vtc",
            "--out",
            str(tmp_path / "ok"),
        )
        assert proc.returncode == 0, proc.stderr
        run = json.loads((tmp_path / "ok" / "run.json").read_text())
        assert run["complete"] is True and run["client"]["statuses"] == {"finished": run["requests"]}
        assert run["client"]["achieved_rps"] == pytest.approx(run["client"]["target_rps"], rel=0.1)
        proc = _equinox("replay", "--duration", "4", "--engine", url, "--baseline", "fcfs")
        assert proc.returncode == 2 and "one policy" in proc.stderr


def test_unreachable_server_writes_an_incomplete_report_and_exits_2(tmp_path: Path) -> None:
    from tests.engines.fake_openai import free_port

    out = tmp_path / "down"
    proc = _equinox(
        "replay",
        "overload",
        "--duration",
        "3",
        "--engine",
        f"http://127.0.0.1:{free_port()}",
        "--out",
        str(out),
    )
    assert proc.returncode == 2 and "incomplete run" in proc.stderr
    requests = pd.read_parquet(out / "equinox" / "requests.parquet")
    assert len(requests) > 0 and (requests["status"] == "error").all()
    assert requests["reason"].str.startswith("connection").all()
    assert json.loads((out / "run.json").read_text())["complete"] is False


def _flat(text: str) -> str:
    """Help text without Rich's panel borders and line wrapping."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def test_help_is_generated_from_the_registries() -> None:
    """A policy, format, engine or suite added to its registry shows in the help with its summary."""
    from equinox_cli.api import ENGINE_KINDS
    from equinox_cli.policies import POLICIES
    from equinox_cli.workload.readers import READERS
    from equinox_cli.workload.suites import suite_summaries

    proc = _equinox("replay", "--help")
    text = _flat(proc.stdout)
    # a name and the first words of its summary (a long summary wraps inside the help panel)
    for name, summary in [
        *((n, e.summary) for n, e in POLICIES.items()),
        *((n, r.summary) for n, r in READERS.items()),
        *ENGINE_KINDS.items(),
        *suite_summaries().items(),
    ]:
        assert summary, name
        first = " ".join(summary.split()[:3])
        assert f"{name} ({first}" in text or f"{name}: {first}" in text, name


@pytest.mark.parametrize("pure", [False, True])
def test_version_says_whether_the_simulator_runs_compiled(
    pure: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EQUINOX_PURE_PYTHON", raising=False)
    if pure:
        monkeypatch.setenv("EQUINOX_PURE_PYTHON", "1")
    proc = _equinox("version")
    compiled = equinox_cli.NATIVE and not pure  # CI's install compiles it
    expected = "compiled" if compiled else "plain Python"
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"{equinox_cli.__version__} (simulator: {expected})"
