"""`equinox sweep` and experiment files: the grid, parallel = serial, resume, interrupt, Ray, bad input."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from equinox_cli import api
from equinox_cli.api.sweep import cells_of, run_cell
from equinox_cli.cli.app import main

GRID = """
workloads = ["overload"]
policies = ["vtc", "fcfs", "equinox"]
seeds = [1, 2]
time_scales = [0.25, 1.0]
profile = "a10g-llama2-7b"
duration_s = 20
[params]
"equinox.alpha" = [0.5, 1.0]
"""
NUMBERS = ["output_tokens_per_s", "ttft_mean_s", "service_diff_max"]
sweep_module = sys.modules["equinox_cli.api.sweep"]


def _file(tmp_path: Path, text: str, name: str = "e.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def test_grid_has_one_cell_per_combination(tmp_path: Path) -> None:
    cells = cells_of(api.load_experiment(_file(tmp_path, GRID)))
    # 2 scales × 2 seeds × (vtc + fcfs + 2 equinox alphas)
    assert len(cells) == 16
    assert len({c.cell_id for c in cells}) == 16
    equinox = [c for c in cells if c.policy == "equinox"]
    assert {c.params for c in equinox} == {("alpha=0.5",), ("alpha=1.0",)}
    assert all(c.params == () for c in cells if c.policy != "equinox")


def test_parallel_equals_serial_and_rerun_skips(tmp_path: Path) -> None:
    config = _file(tmp_path, GRID)
    serial = api.sweep(api.SweepConfig(config, tmp_path / "a", jobs=1))
    parallel = api.sweep(api.SweepConfig(config, tmp_path / "b", jobs=2))
    assert (serial.ran, parallel.ran, parallel.workers) == (16, 16, 2)
    a = pd.read_parquet(tmp_path / "a" / "cells.parquet")
    b = pd.read_parquet(tmp_path / "b" / "cells.parquet")
    pd.testing.assert_frame_equal(a[["cell", "policy", *NUMBERS]], b[["cell", "policy", *NUMBERS]])
    again = api.sweep(api.SweepConfig(config, tmp_path / "a", jobs=2))
    assert (again.ran, again.skipped) == (0, 16)
    # the half-load cells never queue: said once per setting, not for the loaded ones
    assert len(serial.warnings) == 2 and all("time_scale=0.25" in w for w in serial.warnings)


def test_a_cell_is_the_replay_of_its_settings(tmp_path: Path) -> None:
    cell = next(c for c in cells_of(api.load_experiment(_file(tmp_path, GRID))) if c.policy == "equinox")
    row = run_cell(cell)
    replayed = api.replay(
        api.ReplayConfig(
            workload=api.WorkloadSpec(
                source="overload", seed=cell.seed, time_scale=cell.time_scale, duration_s=20
            ),
            profile="a10g-llama2-7b",
            policy="equinox",
            policy_params=cell.params,
            out=tmp_path / "r",
        )
    )
    for metric in NUMBERS:
        assert row[metric].item() == replayed.summary[metric].item()


def test_interrupted_sweep_keeps_finished_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _file(tmp_path, GRID)
    calls = {"n": 0}
    real = sweep_module.run_cell

    def flaky(cell: object) -> pd.DataFrame:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(cell)

    monkeypatch.setattr(sweep_module, "run_cell", flaky)
    with pytest.raises(KeyboardInterrupt):
        api.sweep(api.SweepConfig(config, tmp_path / "out", jobs=1))
    kept = pd.read_parquet(tmp_path / "out" / "cells.parquet")
    assert len(kept) == 3
    monkeypatch.setattr(sweep_module, "run_cell", real)
    resumed = api.sweep(api.SweepConfig(config, tmp_path / "out", jobs=1))
    assert (resumed.ran, resumed.skipped, len(resumed.cells)) == (13, 3, 16)


class Ref:
    """An object reference: hashable, holding its task's result."""

    def __init__(self, value: object) -> None:
        self.value = value


