"""One error path for every input: usage errors, option values, OS errors, each one line, exit 2,
nothing written (in process, through `main()`, under whichever Typer/Click is installed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from equinox_cli.cli.app import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    code = info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["replay", "--rate", "fast"], "Invalid value for '--rate'"),
        (["replay", "--bogus"], "No such option: --bogus"),
        (
            ["bogus"],
            "No such command 'bogus'; valid: collect, compare, replay, report, serve, sweep, traces, "
            "train-mope, version",
        ),
        (["traces", "bogus"], "valid: convert, stats"),
        (["replay", "a", "b"], "unexpected extra argument"),
        (["replay", "--rate", "inf"], "--rate inf: expected a finite number in (0, 1000000]"),
        (["replay", "--rate", "nan"], "--rate nan: expected a finite number"),
        (["replay", "--rate", "0"], "--rate 0: must be in (0, 1000000]"),
        (["replay", "--time-scale", "inf"], "--time-scale inf"),
        (["replay", "--duration", "0"], "--duration 0: must be in (0,"),
        (["replay", "--limit", "-2"], "--limit -2: must be in [1,"),
        (["replay", "--start", "-1"], "--start -1"),
        (["replay", "--seed", "-1"], "--seed -1: must be in [0, 9223372036854775807]"),
        (["replay", "--seed", "1" + "0" * 30], "--seed"),
        (["replay", "--engine", "http://localhost:99999"], "--engine http://localhost:99999"),
        (["replay", "--engine", "http://:80"], "expected http://HOST[:PORT]"),
        (["replay", "--engine", "http://127.0.0.1:9", "--deadline", "-1"], "--deadline -1"),
        (["replay", "--engine", "http://127.0.0.1:9", "--max-concurrency", "0"], "--max-concurrency 0"),
        (["replay", "--engine", "http://127.0.0.1:9", "--request-timeout", "inf"], "--request-timeout inf"),
        (["train-mope", "x", "--min-rows", "0"], "--min-rows 0"),
        (["replay", "-P", "w_q=inf"], "bad -P value for equinox: w_q='inf' (a finite number"),
        (["replay", "-P", "alpha=nan"], "alpha='nan'"),
        (["replay", "-E", "max_num_seqs=10000000000"], "(a number in [0, 1e9])"),
        (["replay", "-E", "gate_rule=max"], "gate_rule='max'; valid: peak, sum"),
        (["replay", "--engine", "http://127.0.0.1:9", "-E", "kv_gate=true"], "-E kv_gate: a live server"),
        (["replay", "--engine", "vllm", "-E", "max_num_seqs=8"], "-E max_num_seqs configures the simulator"),
        (["serve", "--tiny-model", "--model", "m"], "exactly one of --model PATH and --tiny-model"),
    ],
)
def test_usage_and_range_errors_are_one_line_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    os.chdir(tmp_path)  # a default --out would land here: nothing may be written
    code, err = run(argv, capsys)
    assert code == 2, err
    assert fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_os_errors_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unreadable = tmp_path / "trace.jsonl"
    unreadable.write_text('{"request_id": "a"}\n')
    unreadable.chmod(0)
    as_file = tmp_path / "file"
    as_file.write_text("x")
    cases = [
        (
            ["replay", "overload", "--duration", "5", "--out", str(as_file)],
            "--out exists and is not a folder",
        ),
        (["traces", "stats", str(tmp_path / "missing.jsonl")], "no such file, folder or suite"),
    ]
    if os.geteuid() != 0:  # root reads anything
        cases.append((["traces", "stats", str(unreadable)], "Permission denied"))
    for argv, fragment in cases:
        code, err = run(argv, capsys)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_an_oserror_anywhere_becomes_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from equinox_cli import api

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", "reports/x/requests.parquet")

    monkeypatch.setattr(api, "replay", full_disk)
    code, err = run(["replay"], capsys)
    assert code == 2 and err.strip() == "error: reports/x/requests.parquet: No space left on device"


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from equinox_cli import api

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "replay", interrupted)
    code, err = run(["replay"], capsys)
    assert code == 130 and "Traceback" not in err  # Typer 0.29 exits 130 itself, silently
