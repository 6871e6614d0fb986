"""The HTML report: files produced, self-contained, holding the expected series (not pixels)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equinox_cli import api
from equinox_cli.cli.app import main
from equinox_cli.metrics.compare import pareto_front


def _series(page: str) -> set[str]:
    return set(re.findall(r'id="series:([^"]+)"', page))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "run"
    api.replay(
        api.ReplayConfig(
            workload=api.WorkloadSpec(source="overload", duration_s=30),
            profile="a10g-llama2-7b",
            policy="vtc",
            baselines=("fcfs",),
            out=out,
        )
    )
    return out


def test_run_report_holds_every_figure_and_tenant(run: Path) -> None:
    page = api.report(run).read_text()
    clients = set(pd.read_parquet(run / "vtc" / "clients.parquet")["client_id"])
    assert clients <= _series(page) and {"vtc", "fcfs"} <= _series(page)
    names = {p.stem for p in (run / "figures").glob("*.png")}
    assert {"service-vtc", "service-fcfs", "ttft-cdf-vtc", "e2e-cdf-fcfs", "counters-vtc", "jain"} <= names
    assert {"service-difference", "throughput", "utilisation"} <= names
    assert "counters-fcfs" not in names  # FCFS keeps no counters
    # offline: no scripts, no remote resources
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # XML namespaces are not fetched
    summary = pd.read_parquet(run / "summary.parquet")
    assert f"{summary.loc[0, 'output_tokens_per_s']:.4g}" in page


def test_service_rate_series_are_the_timeline(run: Path) -> None:
    from equinox_cli.report.figures import service_rate_figures

    line = pd.read_parquet(run / "vtc" / "timeline.parquet")
    (figure,) = service_rate_figures({"vtc": line})
    for series in figure.series:
        rows = line[line["client_id"] == series.name]
        np.testing.assert_array_equal(series.y, rows["service_rate"].to_numpy(float))


def test_sweep_report_has_load_curves_and_pareto(tmp_path: Path) -> None:
    config = tmp_path / "e.toml"
    config.write_text(
        'workloads = ["overload"]\npolicies = ["vtc", "fcfs"]\nseeds = [1]\ntime_scales = [0.5, 1.0]\n'
        'profile = "a10g-llama2-7b"\nduration_s = 20\n'
    )
    api.sweep(api.SweepConfig(config, tmp_path / "s", jobs=1))
    page = api.report(tmp_path / "s").read_text()
    assert {"vtc", "fcfs", "Pareto front"} <= _series(page)
    assert "vs load" in page and "trade-off" in page


def test_pareto_front_keeps_only_undominated_points() -> None:
    throughput = np.array([100.0, 90.0, 110.0, 80.0])
    difference = np.array([50.0, 40.0, 60.0, 70.0])  # the last is beaten by all; others trade off
    assert pareto_front(throughput, difference).tolist() == [0, 1, 2]


def test_report_of_a_bad_folder_is_one_line_exit_2(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder, fragment in ((tmp_path, "not a report or sweep folder"), (tmp_path / "x", "not a folder")):
        with pytest.raises(SystemExit) as info:
            main(["report", str(folder)])
        assert info.value.code == 2 and fragment in capsys.readouterr().err
    old = tmp_path / "old"
    old.mkdir()
    meta = json.loads((run / "run.json").read_text())
    meta["schema"] = "equinox.report/9"
    (old / "run.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit) as info:
        main(["report", str(old)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "schema equinox.report/9" in err
    assert not (old / "report.html").exists()


def test_replay_html_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(
        [
            "replay",
            "overload",
            "--duration",
            "10",
            "--baseline",
            "fcfs",
            "--out",
            str(tmp_path / "r"),
            "--html",
        ]
    )
    capsys.readouterr()
    page = (tmp_path / "r" / "report.html").read_text()
    assert {"equinox", "fcfs"} <= _series(page) and (
        tmp_path / "r" / "figures" / "jain.png"
    ).stat().st_size > 0
