"""`GatewayBase`: the broker operations of `IBrokerGateway`, their input checked once, for any transport.

A plugin subclasses `GatewayBase` and writes its transport and mapping: the link (`_open_link`,
`_close_link`, `_probe`, `_wait_link`; see `GatewayLifecycle`) and one protected method per broker
operation (`_get_quote` and so on), which receives checked arguments and awaits
`_admit(category, timeout)` before each request it sends. Arguments are checked here first
(`InvalidRequestError` naming the field), an operation the gateway lacks the capability for is
refused, and an exception from the subclass that is not a `BrokerError` (a bug) reaches the host as a
`PluginError` naming the operation.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar, TypeVar

from broker_plugins._calendar import MarketCalendar, check_date_range, check_exchange
from broker_plugins._checks import (
    check_candle_range,
    check_interval,
    check_order_id,
    check_positive,
    check_symbol,
    check_symbols,
)
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
from broker_plugins._enums import Capability, Interval
from broker_plugins._errors import BrokerError, InvalidRequestError
from broker_plugins._lifecycle import GatewayLifecycle
from broker_plugins._staleness import StaleListener, StaleReports, StaleStream

__all__ = ["GatewayBase"]

_T = TypeVar("_T")


class GatewayBase(GatewayLifecycle):
    """An `IBrokerGateway` whose lifecycle, checks and call plumbing are done; see the module docstring."""

    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset()
    """The optional features the subclass implements."""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The optional features this gateway supports."""
        return self.CAPABILITIES

    # -- stale streams -------------------------------------------------------------------------------

    def add_stale_listener(self, listener: StaleListener) -> Callable[[], None]:
        """Call `listener` each time a stream is found mute while its market is open (and reopened)."""
        return self._stale_reports.add(listener)

    @property
    def last_stale_stream(self) -> StaleStream | None:
        """The latest stale-stream detection, if any."""
        return self._stale_reports.last

    @functools.cached_property
    def _stale_reports(self) -> StaleReports:
        return StaleReports()

    # -- market data ---------------------------------------------------------------------------------

    async def get_candles(
        self,
        symbol: str,
        interval: Interval,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> Sequence[Candle]:
        """Candles ascending by `start`; paging is the gateway's job (a permit per page)."""
        checked = check_symbol(symbol), check_interval(interval), *check_candle_range(start, end, limit)
        return await self._run("get_candles", self._get_candles(*checked))

    async def get_quote(self, symbol: str) -> Quote:
        """The latest quote of `symbol` (category `market_data`)."""
        return await self._run("get_quote", self._get_quote(check_symbol(symbol)))

    async def get_instrument(self, symbol: str) -> Instrument:
        """The instrument `symbol` and its trading rules (category `market_data`)."""
        return await self._run("get_instrument", self._get_instrument(check_symbol(symbol)))

    async def list_instruments(self, exchange: str | None = None) -> Sequence[Instrument]:
        """Every instrument, ordered by symbol, optionally of one exchange (category `market_data`)."""
        checked = None if exchange is None else check_exchange(exchange)
        return await self._run("list_instruments", self._list_instruments(checked))

    async def get_market_calendar(
        self, exchange: str, *, start: date | None = None, end: date | None = None
    ) -> MarketCalendar:
        """Sessions, time zone and holidays of `exchange` (category `market_data`; `MARKET_CALENDAR`)."""
        checked = check_exchange(exchange), *check_date_range(start, end)
        self._require(Capability.MARKET_CALENDAR, "report market calendars")
        return await self._run("get_market_calendar", self._get_market_calendar(*checked))

    def stream_quotes(self, symbols: Sequence[str]) -> AsyncIterator[Quote]:
        """Quotes of `symbols` as they tick, until the caller stops iterating (a permit per opening)."""
        wanted = check_symbols(symbols)
        self._require(Capability.QUOTE_STREAM, "stream quotes")
        return self._track(self._stream_quotes(wanted))

    # -- trading -------------------------------------------------------------------------------------

    async def place_order(self, request: OrderRequest) -> Order:
        """Place `request` exactly once (category `trading`)."""
        if not isinstance(request, OrderRequest):
            raise InvalidRequestError(f"place_order takes an OrderRequest, got {type(request).__name__}")
        return await self._run("place_order", self._place_order(request))

    async def cancel_order(self, order_id: str) -> Order:
        """Cancel a working order (category `trading`)."""
        return await self._run("cancel_order", self._cancel_order(check_order_id(order_id)))

    async def modify_order(
        self, order_id: str, *, quantity: Number | None = None, price: Number | None = None
    ) -> Order:
        """Change the quantity or limit price of a working order (category `trading`)."""
        checked_id = check_order_id(order_id)
        if quantity is None and price is None:
            raise InvalidRequestError("modify_order needs a new quantity or a new price")
        new_quantity = None if quantity is None else check_positive(quantity, "quantity")
        new_price = None if price is None else check_positive(price, "price")
        self._require(Capability.MODIFY_ORDER, "modify orders")
        return await self._run("modify_order", self._modify_order(checked_id, new_quantity, new_price))

    async def get_order(self, order_id: str) -> Order:
        """The order `order_id` (category `trading`)."""
        return await self._run("get_order", self._get_order(check_order_id(order_id)))

    async def get_orders(self, *, open_only: bool = False, symbol: str | None = None) -> Sequence[Order]:
        """The account's orders (category `trading`)."""
        if not isinstance(open_only, bool):
            raise InvalidRequestError(f"open_only must be True or False, got {type(open_only).__name__}")
        checked = None if symbol is None else check_symbol(symbol)
        return await self._run("get_orders", self._get_orders(open_only, checked))

    def stream_order_updates(self) -> AsyncIterator[OrderUpdate]:
        """Changes to the account's orders as they happen (a `trading` permit per opening)."""
        self._require(Capability.ORDER_UPDATE_STREAM, "stream order updates")
        return self._track(self._stream_order_updates())

    # -- account -------------------------------------------------------------------------------------

    async def get_positions(self) -> Sequence[Position]:
        """The account's holdings (category `account`)."""
        return await self._run("get_positions", self._get_positions())

    async def get_balance(self) -> Balance:
        """The account's cash (category `account`)."""
        return await self._run("get_balance", self._get_balance())

    # -- for subclasses: the operations -------------------------------------------------------------

    @abstractmethod
    async def _get_candles(
        self, symbol: str, interval: Interval, start: datetime | None, end: datetime | None, limit: int | None
    ) -> Sequence[Candle]: ...

    @abstractmethod
    async def _get_quote(self, symbol: str) -> Quote: ...

    @abstractmethod
    async def _get_instrument(self, symbol: str) -> Instrument: ...

    @abstractmethod
    async def _list_instruments(self, exchange: str | None) -> Sequence[Instrument]: ...

    async def _get_market_calendar(
        self, exchange: str, start: date | None, end: date | None
    ) -> MarketCalendar:
        raise self._unsupported("report market calendars")

    def _stream_quotes(self, symbols: tuple[str, ...]) -> AsyncGenerator[Quote, None]:
        raise self._unsupported("stream quotes")

    @abstractmethod
    async def _place_order(self, request: OrderRequest) -> Order: ...

    @abstractmethod
    async def _cancel_order(self, order_id: str) -> Order: ...

    async def _modify_order(self, order_id: str, quantity: Decimal | None, price: Decimal | None) -> Order:
        raise self._unsupported("modify orders")

    @abstractmethod
    async def _get_order(self, order_id: str) -> Order: ...

    @abstractmethod
    async def _get_orders(self, open_only: bool, symbol: str | None) -> Sequence[Order]: ...

    def _stream_order_updates(self) -> AsyncGenerator[OrderUpdate, None]:
        raise self._unsupported("stream order updates")

    @abstractmethod
    async def _get_positions(self) -> Sequence[Position]: ...

    @abstractmethod
    async def _get_balance(self) -> Balance: ...

    # -- inside --------------------------------------------------------------------------------------

    async def _run(self, operation: str, work: Awaitable[_T]) -> _T:
        try:
            return await work
        except BrokerError:
            raise
        except Exception as exc:
            raise self._bug(operation, exc) from exc

    def _unsupported(self, what: str) -> InvalidRequestError:
        return InvalidRequestError(f"gateway {self._name!r} does not {what}")

    def _require(self, capability: Capability, what: str) -> None:
        if capability not in self.capabilities:
            raise InvalidRequestError(f"gateway {self._name!r} does not {what} (no {capability} capability)")
