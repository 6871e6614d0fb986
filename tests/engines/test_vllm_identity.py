"""The tenant map file, the weight bounds and the claim tag (identity.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from equinox_cli.core.errors import UserInputError
from equinox_cli.engines.vllm.identity import (
    UNVERIFIED_TENANT,
    WEIGHT_MIN,
    Tenant,
    claimed_tenant,
    load_tenant_map,
    tag,
    weight_problem,
)


def test_a_map_gives_each_key_its_tenant_and_weight(tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"k1": "alice", "k2": {"tenant": "bob", "weight": 3}}))
    assert load_tenant_map(path) == {"k1": Tenant("alice"), "k2": Tenant("bob", 3.0)}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "cannot read the tenant map"),
        ("[]", "non-empty JSON object"),
        ("{}", "non-empty JSON object"),
        ('[["k", "alice"]]', "non-empty JSON object"),
        ('{"": "alice"}', "key '': an API key must be non-empty printable text"),
        ('{" k": "alice"}', "an API key must be non-empty printable text"),
        ('{"k\\n": "alice"}', "an API key must be non-empty printable text"),
        ('{"k": ""}', "key 'k': tenant must be a non-empty string"),
        ('{"k": 5}', "key 'k': expected"),
        ('{"k": ["alice"]}', "key 'k': expected"),
        ('{"k": {"tenant": "a", "wieght": 2}}', "key 'k': expected"),
        ('{"k": {"tenant": "a", "weight": 0}}', r"key 'k': weight 0 is outside \[0.01, 100\]"),
        ('{"k": {"tenant": "a", "weight": 1e308}}', "weight 1e\\+308 is outside"),
        ('{"k": {"tenant": "a", "weight": 5e-324}}', "weight 5e-324 is outside"),
        ('{"k": {"tenant": "a", "weight": NaN}}', "cannot read the tenant map \\(NaN is not a number\\)"),
        ('{"k": {"tenant": "a", "weight": Infinity}}', "Infinity is not a number"),
        ('{"k": {"tenant": "a", "weight": 1' + "0" * 500 + "}}", "is outside"),
        ('{"k": {"tenant": "a", "weight": "heavy"}}', "weight must be a number in"),
        ('{"k": {"tenant": "a", "weight": true}}', "weight must be a number in"),
        ('{"k": "alice", "k": "bob"}', "key 'k' appears twice"),
        ('{"k": "unverified"}', "'unverified' is reserved"),
        ('{"k": "' + "x" * 200 + '"}', "at most 128 characters"),
        ("[" * 100_000 + "]" * 100_000, "cannot read the tenant map"),
    ],
)
def test_bad_map_files_get_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(content)
    with pytest.raises(UserInputError, match=message) as info:
        load_tenant_map(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_special_and_missing_files_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # reading it would block forever
    for path in (tmp_path, fifo, tmp_path / "missing.json", Path("/dev/zero")):
        with pytest.raises(UserInputError, match="must be a regular file"):
            load_tenant_map(path)


def test_weight_bounds() -> None:
    assert weight_problem(1) is None and weight_problem(0.01) is None and weight_problem(100) is None
    for bad in (0, -1, 100.5, float("inf"), float("nan"), True, "2", None, 10**400):
        assert weight_problem(bad) is not None


def test_a_tag_binds_tenant_weight_and_secret() -> None:
    alice = Tenant("alice", 2.0)
    good = {"equinox_client": "alice", "equinox_weight": 2, "equinox_tag": tag(b"s", alice)}
    assert claimed_tenant(good, b"s") == alice  # 2 and 2.0 are the same weight
    for changed in ({"equinox_client": "bob"}, {"equinox_weight": 3}, {"equinox_tag": tag(b"t", alice)}):
        assert claimed_tenant({**good, **changed}, b"s") == Tenant(UNVERIFIED_TENANT, WEIGHT_MIN)
    assert claimed_tenant({**good, "equinox_tag": 5}, b"s").name == UNVERIFIED_TENANT
    assert claimed_tenant(good, None) == alice  # no map: the claim is taken as sent
