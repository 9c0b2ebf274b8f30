"""`IBrokerGateway`: the contract every gateway plugin implements and every host programs against."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, TypeVar, runtime_checkable

import attrs

from broker_plugins._calendar import MarketCalendar
from broker_plugins._entities import (
    Balance,
    Candle,
    Instrument,
    Number,
    Order,
    OrderRequest,
    OrderUpdate,
    Position,
    Quote,
)
from broker_plugins._enums import Capability, ConnectionState, Interval
from broker_plugins._errors import BrokerError

__all__ = ["HealthStatus", "IBrokerGateway", "StateChange", "StateListener"]

_G = TypeVar("_G", bound="IBrokerGateway")


@attrs.frozen(kw_only=True)
class StateChange:
    """One transition of a gateway's `ConnectionState`, with the error that caused it, if any."""

    previous: ConnectionState
    current: ConnectionState
    time: datetime
    reason: BrokerError | None = None


StateListener = Callable[[StateChange], object]
"""Called synchronously, in order, on every state change; what it returns is ignored."""


@attrs.frozen(kw_only=True)
class HealthStatus:
    """The outcome of one `health_check()`; `latency` is the round trip in seconds."""

    healthy: bool
    state: ConnectionState
    checked_at: datetime
    latency: float | None = None
    error: str | None = None


@runtime_checkable
class IBrokerGateway(Protocol):
    """A connection to one broker account.

    Lifecycle: `connect()` (or `async with`), calls, `disconnect()`. Both are idempotent. While
    connected the gateway reconnects by itself after failures; observe it with `add_state_listener`.

    Rate limits: every request that reaches the broker takes a permit from the gateway's rate
    limiter first, in the category its method names (`market_data`, `trading` or `account`): every
    page of a paged read, every retry, every opening and re-opening of a stream. The anatomy of a
    call: check the arguments, wait (bounded) for the link, take the permit, send at once; a call
    that cannot go out sent nothing and took no permit. Health probes (`health_check`, and a
    gateway's own probes and keepalives) take no permit.

    Errors are `BrokerError` subclasses only. A call made while the broker is unreachable fails fast
    with `BrokerUnavailableError`, which means the call did not take effect; it is never queued to be
    sent late. `place_order` is never retried under a new `client_order_id`: when its outcome cannot
    be known it raises `OrderOutcomeUnknownError` carrying the id, never `BrokerUnavailableError`.
    """

    @property
    def name(self) -> str:
        """The name the gateway is registered under (for example `grpc`)."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The optional features this gateway supports."""
        ...

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        ...

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call `listener` on every state change; returns a function that removes it."""
        ...

    async def connect(self) -> None:
        """Connect; returns once calls can be made, raises `BrokerError` if the first attempt fails.

        States: CONNECTING, then CONNECTED; after a failed attempt DISCONNECTED (the change carries
        the error). On a connected gateway it does nothing; concurrent calls share one attempt.
        """
        ...

    async def disconnect(self) -> None:
        """Stop streams, fail calls waiting for a permit, cancel background tasks, release the connection.

        Ends CLOSED; a `connect()` under way is abandoned (it raises `BrokerUnavailableError`). On a
        gateway that was never connected, or whose `connect()` failed, it does nothing. A call made
        later fails with `BrokerUnavailableError`; a stream iterated later ends, stopping or raising
        `BrokerUnavailableError`.
        """
        ...

    async def __aenter__(self: _G) -> _G: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def health_check(self) -> HealthStatus:
        """Probe the broker once; never raises for an unhealthy broker, reports it instead.

        Takes no permit and is not a broker-API request: it answers even with every budget spent.
        """
        ...

    async def get_candles(
        self,
        symbol: str,
        interval: Interval,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> Sequence[Candle]:
        """Candles ascending by `start` (category `market_data`, a permit per page: paging is the
        gateway's job)."""
        ...

    async def get_quote(self, symbol: str) -> Quote:
        """The latest quote of `symbol` (category `market_data`)."""
        ...

    async def get_instrument(self, symbol: str) -> Instrument:
        """The instrument `symbol` and its trading rules (category `market_data`)."""
        ...

    async def list_instruments(self, exchange: str | None = None) -> Sequence[Instrument]:
        """Every instrument the broker lists, ordered by symbol, optionally only those of `exchange`
        (category `market_data`, a permit per request). An exchange the broker does not know lists
        nothing: the result is empty, not an error."""
        ...

    async def get_market_calendar(
        self, exchange: str, *, start: date | None = None, end: date | None = None
    ) -> MarketCalendar:
        """The sessions, time zone and holidays of `exchange`, holidays from `start` to `end` (local
        dates, inclusive; the broker chooses when absent) (category `market_data`). Needs
        `MARKET_CALENDAR`: without it, or when the broker turns out not to offer calendars, it
        raises `InvalidRequestError`; `NotFoundError` for an exchange it has no calendar for."""
        ...

    def stream_quotes(self, symbols: Sequence[str]) -> AsyncIterator[Quote]:
        """Quotes of `symbols` as they tick, until the caller stops iterating (category
        `market_data`: a permit per opening, re-openings after an outage included)."""
        ...

    async def place_order(self, request: OrderRequest) -> Order:
        """Place `request` exactly once (category `trading`); see the class docstring for failures.

        A rejection raises `OrderRejectedError` with the broker's reason.
        """
        ...

    async def cancel_order(self, order_id: str) -> Order:
        """Cancel a working order; returns the order as it stands after the request (category
        `trading`)."""
        ...

    async def modify_order(
        self, order_id: str, *, quantity: Number | None = None, price: Number | None = None
    ) -> Order:
        """Change the quantity or limit price of a working order (category `trading`)."""
        ...

    async def get_order(self, order_id: str) -> Order:
        """The order `order_id`; raises `NotFoundError` if there is none (category `trading`)."""
        ...

    async def get_orders(self, *, open_only: bool = False, symbol: str | None = None) -> Sequence[Order]:
        """The account's orders, optionally only working ones or only for `symbol` (category
        `trading`)."""
        ...

    def stream_order_updates(self) -> AsyncIterator[OrderUpdate]:
        """Changes to the account's orders as they happen, until the caller stops iterating (category
        `trading`: a permit per opening and re-opening). With `STREAM_RESUME` the updates of an
        outage come after it, once each and in order; without it the stream ends with
        `BrokerUnavailableError` when the link is lost, so the gap is never silent."""
        ...

    async def get_positions(self) -> Sequence[Position]:
        """The account's holdings (category `account`)."""
        ...

    async def get_balance(self) -> Balance:
        """The account's cash (category `account`)."""
        ...
