"""api/replay.py: what a replay tells the user about its own measurement."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd

from equinox_cli.api.replay import late_send_warnings


def _run(lags: list[float]) -> Any:
    return SimpleNamespace(requests=pd.DataFrame({"send_lag_s": lags}))


def test_a_client_that_sent_late_is_warned_about_and_an_on_time_or_simulated_one_is_not() -> None:
    on_time = [0.001] * 200
    late = on_time[:190] + [1.12] * 10  # one burst sent a second late: 5 % of the requests
    runs = {"vtc": _run(late), "equinox": _run(on_time), "sim": SimpleNamespace(requests=pd.DataFrame())}
    (warning,) = late_send_warnings(runs)
    assert warning.startswith("vtc: the client sent requests late (send lag p99 1.12 s, max 1.12 s")
    assert "engine_ttft_s" in warning
