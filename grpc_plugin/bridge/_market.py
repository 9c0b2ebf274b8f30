"""The simulated market: instruments, candles and quotes, all deterministic for a seed.

Quotes tick at `tick_rate` ticks per second per instrument. Tick k happens at k / tick_rate
seconds since the Unix epoch, and its quote is a pure function of (seed, symbol, k): the mid is
the instrument's price path at that time, the spread one or two ticks, sizes hashed. So every
client, and the paper broker, sees the same quote for the same tick.

An instrument with a daily limit (KRX stocks: 30%) trades within the previous close -/+ that
fraction, rounded inward to tick; the previous close is the last daily candle's close (days end at
00:00 UTC, as for DAY orders). The simulated path moves a few percent a day, far from the limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import attrs

from broker_plugins import daily_price_limits
from grpc_plugin.bridge._candles import CandleColumns, CandleSource, Interval, hash_symbol
from grpc_plugin.bridge._errors import NotFoundError
from grpc_plugin.bridge._instruments import INSTRUMENTS, InstrumentSpec
from grpc_plugin.bridge._pricepath import PricePath, mix64

__all__ = ["Market", "MarketQuote"]

_MASK = (1 << 64) - 1
_DAY_NS = 86_400 * 1_000_000_000


@attrs.frozen
class MarketQuote:
    """The quote of one instrument at one tick; prices in price units, sizes in shares."""

    symbol: str
    tick: int
    time_ns: int
    bid: int
    bid_size: int
    ask: int
    ask_size: int
    last: int
    lower_limit: int = 0  # today's limits in price units; 0 when the instrument has none
    upper_limit: int = 0


class Market:
    """Instruments, candles and quotes of the simulated market."""

    def __init__(
        self,
        *,
        seed: int = 0,
        tick_rate: float = 10.0,
        clock: Callable[[], float] = time.time,
        instruments: Sequence[InstrumentSpec] = INSTRUMENTS,
    ) -> None:
        if tick_rate <= 0:
            raise ValueError(f"tick_rate must be positive, got {tick_rate}")
        self.seed = seed
        self.tick_rate = tick_rate
        self.clock = clock
        self._instruments = {spec.symbol: spec for spec in sorted(instruments, key=lambda s: s.symbol)}
        self._candles = CandleSource(seed)
        self._symbol_seeds = {symbol: mix64(seed ^ hash_symbol(symbol)) for symbol in self._instruments}
        # Quote paths are kept apart from candle computation so that the two never thrash a cache.
        self._paths = {
            symbol: PricePath(self._symbol_seeds[symbol], spec.base_price)
            for symbol, spec in self._instruments.items()
        }
        self._latest: dict[str, MarketQuote] = {}
        self._limits: dict[tuple[str, int], tuple[int, int]] = {}

    @property
    def instruments(self) -> Sequence[InstrumentSpec]:
        """Every instrument, ordered by symbol."""
        return tuple(self._instruments.values())

    def instrument(self, symbol: str) -> InstrumentSpec:
        """The instrument `symbol`; `NotFoundError` if the market has none."""
        spec = self._instruments.get(symbol)
        if spec is None:
            raise NotFoundError(f"unknown symbol {symbol!r}")
        return spec

    def has(self, symbol: str) -> bool:
        """True if the market trades `symbol`."""
        return symbol in self._instruments

    def now_ms(self) -> int:
        """Wall-clock time in milliseconds since the Unix epoch."""
        return int(self.clock() * 1000)

    def current_tick(self) -> int:
        """Index of the latest tick that has happened."""
        return int(self.clock() * self.tick_rate)

    def tick_time(self, tick: int) -> float:
        """When tick `tick` happens, in seconds since the Unix epoch."""
        return tick / self.tick_rate

    def quote(self, symbol: str) -> MarketQuote:
        """The quote of `symbol` at the current tick."""
        return self.quote_at(symbol, self.current_tick())

    def quote_at(self, symbol: str, tick: int) -> MarketQuote:
        """The quote of `symbol` at tick `tick`."""
        latest = self._latest.get(symbol)
        if latest is not None and latest.tick == tick:
            return latest
        spec = self.instrument(symbol)
        time_ns = int(tick * 1_000_000_000 // self.tick_rate)
        mid = self._paths[symbol].at(time_ns // 1_000_000)
        noise = mix64((self._symbol_seeds[symbol] + tick) & _MASK)
        # One or two ticks of the band at the mid; the ask steps up the bands (49,950 -> 50,000 -> 50,100).
        step = spec.tick_units_at(mid)
        ticks = 1 + (noise & 1)
        bid = spec.floor_units(mid - step * ticks / 2)
        ask = bid
        for _ in range(ticks):
            ask += spec.tick_units_at(ask)
        bid_size = spec.lot * (1 + ((noise >> 8) & 0xFFFF) % (spec.max_display // spec.lot))
        ask_size = spec.lot * (1 + ((noise >> 24) & 0xFFFF) % (spec.max_display // spec.lot))
        last = ask if (noise >> 1) & 1 else bid
        lower, upper = self.limits(symbol, time_ns // _DAY_NS)
        quote = MarketQuote(symbol, tick, time_ns, bid, bid_size, ask, ask_size, last, lower, upper)
        self._latest[symbol] = quote
        return quote

    def limits(self, symbol: str, day: int) -> tuple[int, int]:
        """(lower, upper) price limits of `symbol` on `day` (days since the epoch); (0, 0) for none."""
        key = (symbol, day)
        found = self._limits.get(key)
        if found is None:
            spec = self.instrument(symbol)
            found = (0, 0)
            if spec.daily_limit is not None:
                close = self.previous_close(symbol, day)
                lower, upper = daily_price_limits(spec.price(close), spec.schedule, spec.daily_limit)
                found = (int(spec.units(lower)), int(spec.units(upper)))
            if len(self._limits) >= 4096:
                self._limits.clear()
            self._limits[key] = found
        return found

    def previous_close(self, symbol: str, day: int) -> int:
        """The close of the daily candle before `day`, in price units."""
        return self._candles.close(self.instrument(symbol), Interval.ONE_DAY, day - 1)

    def candles(self, symbol: str, interval: Interval, first: int, stop: int) -> CandleColumns:
        """Bars `first` to `stop` (exclusive) of `symbol`; `NotFoundError` for an unknown symbol."""
        return self._candles.candles(self.instrument(symbol), interval, first, stop)
