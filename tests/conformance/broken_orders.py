"""Broken gateways that break a promise about orders, health checks or the values they return.
Each is a few lines off the memory example."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timezone
from typing import cast

import attrs
from memory_broker import MemoryBrokerGateway
from memory_broker._gateway import _Refused
from memory_broker._link import LinkDownError

from broker_plugins import (
    BrokerUnavailableError,
    ConnectionState,
    HealthStatus,
    Order,
    OrderOutcomeUnknownError,
    OrderRequest,
    Quote,
)


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


class RejectionAsOrderGateway(MemoryBrokerGateway):
    """Hands a rejected order back as an order, status REJECTED, instead of raising."""

    async def _place_order(self, request: OrderRequest) -> Order:
        try:
            return cast(Order, await self._send("trading", "place_order", {"request": request}))
        except _Refused as refused:
            raise refused.error from None
        except LinkDownError as exc:
            raise BrokerUnavailableError(str(exc)) from None


class LostReplyAsUnavailableGateway(MemoryBrokerGateway):
    """Reports an order whose reply was lost as unavailable, the error that says it did not take effect."""

    async def _place_order(self, request: OrderRequest) -> Order:
        try:
            return await super()._place_order(request)
        except OrderOutcomeUnknownError as unknown:
            raise BrokerUnavailableError(f"memory: place_order failed: {unknown}") from None


class BlindResendGateway(MemoryBrokerGateway):
    """Sends an order whose reply was lost again, under the same id, trusting the backend to
    de-duplicate it, without looking it up first."""

    async def _place_order(self, request: OrderRequest) -> Order:
        for _ in range(50):
            try:
                return await super()._place_order(request)
            except (OrderOutcomeUnknownError, BrokerUnavailableError):
                await asyncio.sleep(0.1)  # until the link is back
        return await super()._place_order(request)


class StateHealthGateway(MemoryBrokerGateway):
    """Answers health_check() from its state, without a probe: reconnecting counts as healthy."""

    async def health_check(self) -> HealthStatus:
        healthy = self.state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTING)
        return HealthStatus(healthy=healthy, state=self.state, checked_at=datetime.now(timezone.utc))


class HealthTakesPermitGateway(MemoryBrokerGateway):
    """Waits for a market-data permit before each health probe, as if it were a request."""

    async def _probe(self) -> None:
        await self._admit("market_data", self._call_timeout)
        await super()._probe()


class LocalTimeQuoteGateway(MemoryBrokerGateway):
    """Stamps each quote it returns with its own clock instead of the broker's time."""

    async def _get_quote(self, symbol: str) -> Quote:
        quote = await super()._get_quote(symbol)
        return attrs.evolve(quote, time=datetime.now(timezone.utc))


class IgnoresStopCapabilityGateway(MemoryBrokerGateway):
    """Sends a stop order to a backend without stop orders instead of refusing it: the capability it
    does not declare is not checked (GatewayBase's check skipped)."""

    async def place_order(self, request: OrderRequest) -> Order:
        return await self._run("place_order", self._place_order(request))
