"""`MemoryBrokerGateway`: an `IBrokerGateway` over a `MemoryLink`, which reconnects by itself.

It is written on `broker_plugins.GatewayBase`, as a third-party gateway would be: the base does the
lifecycle, the argument checks and the order of a call (wait for the link, take the permit, send);
this module is the transport (a session over the link, a supervisor that reconnects it) and nothing
else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from broker_plugins import (
    Backoff,
    Balance,
    BrokerError,
    BrokerTimeoutError,
    BrokerUnavailableError,
    Candle,
    Capability,
    ConnectionState,
    GatewayBase,
    Instrument,
    Interval,
    Limiter,
    MarketCalendar,
    Order,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    Position,
    Quote,
    RateLimitExceededError,
    RateLimitsSpec,
)
from memory_broker._backend import CandlePage, MemoryBackend
from memory_broker._link import LinkDownError, MemoryLink, MemorySession

__all__ = ["MemoryBrokerGateway"]

_READ_RETRIES = 2
"""Times a read the backend refused (busy, over budget) is sent again, each time with a new permit."""


class _Refused(Exception):
    """The backend answered a request with a refusal: it did nothing, so a read may be sent again."""

    def __init__(self, error: BrokerError) -> None:
        super().__init__(str(error))
        self.error = error


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class MemoryBrokerGateway(GatewayBase):
    """A gateway to a `MemoryBackend` across a `MemoryLink`.

    Once connected, a supervisor task probes the link every `health_interval` seconds (a probe
    unanswered within `health_timeout` means the peer went silent) and, when the link fails,
    reconnects with `backoff` until it works again. Calls made meanwhile fail at once with
    `BrokerUnavailableError`; open streams wait and subscribe again (order updates from where they
    left off). A read the backend refuses (busy, or over budget) is sent again, each time with a new
    permit, after the backend's retry-after; candles are read a page, and a permit, at a time. Without
    a `link` the gateway brings its own backend: a private paper account.
    """

    CAPABILITIES = frozenset(
        {
            Capability.QUOTE_STREAM,
            Capability.ORDER_UPDATE_STREAM,
            Capability.MODIFY_ORDER,
            Capability.STREAM_RESUME,
            Capability.HALF_OPEN_DETECTION,
            Capability.MARKET_CALENDAR,
        }
    )

    def __init__(
        self,
        *,
        link: MemoryLink | None = None,
        rate_limits: RateLimitsSpec | None = None,
        rate_limiter: Limiter | None = None,
        health_interval: float = 1.0,
        health_timeout: float = 1.0,
        connect_timeout: float = 2.0,
        call_timeout: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(name="memory", rate_limits=rate_limits, rate_limiter=rate_limiter)
        self._link = link if link is not None else MemoryLink(MemoryBackend())
        self._health_interval = health_interval
        self._health_timeout = health_timeout
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._backoff = backoff or Backoff()
        self._session: MemorySession | None = None
        self._wake: asyncio.Future[None] | None = None

    # -- the link ------------------------------------------------------------------------------------

    async def _open_link(self) -> None:
        self._session = await self._open_session()
        self._spawn(self._supervise(), "supervisor")

    async def _close_link(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close("the gateway disconnected")  # every request in flight fails

    async def _wait_link(self, timeout: float) -> None:
        self._live_session()

    async def _probe(self) -> None:
        await self._ping(self._live_session())

    # -- the operations: one request each ------------------------------------------------------------

    async def _get_candles(
        self, symbol: str, interval: Interval, start: datetime | None, end: datetime | None, limit: int | None
    ) -> Sequence[Candle]:
        arguments = {"symbol": symbol, "interval": interval, "start": start, "end": end, "limit": limit}
        candles: list[Candle] = []
        page: str | None = None
        while True:  # a request, and so a permit, per page
            answer = await self._read("market_data", "get_candles", {**arguments, "page": page})
            candles.extend(cast(CandlePage, answer).candles)
            page = cast(CandlePage, answer).next_page
            if page is None:
                return candles

    async def _get_quote(self, symbol: str) -> Quote:
        return cast(Quote, await self._read("market_data", "get_quote", {"symbol": symbol}))

    async def _get_instrument(self, symbol: str) -> Instrument:
        return cast(Instrument, await self._read("market_data", "get_instrument", {"symbol": symbol}))

    async def _list_instruments(self, exchange: str | None) -> Sequence[Instrument]:
        answer = await self._read("market_data", "list_instruments", {"exchange": exchange})
        return cast("list[Instrument]", answer)

    async def _get_market_calendar(
        self, exchange: str, start: date | None, end: date | None
    ) -> MarketCalendar:
        answer = await self._read("market_data", "get_market_calendar", {"exchange": exchange})
        return cast(MarketCalendar, answer)

    async def _place_order(self, request: OrderRequest) -> Order:
        try:
            order = cast(Order, await self._send("trading", "place_order", {"request": request}))
        except _Refused as refused:
            raise refused.error from None  # refused before it did anything: not placed
        except LinkDownError as exc:
            if not exc.sent:
                raise BrokerUnavailableError(f"memory: place_order was not sent: {exc}") from None
            raise self._outcome_unknown(request, str(exc)) from None
        except asyncio.TimeoutError:
            raise self._outcome_unknown(request, f"no answer within {self._call_timeout:g} s") from None
        if order.status is OrderStatus.REJECTED:
            raise OrderRejectedError(
                f"memory: order {request.client_order_id} was rejected: {order.reject_reason}",
                client_order_id=request.client_order_id,
                reason=order.reject_reason,
            )
        return order

    async def _cancel_order(self, order_id: str) -> Order:
        return cast(Order, await self._request("trading", "cancel_order", {"order_id": order_id}))

    async def _modify_order(self, order_id: str, quantity: Decimal | None, price: Decimal | None) -> Order:
        arguments = {"order_id": order_id, "quantity": quantity, "price": price}
        return cast(Order, await self._request("trading", "modify_order", arguments))

    async def _get_order(self, order_id: str) -> Order:
        return cast(Order, await self._read("trading", "get_order", {"order_id": order_id}))

    async def _get_orders(self, open_only: bool, symbol: str | None) -> Sequence[Order]:
        arguments = {"open_only": open_only, "symbol": symbol}
        return cast("list[Order]", await self._read("trading", "get_orders", arguments))

    async def _get_positions(self) -> Sequence[Position]:
        return cast("list[Position]", await self._read("account", "get_positions", {}))

    async def _get_balance(self) -> Balance:
        return cast(Balance, await self._read("account", "get_balance", {}))

    async def _stream_quotes(self, symbols: tuple[str, ...]) -> AsyncGenerator[Quote, None]:
        # A first subscription that fails is the caller's error; later ones are waited for.
        await self._read("market_data", "stream_quotes", {"symbols": symbols})
        while True:
            try:
                for quote in await self._live_session().next_quotes(symbols):
                    yield quote
            except (LinkDownError, BrokerUnavailableError):
                self._report_loss()
                await self._resubscribe("market_data", "stream_quotes", {"symbols": symbols})

    async def _stream_order_updates(self) -> AsyncGenerator[OrderUpdate, None]:
        last = cast(int, await self._read("trading", "stream_order_updates", {"after": None}))
        while True:
            try:
                for update in await self._live_session().next_updates(last):
                    last = update.sequence
                    yield update
            except (LinkDownError, BrokerUnavailableError):
                self._report_loss()
                # The backend keeps every update: asking for what came after `last` closes the gap.
                await self._resubscribe("trading", "stream_order_updates", {"after": last})

    # -- the transport underneath --------------------------------------------------------------------

    async def _request(
        self, category: str, method: str, arguments: Mapping[str, Any], *, retries: int = 0
    ) -> object:
        """One request, its failure mapped; one the backend refused goes again up to `retries` times."""
        attempt = 0
        while True:
            try:
                return await self._send(category, method, arguments)
            except _Refused as refused:
                error = refused.error
            except LinkDownError as exc:
                raise BrokerUnavailableError(f"memory: {method} failed: {exc}") from None
            except asyncio.TimeoutError as exc:
                if isinstance(exc, BrokerError):
                    raise  # the backend's own BrokerTimeoutError is a TimeoutError too
                raise BrokerTimeoutError(
                    f"memory: no answer to {method} within {self._call_timeout:g} s"
                ) from None
            if attempt == retries:
                raise error
            retry_after = error.retry_after if isinstance(error, RateLimitExceededError) else None
            await asyncio.sleep(retry_after or self._backoff.delay(attempt))
            attempt += 1

    async def _read(self, category: str, method: str, arguments: Mapping[str, Any]) -> object:
        """A request that is safe to repeat: sent again (with a new permit) when the backend refuses it."""
        return await self._request(category, method, arguments, retries=_READ_RETRIES)

    async def _send(self, category: str, method: str, arguments: Mapping[str, Any]) -> object:
        """Admission (the link, then a permit), then the request. The backend's refusal comes back as
        `_Refused`, a broken link as `LinkDownError`, no answer as `asyncio.TimeoutError`."""
        await self._admit(category, self._call_timeout)
        session = self._live_session()
        try:
            return await session.request(method, category, arguments, timeout=self._call_timeout)
        except (RateLimitExceededError, BrokerUnavailableError) as error:
            if isinstance(error, RateLimitExceededError):
                # Every gateway sharing the limiter holds back for as long as the backend asked.
                self.rate_limiter.note_refusal(category, error.retry_after)
            raise _Refused(error) from None
        except LinkDownError:
            self._report_loss()
            raise

    def _live_session(self) -> MemorySession:
        session = self._session
        if session is None or session.closed or self.state is not ConnectionState.CONNECTED:
            if session is not None and session.closed:
                self._report_loss()
            raise BrokerUnavailableError(f"memory: not connected to the backend ({self.state})")
        return session

    async def _open_session(self) -> MemorySession:
        try:
            return await self._link.open(self._connect_timeout)
        except LinkDownError as exc:
            raise BrokerUnavailableError(f"memory: cannot reach the backend: {exc}") from None
        except asyncio.TimeoutError:
            raise BrokerUnavailableError(
                f"memory: the backend did not answer within {self._connect_timeout:g} s"
            ) from None

    async def _ping(self, session: MemorySession) -> None:
        try:
            await session.ping(self._health_timeout)
        except LinkDownError as exc:
            raise BrokerUnavailableError(f"memory: the connection to the backend was lost: {exc}") from None
        except asyncio.TimeoutError:
            raise BrokerUnavailableError(
                f"memory: no answer to a health probe within {self._health_timeout:g} s"
            ) from None

    async def _supervise(self) -> None:
        """Watch the session; when it fails, reconnect until it works again. Runs until disconnect()."""
        while True:
            reason = await self._watch()
            if self._session is not None:
                self._session.close(str(reason))
            self._set_state(ConnectionState.RECONNECTING, reason)
            self._session = await self._restore_session()
            self._set_state(ConnectionState.CONNECTED)

    async def _watch(self) -> BrokerUnavailableError:
        """Return once the session is found broken: by a request that failed, or by a health probe."""
        while True:
            await self._pause()
            session = self._session
            if session is None or session.closed:
                return BrokerUnavailableError("memory: the connection to the backend was lost")
            try:
                await self._ping(session)
            except BrokerUnavailableError as error:
                return error

    async def _pause(self) -> None:
        """Wait one health interval, or less if a request finds the link down first.

        A timer, not `asyncio.wait_for`: before Python 3.12 that can swallow a cancellation that
        arrives as what it waits for finishes, and a supervisor that survived disconnect() would
        run forever.
        """
        loop = asyncio.get_running_loop()
        self._wake = wake = loop.create_future()
        timer = loop.call_later(self._health_interval, _resolve, wake)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    def _report_loss(self) -> None:
        # A request saw the link fail: wake the supervisor now rather than at the next probe.
        if self._wake is not None:
            _resolve(self._wake)

    async def _restore_session(self) -> MemorySession:
        attempt = 0
        while True:
            await asyncio.sleep(self._backoff.delay(attempt))
            try:
                return await self._open_session()
            except BrokerUnavailableError:
                attempt += 1

    async def _resubscribe(self, category: str, method: str, arguments: Mapping[str, Any]) -> None:
        """Wait out an outage and subscribe again; `BrokerUnavailableError` once the gateway closes."""
        attempt = 0
        while True:
            while self.state is not ConnectionState.CONNECTED:
                if not self._open:
                    raise BrokerUnavailableError("memory: the gateway was disconnected")
                await self._state_changed()
            try:
                await self._read(category, method, arguments)
            except (BrokerUnavailableError, BrokerTimeoutError):
                if not self._open:
                    raise
                await asyncio.sleep(self._backoff.delay(attempt))
                attempt += 1
            else:
                return

    def _outcome_unknown(self, request: OrderRequest, cause: str) -> OrderOutcomeUnknownError:
        # The backend may have taken the order before its answer was lost. Sending it again under
        # another id could place it twice, so the caller is told, and looks it up by its id.
        return OrderOutcomeUnknownError(
            f"memory: place_order {request.client_order_id} may or may not have been placed: {cause}",
            client_order_id=request.client_order_id,
        )
