"""Per-subscription staleness of quote streams: mute while the market is open means stale.

`MarketHours` answers "is a market of these symbols open now, and if not when does one open?"
from the bridge's own calendars: the exchange of each symbol comes from one ListInstruments, each
exchange's calendar from one GetMarketCalendar, both cached for the gateway's life (a calendar
until the day after the range its holidays cover). Nothing is asked while streams deliver.

`QuoteSilence` watches one open stream call: after `after` seconds without a message it asks
`MarketHours`; open -> the call is cancelled (`fired`) and the stream reopened by its reader;
closed -> it waits for the next opening plus `after` (a market that just opened gets the whole
threshold). Without a calendar (a bridge older than GetMarketCalendar, an exchange it has none
for, or a lookup that failed) the market counts as open and the threshold is
`UNCALENDARED_FACTOR` times longer, so that a quiet closed market is not taken for a mute stream
too often.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from broker_plugins import (
    BrokerError,
    Instrument,
    InvalidRequestError,
    MarketCalendar,
    NotFoundError,
    StaleStream,
)

__all__ = ["UNCALENDARED_FACTOR", "MarketHours", "QuoteSilence", "Staleness"]

UNCALENDARED_FACTOR = 5
"""Without a calendar a stream must be silent this many times `quote_stale_after` to be stale."""

ListInstruments = Callable[[], Awaitable[Sequence[Instrument]]]
GetCalendar = Callable[[str], Awaitable[MarketCalendar]]
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class MarketHours:
    """Whether the markets of some symbols are open, from the bridge's calendars (cached)."""

    def __init__(self, list_instruments: ListInstruments, get_calendar: GetCalendar, clock: Clock = _utc_now):
        self._list_instruments = list_instruments
        self._get_calendar = get_calendar
        self._clock = clock
        self._exchange_of: dict[str, str] | None = None
        self._calendars: dict[str, MarketCalendar | None] = {}
        self._no_calendars = False
        self._lock = asyncio.Lock()

    def now(self) -> datetime:
        """The time the calendars are read at."""
        return self._clock()

    async def state(self, symbols: Sequence[str]) -> tuple[bool | None, datetime | None]:
        """(open, next opening): open is None when any symbol's market has no known calendar."""
        async with self._lock:  # one lookup at a time: every silent stream shares its answer
            calendars = await self._calendars_of(symbols)
        if calendars is None:
            return None, None
        now = self._clock()
        if any(calendar.is_open(now) for calendar in calendars):
            return True, None
        return False, min(calendar.next_open(now) for calendar in calendars)

    async def _calendars_of(self, symbols: Sequence[str]) -> list[MarketCalendar] | None:
        if self._no_calendars:
            return None
        try:
            if self._exchange_of is None:
                self._exchange_of = {i.symbol: i.exchange for i in await self._list_instruments()}
            exchanges = {self._exchange_of.get(symbol) for symbol in symbols}
            if None in exchanges:
                return None
            found = [await self._calendar(exchange) for exchange in sorted(e for e in exchanges if e)]
        except InvalidRequestError:
            self._no_calendars = True  # the bridge reports no calendars at all: never ask again
            return None
        except BrokerError:
            return None  # unknown for now (the bridge is unreachable, busy...): asked again next time
        known = [calendar for calendar in found if calendar is not None]
        return known if len(known) == len(found) else None

    async def _calendar(self, exchange: str) -> MarketCalendar | None:
        today = self._clock().date()
        if exchange in self._calendars:
            cached = self._calendars[exchange]
            if cached is None or not _expired(cached, today):
                return cached
        try:
            calendar: MarketCalendar | None = await self._get_calendar(exchange)
        except NotFoundError:
            calendar = None  # the bridge has no calendar for this exchange
        self._calendars[exchange] = calendar
        return calendar


def _expired(calendar: MarketCalendar, today: date) -> bool:
    # The day before and after the local date cover every zone's "today".
    return calendar.covers_end is not None and calendar.covers_end < today + timedelta(days=1)


class QuoteSilence:
    """Cancels a quote stream call that stays mute for `after` seconds while its market is open."""

    def __init__(
        self,
        call: Any,
        symbols: tuple[str, ...],
        after: float,
        hours: MarketHours,
        spawn: Callable[[Any, str], asyncio.Task[Any]],
    ) -> None:
        self._call = call
        self._symbols = symbols
        self._after = after
        self._hours = hours
        self._loop = asyncio.get_running_loop()
        self._heard = self._loop.time()
        self.fired: StaleStream | None = None
        self._task = spawn(self._watch(), "quote staleness")

    def touch(self) -> None:
        """A message arrived."""
        self._heard = self._loop.time()

    def stop(self) -> None:
        """The call ended: stop watching, and let go of the call (a live call object keeps its
        connection open, and the task's frame would hold it in a cycle)."""
        self._task.cancel()
        self._call = None

    async def _watch(self) -> None:
        threshold = self._after
        while True:
            await asyncio.sleep(max(0.0, self._heard + threshold - self._loop.time()))
            silent = self._loop.time() - self._heard
            if silent < threshold:
                continue
            market_open, next_open = await self._hours.state(self._symbols)
            if market_open is None:
                threshold = self._after * UNCALENDARED_FACTOR
                if self._loop.time() - self._heard < threshold:
                    continue
            elif not market_open:
                assert next_open is not None
                # Quiet while closed: the silence counts from the next opening.
                wait = (next_open - self._hours.now()).total_seconds()
                self._heard = max(self._heard, self._loop.time() + max(0.0, wait))
                threshold = self._after
                continue
            self.fired = StaleStream(
                stream="quotes",
                symbols=self._symbols,
                silent_for=self._loop.time() - self._heard,
                time=self._hours.now(),
                market_open=market_open,
            )
            call, self._call = self._call, None
            if call is not None:
                with contextlib.suppress(Exception):
                    call.cancel()
            return


class Staleness:
    """What the streams of one gateway need to watch quote subscriptions: the threshold, the market
    hours, where the watching tasks are owned and where detections are reported."""

    def __init__(
        self,
        after: float,
        hours: MarketHours,
        spawn: Callable[[Any, str], asyncio.Task[Any]],
        report: Callable[[StaleStream], None],
    ) -> None:
        self._after = after
        self._hours = hours
        self._spawn = spawn
        self.report = report

    def watch(self, call: Any, symbols: tuple[str, ...]) -> QuoteSilence:
        """Start watching one open quote stream call."""
        return QuoteSilence(call, symbols, self._after, self._hours, self._spawn)
