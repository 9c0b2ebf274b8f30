"""`MemoryBrokerHarness`: the conformance-suite harness of the `memory` gateway.

It runs a fresh `MemoryBackend` behind a `MemoryLink` for each test, builds gateways on that link,
and answers the suite's questions from the backend's own records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from broker_plugins import Backoff, RateLimitsSpec
from conformance_tests import HARNESS_VERSION, BackendRequest, BreakMode
from memory_broker._backend import MemoryBackend
from memory_broker._gateway import MemoryBrokerGateway
from memory_broker._link import MemoryLink

__all__ = ["MemoryBrokerHarness"]

_HEALTH_INTERVAL = 0.1
_HEALTH_TIMEOUT = 0.5


class MemoryBrokerHarness:
    """Harness protocol version 1 for `MemoryBrokerGateway` (or a subclass, via `gateway_type`)."""

    version = HARNESS_VERSION
    gateway_name = "memory"
    symbol = "ACME"
    break_modes = frozenset({BreakMode.CUT, BreakMode.BLACKHOLE})
    # A silent peer is noticed by the first probe left unanswered: one interval plus one timeout.
    half_open_bound: float | None = _HEALTH_INTERVAL + _HEALTH_TIMEOUT

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
        self._running()[0].reset_records()

    def _running(self) -> tuple[MemoryBackend, MemoryLink]:
        if self._backend is None or self._link is None:
            raise RuntimeError("the harness is not started")
        return self._backend, self._link
