"""--slo: parsing, per-tenant goodput, and Equinox aiming at the run's objectives."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from equinox_cli.cli.app import main
from equinox_cli.core.errors import UserInputError
from equinox_cli.core.slo import Slo, SloSet, parse_slos
from equinox_cli.core.types import Request
from equinox_cli.metrics.summary import MetricsConfig, summarize
from equinox_cli.policies import make_policy
from tests.conftest import ConstantPredictor


def test_default_and_tenant_objectives() -> None:
    slos = parse_slos(["ttft=1.5", "chat:tpot=0.05", "tpot=0.1"])
    assert slos.default == Slo(1.5, 0.1)
    assert slos.for_client("chat") == Slo(1.5, 0.05)  # unset keys: the final default
    assert slos.for_client("code") == Slo(1.5, 0.1)
    assert parse_slos([]) == SloSet()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ttft", "expected [TENANT:]ttft=SECONDS"),
        ("latency=2", "keys: ttft, tpot"),
        ("ttft=soon", "not a number"),
        ("ttft=-1", "--slo ttft -1"),
    ],
)
def test_bad_slo_is_refused(value: str, fragment: str) -> None:
    with pytest.raises(UserInputError, match="--slo") as info:
        parse_slos([value])
    assert fragment in str(info.value)


def _requests() -> pd.DataFrame:
    """Two finished requests per tenant, TTFT 1 s and 3 s, TPOT 0.1 s."""
    rows = []
    for i, (client, ttft) in enumerate([("a", 1.0), ("a", 3.0), ("b", 1.0), ("b", 3.0)]):
        rows.append(
            {
                "request_id": f"r{i}",
                "client_id": client,
                "weight": 1.0,
                "arrival_s": 0.0,
                "prompt_tokens": 10,
                "output_tokens": 11,
                "max_tokens": 11,
                "status": "finished",
                "admitted_s": 0.0,
                "first_token_s": ttft,
                "finish_s": ttft + 1.0,
                "preemptions": 0,
            }
        )
    return pd.DataFrame(rows)


def test_goodput_uses_each_tenants_objective() -> None:
    empty = pd.DataFrame()
    makespan = 4.0
    base = summarize("p", _requests(), empty, empty, MetricsConfig())  # ttft ≤ 2: one of each tenant
    assert base.summary["goodput_requests_per_s"] == pytest.approx(2 / makespan)
    assert base.clients.set_index("client_id")["requests_in_slo"].to_dict() == {"a": 1, "b": 1}
    loose_b = MetricsConfig(slo=parse_slos(["b:ttft=5"]))  # b's 3 s request now counts
    per_client = summarize("p", _requests(), empty, empty, loose_b).clients.set_index("client_id")
    assert per_client["requests_in_slo"].to_dict() == {"a": 1, "b": 2}
    assert summarize("p", _requests(), empty, empty, loose_b).summary[
        "goodput_requests_per_s"
    ] == pytest.approx(3 / makespan)
    strict_tpot = MetricsConfig(slo=parse_slos(["tpot=0.05"]))
    assert summarize("p", _requests(), empty, empty, strict_tpot).summary["goodput_requests_per_s"] == 0


def test_equinox_aims_at_a_tenants_objective() -> None:
    policy = make_policy("equinox", {"ttft_target": "slo", "ttft_slo_s": "2"}, ConstantPredictor(10))
    policy.tenant_slos = {"chat": Slo(0.5, 0.1)}  # type: ignore[attr-defined]
    chat, code = Request("r1", "chat", 0.0, 10, 10), Request("r2", "code", 0.0, 10, 10)
    assert policy._ttft_target_s(chat) == 0.5  # type: ignore[attr-defined]
    assert policy._ttft_target_s(code) == 2.0  # type: ignore[attr-defined]


def test_replay_slo_reaches_goodput_and_equinox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(
        [
            "replay",
            "overload",
            "--duration",
            "20",
            "--slo",
            "ttft=0.001",
            "--out",
            str(tmp_path / "a"),
            "--json",
        ]
    )
    capsys.readouterr()
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["policies"]["equinox"]["ttft_slo_s"] == 0.001
    assert pd.read_parquet(tmp_path / "a" / "summary.parquet")["goodput_requests_per_s"].item() == 0
    main(
        [
            "replay",
            "overload",
            "--duration",
            "20",
            "--slo",
            "ttft=1",
            "-P",
            "ttft_slo_s=3",
            "--out",
            str(tmp_path / "b"),
        ]
    )
    capsys.readouterr()
    assert json.loads((tmp_path / "b" / "run.json").read_text())["policies"]["equinox"]["ttft_slo_s"] == 3.0
