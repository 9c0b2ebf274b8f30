"""`MemoryBrokerGateway`: an `IBrokerGateway` over a `MemoryLink`, which reconnects by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from types import TracebackType
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
    ConnectionStateTracker,
    HealthStatus,
    Instrument,
    Interval,
    InvalidRequestError,
    Order,
    OrderOutcomeUnknownError,
    OrderRequest,
    OrderUpdate,
    Position,
    Quote,
    RateLimiter,
    RateLimitsSpec,
    StateListener,
)
from memory_broker._backend import MemoryBackend
from memory_broker._link import LinkDownError, MemoryLink, MemorySession

__all__ = ["MemoryBrokerGateway"]

# No asyncio.wait_for here: before Python 3.12 it can swallow a cancellation that arrives just as
# what it waits for finishes, and a supervisor that survived disconnect() would run forever.

_Amount = Decimal | int | str | float


def _positive(value: _Amount | None, what: str) -> Decimal | None:
    if value is None:
        return None
    number = Decimal(str(value))
    if not number.is_finite() or number <= 0:
        raise InvalidRequestError(f"{what} must be a positive number, got {value!r}")
    return number


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class MemoryBrokerGateway:
    """A gateway to a `MemoryBackend` across a `MemoryLink`.

    Once connected, a supervisor task probes the link every `health_interval` seconds (a probe
    unanswered within `health_timeout` means the peer went silent) and, when the link fails,
    reconnects with `backoff` until it works again. Calls made meanwhile fail at once with
    `BrokerUnavailableError`; open quote streams wait and subscribe again. Without a `link` the
    gateway brings its own backend: a private paper account.
    """

    CAPABILITIES = frozenset(
        {
            Capability.QUOTE_STREAM,
            Capability.MODIFY_ORDER,
            Capability.STREAM_RESUME,
            Capability.HALF_OPEN_DETECTION,
        }
    )

    def __init__(
        self,
        *,
        link: MemoryLink | None = None,
        rate_limits: RateLimitsSpec = (),
        name: str = "memory",
        health_interval: float = 1.0,
        health_timeout: float = 1.0,
        connect_timeout: float = 2.0,
        call_timeout: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._link = link if link is not None else MemoryLink(MemoryBackend())
        self._limiter = RateLimiter(rate_limits)
        self._name = name
        self._health_interval = health_interval
        self._health_timeout = health_timeout
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._backoff = backoff or Backoff()
        self._tracker = ConnectionStateTracker()
        self._session: MemorySession | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._lifecycle = asyncio.Lock()
        self._wake: asyncio.Future[None] | None = None
        self._changed = asyncio.Event()

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.CAPABILITIES

    @property
    def state(self) -> ConnectionState:
        return self._tracker.state

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        return self._tracker.add_listener(listener)

    async def connect(self) -> None:
        async with self._lifecycle:
            if self.state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTING):
                return
            self._set_state(ConnectionState.CONNECTING)
            try:
                session = await self._open_session()
            except BrokerError as exc:
                self._set_state(ConnectionState.DISCONNECTED, exc)
                raise
            except BaseException:
                self._set_state(ConnectionState.DISCONNECTED)
                raise
            self._session = session
            self._set_state(ConnectionState.CONNECTED)
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"{self._name} supervisor"
            )

    async def disconnect(self) -> None:
        async with self._lifecycle:
            # CLOSED first: calls waiting for a permit and open streams see it and stop.
            self._set_state(ConnectionState.CLOSED)
            supervisor, self._supervisor = self._supervisor, None
            if supervisor is not None:
                supervisor.cancel()
                await asyncio.gather(supervisor, return_exceptions=True)
            session, self._session = self._session, None
            if session is not None:
                session.close("the gateway disconnected")

    async def __aenter__(self) -> MemoryBrokerGateway:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.disconnect()

    async def health_check(self) -> HealthStatus:
        now = datetime.now(timezone.utc)
        session = self._session
        if self.state is not ConnectionState.CONNECTED or session is None:
            return HealthStatus(
                healthy=False, state=self.state, checked_at=now, error=f"not connected ({self.state})"
            )
        started = time.perf_counter()
        try:
            await session.ping(self._health_timeout)
        except (LinkDownError, asyncio.TimeoutError) as exc:
            return HealthStatus(
                healthy=False, state=self.state, checked_at=now, error=str(exc) or "no answer"
            )
        return HealthStatus(
            healthy=True, state=self.state, checked_at=now, latency=time.perf_counter() - started
        )

    async def get_candles(
        self,
        symbol: str,
        interval: Interval,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> Sequence[Candle]:
        arguments = {"symbol": symbol, "interval": interval, "start": start, "end": end, "limit": limit}
        return cast("list[Candle]", await self._call("market_data", "get_candles", arguments))

    async def get_quote(self, symbol: str) -> Quote:
        return cast(Quote, await self._call("market_data", "get_quote", {"symbol": symbol}))

    async def get_instrument(self, symbol: str) -> Instrument:
        return cast(Instrument, await self._call("market_data", "get_instrument", {"symbol": symbol}))

    async def stream_quotes(self, symbols: Sequence[str]) -> AsyncIterator[Quote]:
        wanted = tuple(symbols)
        session = await self._subscribe(wanted)  # a first subscription that fails is the caller's error
        while True:
            try:
                for quote in await session.next_quotes(wanted):
                    yield quote
            except LinkDownError:
                self._report_loss(session)
                resumed = await self._resubscribe(wanted)
                if resumed is None:
                    return  # the gateway was closed: the stream ends
                session = resumed

    async def place_order(self, request: OrderRequest) -> Order:
        session = await self._permit("trading")
        try:
            arguments = {"request": request}
            order = await session.request("place_order", "trading", arguments, timeout=self._call_timeout)
        except LinkDownError as exc:
            self._report_loss(session)
            if not exc.sent:
                raise BrokerUnavailableError(f"{self._name}: place_order was not sent: {exc}") from None
            raise self._outcome_unknown(request, str(exc)) from None
        except asyncio.TimeoutError:
            raise self._outcome_unknown(request, f"no answer within {self._call_timeout:g} s") from None
        return cast(Order, order)

    async def cancel_order(self, order_id: str) -> Order:
        return cast(Order, await self._call("trading", "cancel_order", {"order_id": order_id}))

    async def modify_order(
        self, order_id: str, *, quantity: _Amount | None = None, price: _Amount | None = None
    ) -> Order:
        arguments = {
            "order_id": order_id,
            "quantity": _positive(quantity, "quantity"),
            "price": _positive(price, "price"),
        }
        return cast(Order, await self._call("trading", "modify_order", arguments))

    async def get_order(self, order_id: str) -> Order:
        return cast(Order, await self._call("trading", "get_order", {"order_id": order_id}))

    async def get_orders(self, *, open_only: bool = False, symbol: str | None = None) -> Sequence[Order]:
        arguments = {"open_only": open_only, "symbol": symbol}
        return cast("list[Order]", await self._call("trading", "get_orders", arguments))

    def stream_order_updates(self) -> AsyncIterator[OrderUpdate]:
        raise InvalidRequestError(f"{self._name} does not stream order updates (no ORDER_UPDATE_STREAM)")

    async def get_positions(self) -> Sequence[Position]:
        return cast("list[Position]", await self._call("account", "get_positions", {}))

    async def get_balance(self) -> Balance:
        return cast(Balance, await self._call("account", "get_balance", {}))

    # The connection underneath.

    def _set_state(self, state: ConnectionState, reason: BrokerError | None = None) -> None:
        if self._tracker.set(state, reason) is not None:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    async def _open_session(self) -> MemorySession:
        try:
            return await self._link.open(self._connect_timeout)
        except LinkDownError as exc:
            raise BrokerUnavailableError(f"{self._name}: cannot reach the backend: {exc}") from None
        except asyncio.TimeoutError:
            raise BrokerUnavailableError(
                f"{self._name}: the backend did not answer within {self._connect_timeout:g} s"
            ) from None

    async def _supervise(self) -> None:
        """Watch the session; when it fails, reconnect until it works again. Runs until disconnect()."""
        while self.state is not ConnectionState.CLOSED:
            reason = await self._watch()
            if self._session is not None:
                self._session.close(str(reason))
            self._set_state(ConnectionState.RECONNECTING, reason)
            self._session = await self._restore_session()
            self._set_state(ConnectionState.CONNECTED)

    async def _watch(self) -> BrokerUnavailableError:
        """Return once the session is found broken, by a call that failed or by a health probe."""
        session = self._session
        while session is not None:
            if not session.closed:
                await self._pause()
            if session.closed:
                return BrokerUnavailableError(f"{self._name}: the connection to the backend was lost")
            try:
                await session.ping(self._health_timeout)
            except LinkDownError as exc:
                return BrokerUnavailableError(f"{self._name}: the connection to the backend was lost: {exc}")
            except asyncio.TimeoutError:
                return BrokerUnavailableError(
                    f"{self._name}: no answer to a health probe within {self._health_timeout:g} s"
                )
        return BrokerUnavailableError(f"{self._name}: no connection")

    async def _restore_session(self) -> MemorySession:
        attempt = 0
        while True:
            await asyncio.sleep(self._backoff.delay(attempt))
            try:
                return await self._open_session()
            except BrokerUnavailableError:
                attempt += 1

    async def _pause(self) -> None:
        """Wait one health interval, or less if a call finds the link down first."""
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()
        self._wake = wake
        timer = loop.call_later(self._health_interval, _resolve, wake)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    def _report_loss(self, session: MemorySession) -> None:
        # A call saw the link fail: wake the supervisor now rather than at the next probe.
        if session is self._session and self._wake is not None:
            _resolve(self._wake)

    async def _ensure_connected(self) -> MemorySession:
        session = self._session
        if session is not None and session.closed:
            self._report_loss(session)
        if self.state is not ConnectionState.CONNECTED or session is None or session.closed:
            raise BrokerUnavailableError(f"{self._name}: not connected to the backend ({self.state})")
        return session

    async def _acquire(self, category: str) -> None:
        await self._limiter.acquire(category)

    async def _permit(self, category: str) -> MemorySession:
        """Fail fast when not connected, then wait for a permit; the link may have dropped meanwhile."""
        await self._ensure_connected()
        await self._acquire(category)
        return await self._ensure_connected()

    async def _call(self, category: str, method: str, arguments: Mapping[str, Any]) -> object:
        session = await self._permit(category)
        try:
            return await session.request(method, category, arguments, timeout=self._call_timeout)
        except LinkDownError as exc:
            self._report_loss(session)
            raise BrokerUnavailableError(f"{self._name}: {method} failed: {exc}") from None
        except asyncio.TimeoutError as exc:
            if isinstance(exc, BrokerError):
                raise  # the backend's own BrokerTimeoutError is a TimeoutError too
            raise BrokerTimeoutError(
                f"{self._name}: no answer to {method} within {self._call_timeout:g} s"
            ) from None

    async def _subscribe(self, symbols: tuple[str, ...]) -> MemorySession:
        await self._call("market_data", "stream_quotes", {"symbols": symbols})
        return await self._ensure_connected()

    async def _resubscribe(self, symbols: tuple[str, ...]) -> MemorySession | None:
        """Wait out an outage and subscribe again; None once the gateway is closed."""
        while True:
            while self.state is not ConnectionState.CONNECTED:
                if self.state is ConnectionState.CLOSED:
                    return None
                await self._changed.wait()
            try:
                return await self._subscribe(symbols)
            except (BrokerUnavailableError, BrokerTimeoutError):
                await asyncio.sleep(self._backoff.delay(0))

    def _outcome_unknown(self, request: OrderRequest, cause: str) -> OrderOutcomeUnknownError:
        # The backend may have taken the order before its answer was lost. Sending it again under
        # another id could place it twice, so the caller is told, and looks it up by its id.
        return OrderOutcomeUnknownError(
            f"{self._name}: place_order {request.client_order_id} may or may not have been placed: {cause}",
            client_order_id=request.client_order_id,
        )
