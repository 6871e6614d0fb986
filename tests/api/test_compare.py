"""`equinox compare` on real report folders: exit codes, thresholds from flags and files, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from equinox_cli import api
from equinox_cli.cli.app import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base: 2 seeds; same: the same 2 seeds again; slow: the same with half the batch slots."""
    root = tmp_path_factory.mktemp("compare")
    for side, extra in (("base", ()), ("same", ()), ("slow", ("max_num_seqs=4",))):
        for seed in (1, 2):
            config = api.ReplayConfig(
                workload=api.WorkloadSpec(source="overload", duration_s=20, seed=seed),
                profile="a10g-llama2-7b",
                policy="vtc",
                baselines=("fcfs",),
                engine_params=extra,
                out=root / side / f"seed{seed}",
            )
            api.replay(config)
    return root


def test_identical_runs_pass(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        ["compare", str(runs / "base"), str(runs / "same"), "--max-regression", "ttft_p99=1%", "--json"],
        capsys,
    )
    assert code == 0
    document = json.loads(out)
    assert document["regressions"] == 0
    rows = [r for r in document["rows"] if r["metric"] == "ttft_p99_s"]
    assert {r["policy"] for r in rows} == {"vtc", "fcfs"}
    assert all(r["base_n"] == 2 and r["change"] == 0 for r in rows)


def test_a_slower_engine_is_a_regression_exit_1(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        ["compare", str(runs / "base"), str(runs / "slow"), "--max-regression", "ttft_p99=10%"], capsys
    )
    assert code == 1, err
    assert "regression" in out and "comparing different configurations" in err


def test_thresholds_file_and_flags(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "t.toml"
    rules.write_text('[max_regression]\nthroughput = "1%"\n[min]\njain_60s = 0.5\n')
    code, _, _ = _run(["compare", str(runs / "base"), str(runs / "slow"), "--thresholds", str(rules)], capsys)
    assert code == 1  # half the slots cost throughput
    code, _, _ = _run(
        [
            "compare",
            str(runs / "base"),
            str(runs / "slow"),
            "--thresholds",
            str(rules),
            "--max-regression",
            "throughput=90%",
        ],
        capsys,
    )
    assert code == 0  # the flag wins over the file


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--max-regression", "ttft_p98=10%"], "--max-regression: unknown metric 'ttft_p98'; valid:"),
        (["--min", "jain_index=high"], "--min jain_index: expected a number, got 'high'"),
        (["--max-regression", "ttft_p99"], "expected key=value"),
    ],
)
def test_bad_thresholds_exit_2(
    runs: Path, extra: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["compare", str(runs / "base"), str(runs / "same"), *extra], capsys)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


def test_bad_thresholds_file_names_file_and_key(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "t.toml"
    rules.write_text("[max_regresion]\nttft_p99 = 0.1\n")
    code, _, err = _run(
        ["compare", str(runs / "base"), str(runs / "same"), "--thresholds", str(rules)], capsys
    )
    assert code == 2 and f"{rules}: unknown section [max_regresion]" in err
    rules.write_text("[min]\nbogus = 1\n")
    code, _, err = _run(
        ["compare", str(runs / "base"), str(runs / "same"), "--thresholds", str(rules)], capsys
    )
    assert code == 2 and f"{rules}: [min]: unknown metric 'bogus'" in err


def test_other_schema_or_missing_files_exit_2(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old"
    shutil.copytree(runs / "base" / "seed1", old)
    meta = json.loads((old / "run.json").read_text())
    meta.pop("schema")
    (old / "run.json").write_text(json.dumps(meta))
    code, _, err = _run(["compare", str(old), str(runs / "same")], capsys)
    assert code == 2 and "schema equinox.report/1; this version reads equinox.report/2" in err
    broken = tmp_path / "broken"
    shutil.copytree(runs / "base" / "seed1", broken)
    (broken / "summary.parquet").unlink()
    code, _, err = _run(["compare", str(broken), str(runs / "same")], capsys)
    assert code == 2 and "summary.parquet: missing" in err
    code, _, err = _run(["compare", str(tmp_path / "nowhere"), str(runs / "same")], capsys)
    assert code == 2 and "not a folder" in err
