"""Gateways that each break one promise, every one a few lines off the memory example.

The suite must fail each of them on the clauses named in `EXPECTED_FAILURES`, and on no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import attrs
from aiolimiter import AsyncLimiter
from memory_broker import MemoryBrokerGateway, MemorySession

from broker_plugins import (
    CATEGORIES,
    BrokerUnavailableError,
    ConnectionState,
    Order,
    OrderOutcomeUnknownError,
    OrderRequest,
    RateLimiter,
    RateLimitsSpec,
)


class NoLimiterGateway(MemoryBrokerGateway):
    """Checks the link but never waits for a permit."""

    async def _admit(self, category: str, timeout: float) -> None:
        await self._wait_link(timeout)


class _Buckets:
    """One `aiolimiter.AsyncLimiter(N, P)` per limit: a leaky bucket, which admits about 2N in a window."""

    def __init__(self, rate_limits: RateLimitsSpec) -> None:
        limits = RateLimiter(rate_limits)
        self._buckets = {
            category: [AsyncLimiter(limit.max_calls, limit.period) for limit in limits.limits_for(category)]
            for category in CATEGORIES
        }

    async def acquire(self, category: str) -> None:
        for bucket in self._buckets[category]:
            await bucket.acquire()

    def note_refusal(self, category: str, retry_after: float | None) -> None:
        return None


class BareAsyncLimiterGateway(MemoryBrokerGateway):
    """Takes its permits from leaky buckets (injected as its `rate_limiter`)."""

    def __init__(self, *, rate_limits: RateLimitsSpec = (), **options: Any) -> None:
        super().__init__(rate_limiter=_Buckets(rate_limits), **options)


class FirstWindowOnlyGateway(MemoryBrokerGateway):
    """Keeps the first limit of each category and ignores the others (per hour behind per second)."""

    def __init__(self, *, rate_limits: RateLimitsSpec = (), **options: Any) -> None:
        limits = RateLimiter(rate_limits)
        first = {category: limits.limits_for(category)[:1] for category in CATEGORIES}
        super().__init__(rate_limits=first, **options)


class NoReconnectGateway(MemoryBrokerGateway):
    """Gives up at the first failure: the state goes to DISCONNECTED and stays there."""

    async def _supervise(self) -> None:
        reason = await self._watch()
        if self._session is not None:
            self._session.close(str(reason))
        self._set_state(ConnectionState.DISCONNECTED, reason)


class HangingGateway(MemoryBrokerGateway):
    """Waits inside every call for an outage to end, instead of failing fast."""

    async def _wait_link(self, timeout: float) -> None:
        while self.state in (ConnectionState.RECONNECTING, ConnectionState.CONNECTING):
            await self._state_changed()
        await super()._wait_link(timeout)


class ResendingGateway(MemoryBrokerGateway):
    """Places an order again, under a new client_order_id, when the first one's outcome is unknown."""

    async def place_order(self, request: OrderRequest) -> Order:
        try:
            return await super().place_order(request)
        except OrderOutcomeUnknownError:
            while True:  # "retry until it goes through", each time as a new order
                await asyncio.sleep(0.05)
                with contextlib.suppress(BrokerUnavailableError):
                    return await super().place_order(attrs.evolve(request, client_order_id=uuid.uuid4().hex))


class TaskLeakingGateway(MemoryBrokerGateway):
    """Starts a keepalive task with every reconnect, and never stops one."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._keepalives: list[asyncio.Task[None]] = []

    async def _restore_session(self) -> MemorySession:
        session = await super()._restore_session()
        self._keepalives.append(asyncio.get_running_loop().create_task(_keep_alive()))
        return session


async def _keep_alive() -> None:
    while True:
        await asyncio.sleep(0.05)


_RATE_LIMITS = {f"RL-{number}" for number in range(1, 9)}

EXPECTED_FAILURES: dict[type[MemoryBrokerGateway], set[str]] = {
    NoLimiterGateway: _RATE_LIMITS,
    BareAsyncLimiterGateway: _RATE_LIMITS,
    FirstWindowOnlyGateway: {"RL-3"},
    NoReconnectGateway: {"RC-2", "RC-3", "RC-4", "RC-6"},
    HangingGateway: {"RC-1"},
    ResendingGateway: {"RC-5"},
    TaskLeakingGateway: {"RC-6"},
}
"""Each broken gateway, and the clauses the suite must fail it on: those and no others."""
