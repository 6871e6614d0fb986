"""`equinox sweep CONFIG`: the experiment's grid, one cell per (workload, rate or time scale, seed,
-E combination, policy, -P combination), each a pure seeded function of its config, run in parallel
processes here or as Ray tasks on a cluster (`ray_address`).

OUT/cells/<cell id>.parquet appears (atomically) as each cell finishes, so an interrupted sweep
keeps every finished cell and a rerun with the same config skips them. OUT/cells.parquet holds all
finished cells' summary rows (one per cell: the policy's summary plus the cell's settings);
OUT/sweep.json the experiment and the sweep's figures.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from equinox_cli.api.experiment import Experiment, load_experiment
from equinox_cli.api.params import make_policy_checked, route_policy_params
from equinox_cli.api.profiles import resolve_profile
from equinox_cli.api.replay import ReplayConfig, metrics_config, run_policies
from equinox_cli.api.runs import versions
from equinox_cli.core.errors import UserInputError
from equinox_cli.metrics.summary import policies_identical
from equinox_cli.report.read import SWEEP_SCHEMA
from equinox_cli.workload.build import WorkloadSpec, check_source, check_spec

CELL_COLUMNS = ("cell", "key", "workload", "rate_rps", "time_scale", "seed", "engine_params", "params")


@dataclass(frozen=True, slots=True)
class Cell:
    """One run: everything that decides its numbers (and nothing else)."""

    workload: str
    rate_rps: float
    time_scale: float
    seed: int
    policy: str
    params: tuple[str, ...]
    engine_params: tuple[str, ...]
    profile: str
    predictor: str
    duration_s: float | None
    limit: int | None
    tenants: str | None
    format: str | None
    max_tokens: int
    start_s: float
    slo: tuple[str, ...] = ()

    @property
    def cell_id(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def key(self) -> str:
        """What `compare` matches on: every setting but the seed and the policy."""
        parts = [
            self.workload,
            f"rate={self.rate_rps:g}",
            f"scale={self.time_scale:g}",
            f"profile={self.profile}",
        ]
        settings = [*(f"-E {e}" for e in self.engine_params), *(f"--slo {v}" for v in self.slo)]
        return " ".join([*parts, *settings, *(f"-P {p}" for p in self.params)])


@dataclass(frozen=True, slots=True)
class SweepConfig:
    experiment: Path
    out: Path
    jobs: int | None = None  # None: one per CPU
    ray_address: str | None = None


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    out_dir: Path
    cells: pd.DataFrame  # every finished cell's row
    ran: int
    skipped: int
    wall_s: float
    cell_s_sum: float  # the cells' own times, summed (parallel efficiency = sum / (wall × workers))
    workers: int
    warnings: list[str] = field(default_factory=list)


def cells_of(experiment: Experiment) -> list[Cell]:
    """The grid in a fixed order; rates and time scales cannot both vary (load_experiment)."""
    e = experiment
    fixed = {
        "profile": e.profile,
        "predictor": e.predictor,
        "duration_s": e.duration_s,
        "limit": e.limit,
        "tenants": e.tenants,
        "format": e.format,
        "max_tokens": e.max_tokens,
        "start_s": e.start_s,
        "slo": e.slo,
    }
    grid = itertools.product(e.workloads, e.rates, e.time_scales, e.engine_combos(), e.seeds, e.policies)
    return [
        Cell(
            workload=workload,
            rate_rps=rate,
            time_scale=scale,
            seed=seed,
            policy=policy,
            params=tuple(params),
            engine_params=tuple(engine),
            **fixed,  # type: ignore[arg-type]
        )
        for workload, rate, scale, engine, seed, policy in grid
        for params in e.policy_params(policy)
    ]


def check_cells(cells: list[Cell], source: Path) -> None:
    """Every workload setting, -P and -E value valid before any cell runs (one line naming the file)."""
    seen: set[tuple[str, ...]] = set()
    for spec in {cell_spec(cell) for cell in cells}:
        try:
            check_spec(spec)
            check_source(spec)
        except UserInputError as exc:
            raise UserInputError(f"{source}: {exc}") from None
    for cell in cells:
        for check in ((cell.policy, *cell.params), ("-E", *cell.engine_params)):
            if check in seen:
                continue
            seen.add(check)
            try:
                if check[0] == "-E":
                    resolve_profile(cell.profile, cell.engine_params)
                else:
                    make_policy_checked(
                        cell.policy, route_policy_params(cell.params, cell.policy, [cell.policy])[cell.policy]
                    )
            except UserInputError as exc:
                raise UserInputError(f"{source}: {exc}") from None


def cell_spec(cell: Cell) -> WorkloadSpec:
    return WorkloadSpec(
        source=cell.workload,
        format=cell.format,
        tenants=cell.tenants,
        seed=cell.seed,
        rate_rps=cell.rate_rps,
        time_scale=cell.time_scale,
        duration_s=cell.duration_s,
        limit=cell.limit,
        start_s=cell.start_s,
        max_tokens=cell.max_tokens,
    )


def run_cell(cell: Cell) -> pd.DataFrame:
    """The cell's summary row with its settings. Pure: the same cell gives the same numbers."""
    start = time.perf_counter()
    spec = cell_spec(cell)
    config = ReplayConfig(
        workload=spec,
        profile=cell.profile,
        policy=cell.policy,
        policy_params=cell.params,
        engine_params=cell.engine_params,
        predictor=cell.predictor,
        metrics=metrics_config(cell.slo),
    )
    outcome = run_policies(config)
    row = outcome.summary.assign(
        cell=cell.cell_id,
        key=cell.key,
        workload=cell.workload,
        rate_rps=cell.rate_rps,
        time_scale=cell.time_scale,
        seed=cell.seed,
        engine_params=" ".join(cell.engine_params),
        params=" ".join(cell.params),
        requests_in_workload=len(outcome.workload),
    )
    return row.assign(cell_wall_s=time.perf_counter() - start)


