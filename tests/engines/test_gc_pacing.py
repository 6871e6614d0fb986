"""The replay's garbage-collector pacing: automatic collection off inside, restored after."""

from __future__ import annotations

import gc

from equinox_cli.engines.http import gc_pacing
from equinox_cli.engines.http.gc_pacing import PacedCollector


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def _make_young(n: int) -> None:
    for _ in range(n):
        _Cycle()  # unreachable cycles: only the collector frees them


def test_collects_only_in_gaps_or_when_far_behind() -> None:
    assert gc.isenabled()
    with PacedCollector() as collector:
        assert not gc.isenabled()
        _make_young(gc_pacing.YOUNG_OBJECTS // 2)
        assert not collector.maybe_collect(free_s=1.0)  # too few objects yet
        _make_young(gc_pacing.YOUNG_OBJECTS)
        assert not collector.maybe_collect(free_s=0.0)  # enough, but a send is due
        assert collector.maybe_collect(free_s=1.0)  # a gap: collect
        assert gc.get_count()[0] < gc_pacing.YOUNG_OBJECTS
        _make_young(gc_pacing.FORCE_OBJECTS)
        assert collector.maybe_collect(free_s=0.0)  # far behind: collect regardless
        assert collector.collections == 2
    assert gc.isenabled()


def test_leaves_the_collector_disabled_if_it_was() -> None:
    gc.disable()
    try:
        with PacedCollector():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
