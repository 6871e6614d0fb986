"""Who a request belongs to: the tenant map, the weight bounds, and the tag that proves a tenant claim.

Two processes share this: vLLM's API server (the middleware in tenants.py sets a request's tenant
from its API key) and the EngineCore (the plug-in's queue reads it back from `extra_args`). A body
can reach the scheduler by routes the middleware does not know (a future vLLM's), so with a tenant
map the middleware also writes `equinox_tag`, an HMAC of (tenant, weight) under a per-server secret
that only the two processes know (EQUINOX_TENANT_SECRET, set by `equinox serve`); the queue accepts
a claim only with a valid tag and files every other request under UNVERIFIED_TENANT at the lowest
weight. Without a map, claims are trusted as sent but weights are bounded to
[WEIGHT_MIN, WEIGHT_MAX]: the middleware refuses others, the queue clamps whatever still arrives.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equinox_cli.core.checks import reject_constant
from equinox_cli.core.errors import UserInputError

TENANT_MAP_ENV = "EQUINOX_TENANT_MAP"
SECRET_ENV = "EQUINOX_TENANT_SECRET"
DEFAULT_TENANT = "default"  # a request that names no tenant (no map)
UNVERIFIED_TENANT = "unverified"  # with a map: a request whose claim carries no valid tag
WEIGHT_MIN = 0.01
WEIGHT_MAX = 100.0
TENANT_NAME_MAX_CHARS = 128
MAP_FILE_MAX_BYTES = 16 * 1024 * 1024
CLIENT_KEY, WEIGHT_KEY, TAG_KEY = "equinox_client", "equinox_weight", "equinox_tag"


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    weight: float = 1.0


def weight_problem(weight: object) -> str | None:
    """Why `weight` is not a valid tenant weight (None if it is one)."""
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        return f"must be a number in [{WEIGHT_MIN:g}, {WEIGHT_MAX:g}]"
    if not WEIGHT_MIN <= weight <= WEIGHT_MAX:  # NaN fails too; a huge int compares exactly
        return f"{str(weight)[:20]} is outside [{WEIGHT_MIN:g}, {WEIGHT_MAX:g}]"
    return None


def clamp_weight(weight: object) -> float:
    """A usable weight from whatever arrived: numbers clamped to the bounds, anything else 1."""
    if isinstance(weight, bool):
        return 1.0
    if isinstance(weight, int) and abs(weight) > 10**6:  # float() of a huge int overflows
        weight = math.inf if weight > 0 else -math.inf
    try:
        value = float(weight)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1.0
    if math.isnan(value):
        return 1.0
    return min(max(value, WEIGHT_MIN), WEIGHT_MAX)


def tag(secret: bytes, tenant: Tenant) -> str:
    message = f"{tenant.name}\x00{float(tenant.weight)!r}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def claimed_tenant(extra: Mapping[str, Any] | None, secret: bytes | None) -> Tenant:
    """The tenant a request's `extra_args` claims; with a secret, only a correctly tagged claim."""
    extra = extra or {}
    client, weight = extra.get(CLIENT_KEY), extra.get(WEIGHT_KEY, 1.0)
    if secret is None:
        name = str(client)[:TENANT_NAME_MAX_CHARS] if client not in (None, "") else DEFAULT_TENANT
        return Tenant(name, clamp_weight(weight))
    claim = Tenant(str(client), clamp_weight(weight))
    sent = extra.get(TAG_KEY)
    if isinstance(client, str) and isinstance(sent, str) and hmac.compare_digest(sent, tag(secret, claim)):
        return claim
    return Tenant(UNVERIFIED_TENANT, WEIGHT_MIN)


def load_tenant_map(path: Path) -> dict[str, Tenant]:
    """API key → tenant, from a JSON object; one-line errors naming the file and the key."""
    data = _read_json_object(path)
    tenants = {}
    for key, value in data:
        if not key or key != key.strip() or not key.isprintable():
            raise UserInputError(f"{path}: key {key!r}: an API key must be non-empty printable text")
        entry = {"tenant": value} if isinstance(value, str) else value
        if not isinstance(entry, dict) or set(entry) - {"tenant", "weight"}:
            raise UserInputError(f'{path}: key {key!r}: expected "tenant" or {{"tenant": T, "weight": W}}')
        name, weight = entry.get("tenant"), entry.get("weight", 1.0)
        if not isinstance(name, str) or not name.strip() or len(name) > TENANT_NAME_MAX_CHARS:
            raise UserInputError(
                f"{path}: key {key!r}: tenant must be a non-empty string of at most "
                f"{TENANT_NAME_MAX_CHARS} characters"
            )
        if (problem := weight_problem(weight)) is not None:
            raise UserInputError(f"{path}: key {key!r}: weight {problem}")
        if key in tenants:
            raise UserInputError(f"{path}: key {key!r} appears twice")
        tenants[key] = Tenant(name, float(weight))
    if UNVERIFIED_TENANT in {t.name for t in tenants.values()}:
        raise UserInputError(f"{path}: the tenant name {UNVERIFIED_TENANT!r} is reserved")
    return tenants


def _read_json_object(path: Path) -> list[tuple[str, Any]]:
    """The (key, value) pairs of the file's top-level JSON object, duplicates kept for the caller."""
    if not path.is_file():
        raise UserInputError(f"{path}: the tenant map must be a regular file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAP_FILE_MAX_BYTES + 1)
        if len(raw) > MAP_FILE_MAX_BYTES:
            raise ValueError(f"larger than {MAP_FILE_MAX_BYTES} bytes")
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_Pairs, parse_constant=reject_constant)
    except (OSError, ValueError, RecursionError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise UserInputError(f"{path}: cannot read the tenant map ({reason})") from None
    if not isinstance(data, _Pairs) or not data:
        raise UserInputError(f'{path}: expected a non-empty JSON object {{"API key": "tenant"}}')
    # the hook turns every nested object into pairs too: give entries back their dicts
    return [(key, dict(value) if isinstance(value, _Pairs) else value) for key, value in data]


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as read: its (key, value) pairs in order, duplicates kept."""
