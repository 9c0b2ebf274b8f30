"""`MemoryBrokerHarness`: the conformance-suite harness of the `memory` gateway.

It runs a fresh `MemoryBackend` behind a `MemoryLink` for each test, builds gateways on that link,
and answers the suite's questions from the backend's and the link's own records. It speaks harness
protocol version 2 in full: every optional member is there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from broker_plugins import (
    Backoff,
    BrokerError,
    BrokerUnavailableError,
    RateLimitExceededError,
    RateLimitsSpec,
)
from conformance_tests import BackendConnection, BackendRequest, BreakMode, Failure, ServedValue
from memory_broker._backend import MemoryBackend
from memory_broker._gateway import MemoryBrokerGateway
from memory_broker._link import MemoryLink

__all__ = ["MemoryBrokerHarness"]

_HEALTH_INTERVAL = 0.1
_HEALTH_TIMEOUT = 0.5

_FAILURES: dict[Failure, Callable[[float | None], Callable[[], BrokerError]]] = {
    Failure.UNAVAILABLE: lambda _after: lambda: BrokerUnavailableError("memory backend: busy, try again"),
    Failure.RATE_LIMITED: lambda _after: lambda: RateLimitExceededError("memory backend: over budget"),
    Failure.RATE_LIMITED_RETRY_AFTER: lambda after: (
        lambda: RateLimitExceededError(f"memory backend: over budget, retry in {after} s", retry_after=after)
    ),
}


class MemoryBrokerHarness:
    """Harness protocol version 2 for `MemoryBrokerGateway` (or a subclass, via `gateway_type`)."""

    version = 2
    gateway_name = "memory"
    symbol = "ACME"
    break_modes = frozenset({BreakMode.CUT, BreakMode.BLACKHOLE})
    # A silent peer is noticed by the first probe left unanswered: one interval plus one timeout.
    half_open_bound: float | None = _HEALTH_INTERVAL + _HEALTH_TIMEOUT
    injectable_failures = frozenset(_FAILURES)

    def __init__(self, *, gateway_type: type[MemoryBrokerGateway] = MemoryBrokerGateway) -> None:
        self._gateway_type = gateway_type
        self._backend: MemoryBackend | None = None
        self._link: MemoryLink | None = None

    async def start(self) -> None:
        self._backend = MemoryBackend()
        self._link = MemoryLink(self._backend)

    async def stop(self) -> None:
        if self._link is not None:
            self._link.cut()  # every session still open fails: nothing waits on this backend
        self._backend = self._link = None

    def create_gateway(self, rate_limits: RateLimitsSpec) -> MemoryBrokerGateway:
        # Fast probes and retries, so that outages are noticed and healed within the suite's bounds.
        return self._gateway_type(
            link=self._running()[1],
            rate_limits=rate_limits,
            health_interval=_HEALTH_INTERVAL,
            health_timeout=_HEALTH_TIMEOUT,
            connect_timeout=1.0,
            call_timeout=2.0,
            backoff=Backoff(initial=0.02, maximum=0.2),
        )

    async def break_connection(self, mode: BreakMode) -> None:
        link = self._running()[1]
        if mode is BreakMode.CUT:
            link.cut()
        else:
            link.blackhole()

    async def restore_connection(self) -> None:
        self._running()[1].restore()

    async def set_latency(self, seconds: float) -> None:
        self._running()[1].latency = seconds

    def backend_requests(self) -> Sequence[BackendRequest]:
        return [BackendRequest(r.method, r.category, r.time) for r in self._running()[0].received]

    def backend_orders(self) -> Mapping[str, int]:
        return dict(self._running()[0].orders_created)

    def reset_backend_records(self) -> None:
        backend, link = self._running()
        backend.reset_records()
        link.reset_records()

    # -- protocol version 2 --------------------------------------------------------------------------

    async def fail_next_requests(
        self, count: int, failure: Failure, retry_after: float | None = None
    ) -> None:
        self._running()[0].fail_next(count, _FAILURES[failure](retry_after))

    async def force_page_size(self, size: int) -> int:
        self._running()[0].page_size = size
        return size

    def backend_connections(self) -> Sequence[BackendConnection]:
        return [BackendConnection(c.opened, c.closed) for c in self._running()[1].connections]

    def served_values(self) -> Sequence[ServedValue]:
        return [ServedValue(s.method, _domain(s.value), s.time) for s in self._running()[0].served]

    async def disable_deduplication(self) -> None:
        self._running()[0].deduplicate = False

    async def cancel_order_at_backend(self, order_id: str) -> None:
        self._running()[0].cancel_at_backend(order_id)

    def backend_heard(self) -> Sequence[float]:
        return list(self._running()[1].heard)

    def _running(self) -> tuple[MemoryBackend, MemoryLink]:
        if self._backend is None or self._link is None:
            raise RuntimeError("the harness is not started")
        return self._backend, self._link


def _domain(value: object) -> object:
    """A backend answer as the gateway hands it on: a page of candles is its candles; a subscription's
    answer (the sequence it starts after, or nothing) stays as it is."""
    candles = getattr(value, "candles", None)
    return value if candles is None else candles