def test_ray_runs_each_cell_as_a_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for Ray's API (init, remote, wait, get): every cell goes through it, once."""
    submitted: list[object] = []
    fake = types.ModuleType("ray")
    fake.init = lambda address=None, ignore_reinit_error=False: submitted.append(("init", address))  # type: ignore[attr-defined]

    def remote(**options: object):  # type: ignore[no-untyped-def]
        assert options == {"num_cpus": 1}

        def wrap(fn):  # type: ignore[no-untyped-def]
            class Task:
                @staticmethod
                def remote(cell: object) -> Ref:
                    submitted.append(cell)
                    return Ref(fn(cell))

            return Task

        return wrap

    fake.remote = remote  # type: ignore[attr-defined]
    fake.wait = lambda refs, num_returns=1: (refs[:num_returns], refs[num_returns:])  # type: ignore[attr-defined]
    fake.get = lambda ref: ref.value  # type: ignore[attr-defined]
    fake.cancel = lambda ref: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", fake)
    outcome = api.sweep(
        api.SweepConfig(_file(tmp_path, GRID), tmp_path / "out", ray_address="ray://head:10001")
    )
    assert submitted[0] == ("init", "ray://head:10001")
    assert len(submitted) == 17 and outcome.ran == 16


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("colour = 1\n" + GRID, "unknown key 'colour'; valid: workloads"),
        (GRID.replace("seeds = [1, 2]", 'seeds = ["one"]'), "seeds: expected int values, got 'one'"),
        (GRID.replace("seeds = [1, 2]", "seeds = []"), "seeds: empty list"),
        (GRID.replace('"fcfs", ', '"fifo", '), "policies: unknown policy 'fifo'"),
        (GRID.replace('"equinox.alpha"', '"alpha"'), "params: key 'alpha': expected POLICY.KEY"),
        (GRID.replace('"equinox.alpha"', '"equinox.alhpa"'), "alhpa"),
        (
            GRID.replace("duration_s = 20", 'duration_s = "long"'),
            "duration_s: expected a int/float, got 'long'",
        ),
        ("workloads = [\n", "not valid TOML"),
        (GRID.replace("seeds = [1, 2]", "seeds = [1, -1]"), "--seed -1: must be in"),
        (
            GRID.replace('["overload"]', '["overload", "nowhere.jsonl"]'),
            "nowhere.jsonl: no such file, folder or suite",
        ),
        (GRID.replace("time_scales = [0.25, 1.0]", "time_scales = [0.0]"), "--time-scale 0: must be in (0,"),
        ('tenants = "bogus:3"\n' + GRID, "bogus"),
    ],
)
def test_bad_experiment_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _file(tmp_path, text)
    code, err = _run(["sweep", str(config), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and str(config) in err and fragment in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "cells.parquet").exists()


def test_resume_refuses_another_experiment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = GRID.replace("seeds = [1, 2]", "seeds = [1]").replace(
        "time_scales = [0.25, 1.0]", "time_scales = [0.25]"
    )
    api.sweep(api.SweepConfig(_file(tmp_path, small), tmp_path / "out", jobs=1))
    code, err = _run(
        ["sweep", str(_file(tmp_path, GRID, "other.toml")), "--out", str(tmp_path / "out")], capsys
    )
    assert code == 2 and "holds something other than a sweep" in err


def test_replay_config_runs_the_file_and_refuses_grids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = GRID.replace("seeds = [1, 2]", "seeds = 2").replace(
        "time_scales = [0.25, 1.0]", "time_scales = [1.0]"
    )
    one = one.replace("[0.5, 1.0]", "[0.5]")
    code, err = _run(
        ["replay", "--config", str(_file(tmp_path, one)), "--out", str(tmp_path / "r"), "--json"], capsys
    )
    assert code == 0, err
    summary = pd.read_parquet(tmp_path / "r" / "summary.parquet")
    assert summary["policy"].tolist() == ["vtc", "fcfs", "equinox"]
    cells = [c for c in cells_of(api.load_experiment(tmp_path / "e.toml")) if c.policy == "equinox"]
    assert summary.loc[2, "ttft_mean_s"] == run_cell(cells[0])["ttft_mean_s"].item()
    code, err = _run(["replay", "--config", str(_file(tmp_path, GRID, "g.toml"))], capsys)
    assert code == 2 and "seeds has 2 values" in err
    code, err = _run(["replay", "--config", str(tmp_path / "e.toml"), "--seed", "3"], capsys)
    assert code == 2 and "--seed: set it in" in err


def test_yaml_experiment_equals_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    yaml_text = (
        "workloads: [overload]\npolicies: [vtc, fcfs, equinox]\nseeds: [1, 2]\ntime_scales: [0.25, 1.0]\n"
        "profile: a10g-llama2-7b\nduration_s: 20\nparams:\n  equinox.alpha: [0.5, 1.0]\n"
    )
    from_yaml = api.load_experiment(_file(tmp_path, yaml_text, "e.yaml"))
    from_toml = api.load_experiment(_file(tmp_path, GRID))
    assert [c.cell_id for c in cells_of(from_yaml)] == [c.cell_id for c in cells_of(from_toml)]
    code, err = _run(
        ["sweep", str(_file(tmp_path, "- not a mapping\n", "bad.yaml")), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "expected a mapping" in err
