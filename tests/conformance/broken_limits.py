"""Broken gateways that break a rate-limit promise, each a few lines off the memory example."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from aiolimiter import AsyncLimiter
from memory_broker import MemoryBrokerGateway
from memory_broker._backend import CandlePage
from memory_broker._gateway import _Refused

from broker_plugins import (
    CATEGORIES,
    BrokerUnavailableError,
    Candle,
    ConnectionState,
    Interval,
    OrderUpdate,
    RateLimiter,
    RateLimitExceededError,
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


class ForgetfulLimiterGateway(MemoryBrokerGateway):
    """Builds a new limiter with every reconnect, forgetting the calls of the window under way."""

    def __init__(self, *, rate_limits: RateLimitsSpec = (), **options: Any) -> None:
        super().__init__(rate_limits=rate_limits, **options)
        self._spec = rate_limits

    async def _restore_session(self) -> Any:
        session = await super()._restore_session()
        self._GatewayLifecycle__limiter = RateLimiter(self._spec)
        return session


class PermitBeforeLinkGateway(MemoryBrokerGateway):
    """Takes its permit first, then waits (up to the call's timeout) for the link to come back."""

    async def _admit(self, category: str, timeout: float) -> None:
        await self.rate_limiter.acquire(category)
        deadline = time.monotonic() + timeout
        while self.state is not ConnectionState.CONNECTED:
            remaining = deadline - time.monotonic()
            if not self._open or remaining <= 0:
                raise BrokerUnavailableError("memory: not connected")
            try:
                await asyncio.wait_for(self._state_changed(), remaining)
            except asyncio.TimeoutError:
                continue


class RetryWithoutPermitGateway(MemoryBrokerGateway):
    """Retries a refused read at once on the same session: the first attempt's permit covers it."""

    async def _request(
        self, category: str, method: str, arguments: Mapping[str, Any], *, retries: int = 0
    ) -> object:
        try:
            return await super()._request(category, method, arguments)
        except (BrokerUnavailableError, RateLimitExceededError):
            if not retries:
                raise
        for attempt in range(retries):
            try:
                return await self._live_session().request(method, category, arguments, timeout=2.0)
            except (BrokerUnavailableError, RateLimitExceededError):
                if attempt == retries - 1:
                    raise
        raise AssertionError("unreachable")


class IgnoresRetryAfterGateway(MemoryBrokerGateway):
    """Retries a refused read at once, without telling its limiter, whatever the backend asked."""

    async def _send(self, category: str, method: str, arguments: Mapping[str, Any]) -> object:
        await self._admit(category, self._call_timeout)
        try:
            return await self._live_session().request(method, category, arguments, timeout=self._call_timeout)
        except (RateLimitExceededError, BrokerUnavailableError) as error:
            raise _Refused(error) from None

    async def _request(
        self, category: str, method: str, arguments: Mapping[str, Any], *, retries: int = 0
    ) -> object:
        for _ in range(retries):
            try:
                return await self._send(category, method, arguments)
            except _Refused:
                continue
        try:
            return await self._send(category, method, arguments)
        except _Refused as refused:
            raise refused.error from None


class OnePermitPagingGateway(MemoryBrokerGateway):
    """Takes one permit for a get_candles, however many pages it reads."""

    async def _get_candles(
        self, symbol: str, interval: Interval, start: datetime | None, end: datetime | None, limit: int | None
    ) -> Sequence[Candle]:
        await self._admit("market_data", self._call_timeout)
        arguments = {"symbol": symbol, "interval": interval, "start": start, "end": end, "limit": limit}
        candles: list[Candle] = []
        page: str | None = None
        while True:
            answer = await self._live_session().request(
                "get_candles", "market_data", {**arguments, "page": page}, timeout=self._call_timeout
            )
            candles.extend(cast(CandlePage, answer).candles)
            page = cast(CandlePage, answer).next_page
            if page is None:
                return candles


class ResubscribeWithoutPermitGateway(MemoryBrokerGateway):
    """Subscribes again after an outage straight on the new session, without a permit."""

    async def _resubscribe(self, category: str, method: str, arguments: Mapping[str, Any]) -> None:
        while True:
            while self.state is not ConnectionState.CONNECTED:
                if not self._open:
                    raise BrokerUnavailableError("memory: the gateway was disconnected")
                await self._state_changed()
            try:
                await self._live_session().request(method, category, arguments, timeout=self._call_timeout)
            except BrokerUnavailableError:
                await asyncio.sleep(0.02)
            else:
                return


class IgnoresSharedBudgetGateway(MemoryBrokerGateway):
    """Keeps each category's own limits and drops the budget they share ("*")."""

    def __init__(self, *, rate_limits: RateLimitsSpec = (), **options: Any) -> None:
        spec = rate_limits if isinstance(rate_limits, Mapping) else {}
        own = {category: limits for category, limits in spec.items() if category != "*"}
        super().__init__(rate_limits=own or rate_limits, **options)


class OrderStreamWithoutPermitGateway(MemoryBrokerGateway):
    """Opens its order-update stream straight on the session, without a permit."""

    async def _stream_order_updates(self) -> AsyncGenerator[OrderUpdate, None]:
        session = self._live_session()
        last = cast(
            int, await session.request("stream_order_updates", "trading", {"after": None}, timeout=2.0)
        )
        while True:
            for update in await self._live_session().next_updates(last):
                last = update.sequence
                yield update
