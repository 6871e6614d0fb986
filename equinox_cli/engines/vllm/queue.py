"""PolicyQueue: vLLM's waiting-queue interface (RequestQueue) backed by an Equinox Policy.

vLLM's waiting pass peeks at the head, may skip it (pop, then prepend later) or stop when it does
not fit, and pops it when it is admitted; preemption prepends. A policy charges a request when it is
picked, so the queue keeps the picked request in a head slot: peek picks once, pop hands the same
request over, and prepending the head is a no-op (it stays first, still charged). Prepending any
other request gives it back to the policy (`requeue`, which refunds its admission charge); removing
a waiting request (an abort) drops it without charge.

Adaptive batching: vLLM's waiting pass stops as soon as the queue is falsy, so an optional
`admit_gate(head)` that answers False makes the queue falsy and ends this step's admissions with the
head kept (still first, still charged); `on_pop(request)` tells the gate's owner that the head was
handed over. The queue's length is always the truth (vLLM's stats read len()).

Tenant identity comes from the request: `sampling_params.extra_args["equinox_client"]` (the
`vllm_xargs` of the OpenAI request, set by the client or by the API-key middleware) and an optional
`equinox_weight`, read by identity.claimed_tenant: with the server's tenant secret only a claim the
middleware tagged counts (else UNVERIFIED_TENANT); without it a request naming no tenant belongs to
DEFAULT_TENANT and weights are clamped to identity's bounds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from equinox_cli.core.protocols import Policy
from equinox_cli.core.types import Request
from equinox_cli.engines.vllm.identity import SECRET_ENV, claimed_tenant
from equinox_cli.workload.limits import MAX_TOKENS


def declared_max_tokens(params: Any) -> int:
    """The request's cap as its client declared it: `max_tokens`, or the larger
    `extra_args["equinox_max_tokens"]` of a replay that forces lengths (its max_tokens is then the
    true output, which no policy may read). Only a larger claim counts: declaring more can only
    cost its sender, so a tenant gains nothing by lying."""
    sent = getattr(params, "max_tokens", None) or 1
    extra = getattr(params, "extra_args", None)
    claim = extra.get("equinox_max_tokens") if isinstance(extra, dict) else None
    if isinstance(claim, int) and not isinstance(claim, bool) and sent < claim <= MAX_TOKENS:
        return claim
    return int(sent)


def to_request(vreq: Any, arrival_s: float, secret: bytes | None = None) -> Request:
    """The Equinox view of a vLLM request. `arrival_s` is on the queue's clock: vLLM's own
    `arrival_time` is wall-clock time, which must not be mixed with the monotonic `now_s` that
    policies compare it with (queueing delay, Equinox's latency credit)."""
    params = getattr(vreq, "sampling_params", None)
    tenant = claimed_tenant(getattr(params, "extra_args", None), secret)
    max_tokens = declared_max_tokens(params)
    return Request(
        request_id=str(vreq.request_id),
        client_id=tenant.name,
        arrival_s=arrival_s,
        prompt_tokens=int(vreq.num_prompt_tokens),
        max_tokens=max_tokens,
        weight=tenant.weight,
    )


class PolicyQueue:
    def __init__(
        self, policy: Policy, clock: Callable[[], float] = time.monotonic, secret: bytes | None = None
    ) -> None:
        self.policy = policy
        self._clock = clock
        # the server's tenant secret (a tenant map is on): only tagged tenant claims count
        env_secret = os.environ.get(SECRET_ENV)
        self._secret = secret if secret is not None else (env_secret.encode() if env_secret else None)
        self._waiting: dict[str, Any] = {}  # request id → vLLM request, while in the policy
        self._requests: dict[str, Request] = {}  # request id → Equinox request, while known
        self._head: Any | None = None
        self.rejected: list[Any] = []  # refused by admission control (RPM): the scheduler aborts them
        self.admit_gate: Callable[[Request], bool] | None = None
        self.on_pop: Callable[[Request], None] | None = None

    # --- RequestQueue interface ---------------------------------------------------------------
    def add_request(self, vreq: Any) -> None:
        now = self._clock()
        request = to_request(vreq, now, self._secret)
        self._requests[request.request_id] = request
        if self.policy.on_arrival(request, now):
            self._waiting[request.request_id] = vreq
        else:
            self.rejected.append(vreq)

    def peek_request(self) -> Any:
        head = self._fill_head()
        if head is None:
            raise IndexError("peek from an empty queue")
        return head

    def pop_request(self) -> Any:
        head = self._fill_head()
        if head is None:
            raise IndexError("pop from an empty queue")
        self._head = None
        if self.on_pop is not None:
            self.on_pop(self._requests[str(head.request_id)])
        return head

    def prepend_request(self, vreq: Any) -> None:
        if vreq is self._head:
            return
        rid = str(vreq.request_id)
        request = self._requests.get(rid) or to_request(vreq, self._clock(), self._secret)
        self._requests[rid] = request
        self._waiting[rid] = vreq
        self.policy.requeue(request, self._clock())

    def prepend_requests(self, requests: Iterable[Any]) -> None:
        for vreq in requests:
            self.prepend_request(vreq)

    def request_of(self, request_id: str) -> Request | None:
        """The Equinox request behind a vLLM request id (None if unknown)."""
        return self._requests.get(request_id)

    def forget(self, request_id: str) -> Request | None:
        """A request left the engine: return its Equinox request (for on_finish) and drop it."""
        return self._requests.pop(request_id, None)

    def remove_request(self, vreq: Any) -> None:
        self.remove_requests((vreq,))

    def remove_requests(self, requests: Iterable[Any]) -> None:
        for vreq in requests:
            rid = str(vreq.request_id)
            if vreq is self._head:  # give it back (refunding its charge), then drop it below
                self._head = None
                self.policy.requeue(self._requests[rid], self._clock())
                self._waiting[rid] = vreq
            if self._waiting.pop(rid, None) is not None:
                self.policy.remove(self._requests[rid])

    def __bool__(self) -> bool:
        """Something may be admitted now: a head exists and the admission gate lets it in."""
        head = self._fill_head()
        if head is None:
            return False
        return self.admit_gate is None or self.admit_gate(self._requests[str(head.request_id)])

    def __len__(self) -> int:
        return len(self.policy) + (self._head is not None)

    def __iter__(self) -> Iterator[Any]:
        """Head first, then the rest in arrival order (the policy's order is only known by picking)."""
        if self._head is not None:
            yield self._head
        yield from (v for rid, v in self._waiting.items() if v is not self._head)

    # --- internals --------------------------------------------------------------------------
    def _fill_head(self) -> Any | None:
        if self._head is None and len(self.policy):
            picked = self.policy.pick_next(self._clock())
            if picked is not None:
                self._head = self._waiting.pop(picked.request_id)
        return self._head
