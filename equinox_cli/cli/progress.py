"""A Rich progress bar as a RunObserver (progress is optional; the engine never draws)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class RichProgressObserver:
    """Requests done of all and the wall time; on the simulator also the simulated time (a live
    engine's clock is the wall clock)."""

    def __init__(self, console: Console, simulated: bool = True) -> None:
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("requests"),
        ]
        if simulated:
            columns.append(TextColumn("sim {task.fields[sim_s]:.0f} s"))
        columns += [TextColumn("wall"), TimeElapsedColumn()]
        self._progress = Progress(*columns, console=console, transient=True)
        self._task: TaskID | None = None

    def on_start(self, policy: str, total_requests: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task(policy, total=total_requests, sim_s=0.0)

    def on_advance(self, completed_requests: int, now_s: float) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=completed_requests, sim_s=now_s)

    def on_end(self, policy: str) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        self._progress.stop()