def sweep(config: SweepConfig, progress: Callable[[int, int], None] | None = None) -> SweepOutcome:
    experiment = load_experiment(config.experiment)
    cells = cells_of(experiment)
    check_cells(cells, config.experiment)
    cells_dir = config.out / "cells"
    _claim(config.out, experiment)
    done = {p.stem for p in cells_dir.glob("*.parquet")}
    todo = [c for c in cells if c.cell_id not in done]
    workers = max(1, min(config.jobs or os.cpu_count() or 1, len(todo) or 1))
    start = time.perf_counter()
    finished = len(cells) - len(todo)
    try:
        runner = _ray_cells if config.ray_address else _local_cells
        for cell, rows in runner(todo, workers, config.ray_address):
            _write_cell(cells_dir, cell, rows)
            finished += 1
            if progress is not None:
                progress(finished, len(cells))
    finally:  # also on Ctrl-C: every finished cell is on disk; the table covers them
        table = _gather(cells_dir, [c.cell_id for c in cells])
        _write_summary(config.out, experiment, table, len(cells))
    wall = time.perf_counter() - start
    ran = table[table["cell"].isin({c.cell_id for c in todo})]
    return SweepOutcome(
        config.out,
        table,
        len(todo),
        len(cells) - len(todo),
        wall,
        float(ran["cell_wall_s"].sum()),
        workers,
        identical_warnings(table),
    )


def _claim(out: Path, experiment: Experiment) -> None:
    """OUT is new, or holds a sweep of this very experiment (resume)."""
    marker = out / "experiment.json"
    grid = {k: v for k, v in _experiment_dict(experiment).items() if k != "source"}  # the file may move
    document = json.dumps(grid, sort_keys=True, indent=2)
    if out.exists() and any(out.iterdir()):
        if not marker.exists() or marker.read_text() != document:
            raise UserInputError(
                f"{out}: --out holds something other than a sweep of {experiment.source} (a resume needs "
                "the same experiment; use a new --out)"
            )
        return
    (out / "cells").mkdir(parents=True, exist_ok=True)
    marker.write_text(document)


def _experiment_dict(experiment: Experiment) -> dict[str, object]:
    values = asdict(experiment)
    values["source"] = str(experiment.source)
    return values


def _local_cells(todo: list[Cell], workers: int, _address: str | None) -> Iterator[tuple[Cell, pd.DataFrame]]:
    if workers == 1:
        for cell in todo:
            yield cell, run_cell(cell)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future[pd.DataFrame], Cell] = {}
        queue = list(reversed(todo))
        try:
            while queue or pending:
                while queue and len(pending) < 2 * workers:  # a short queue: Ctrl-C stops soon
                    cell = queue.pop()
                    pending[pool.submit(run_cell, cell)] = cell
                ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in ready:
                    yield pending.pop(future), future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _ray_cells(todo: list[Cell], workers: int, address: str | None) -> Iterator[tuple[Cell, pd.DataFrame]]:
    try:
        import ray
    except ImportError:
        raise UserInputError(
            "--ray needs Ray installed here and on the cluster: pip install 'ray[default]'"
        ) from None
    ray.init(address=address, ignore_reinit_error=True)
    remote = ray.remote(num_cpus=1)(run_cell)
    refs = {remote.remote(cell): cell for cell in todo}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                yield refs.pop(ref), ray.get(ref)
    except BaseException:
        for ref in refs:
            ray.cancel(ref)
        raise


def _write_cell(cells_dir: Path, cell: Cell, rows: pd.DataFrame) -> None:
    path = cells_dir / f"{cell.cell_id}.parquet"
    tmp = cells_dir / f".{cell.cell_id}.tmp"
    rows.to_parquet(tmp, index=False)
    tmp.replace(path)


def _gather(cells_dir: Path, order: list[str]) -> pd.DataFrame:
    """The finished cells' rows, in the grid's order."""
    frames = [
        pd.read_parquet(cells_dir / f"{c}.parquet") for c in order if (cells_dir / f"{c}.parquet").exists()
    ]
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["cell", "key", "policy", "cell_wall_s"])
    )


def _write_summary(out: Path, experiment: Experiment, table: pd.DataFrame, total: int) -> None:
    tmp = out / ".cells.parquet.tmp"
    table.to_parquet(tmp, index=False)
    tmp.replace(out / "cells.parquet")
    document = {
        "schema": SWEEP_SCHEMA,
        "experiment": _experiment_dict(experiment),
        "cells": total,
        "finished": len(table),
        "complete": len(table) == total,
        "versions": versions(),
    }
    (out / "sweep.json").write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def identical_warnings(table: pd.DataFrame) -> list[str]:
    """Settings under which every policy gave the same numbers (the workload never queued)."""
    if table.empty or table["policy"].nunique() < 2:
        return []
    found = []
    setting = ["workload", "rate_rps", "time_scale", "engine_params", "seed"]  # all policies, all -P
    for values, group in table.groupby(setting, sort=False):
        if group["policy"].nunique() > 1 and policies_identical(group):
            where = " ".join(f"{k}={v}" for k, v in zip(setting, values, strict=True) if v != "")
            found.append(f"{where}: every policy gave identical results (the workload never queued)")
    return found
