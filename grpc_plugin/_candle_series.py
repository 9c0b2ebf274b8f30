"""`CandleSeries`: candles kept in the reply's packed columns, built into `Candle`s as they are read.

A reply of 100,000 candles parses in a few milliseconds, while building that many frozen `Candle`s
with their Decimals and datetimes takes a hundred times longer. So the series keeps the pages as
they arrived and converts on access, with the per-value work done in C wherever it can be:

- Prices on a tick grid repeat, so each distinct mantissa becomes a Decimal once (a dict whose
  `__missing__` builds it), and a column is converted by `map(table.__getitem__, column)`.
- Open times are mostly one interval apart: a datetime is the previous one plus a `timedelta`
  taken from a small cache of differences, which is exact and several times cheaper than
  `datetime.fromtimestamp`; runs of equal differences are recognised in C.
- Whole columns (`open_times`, `opens`, ..., `volumes`) are built once, on first access.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from itertools import accumulate, chain, islice, repeat
from typing import overload

from broker_plugins import Candle, Interval
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2

__all__ = ["CandleSeries"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Enough precision for any mantissa times any power of ten: a Decimal is exact whatever the
# caller's thread context says.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
# Open times are converted in runs of this many differences (see `_datetimes`).
_RUN = 64


class _Decimals(dict[int, Decimal]):
    """Mantissa -> Decimal of `mantissa * 10**shift` at `exponent`, each built on first use.

    Only for columns that need scaling: at exponent 0 `Decimal(mantissa)` is the value itself, and
    faster than a cache whose values (volumes) rarely repeat.
    """

    __slots__ = ("_exponent", "_factor", "_scale")

    def __init__(self, exponent: int, shift: int) -> None:
        super().__init__()
        self._exponent = exponent
        self._factor = 10**shift
        self._scale = Decimal(1).scaleb(exponent, _EXACT)

    def __missing__(self, mantissa: int) -> Decimal:
        scaled = Decimal(mantissa * self._factor)
        value = self[mantissa] = scaled if self._exponent == 0 else _EXACT.multiply(scaled, self._scale)
        return value


class _Steps(dict[int, timedelta]):
    """Milliseconds -> timedelta, each built on first use (candles are mostly one interval apart)."""

    __slots__ = ()

    def __missing__(self, milliseconds: int) -> timedelta:
        value = self[milliseconds] = timedelta(milliseconds=milliseconds)
        return value


def _decimals(exponent: int, shift: int) -> Callable[[int], Decimal]:
    """Mantissa -> exact Decimal at `exponent` of `mantissa * 10**shift`."""
    if exponent == 0 and shift == 0:
        # The value itself. `from_float` takes an int too, exactly, and is about twice as fast as
        # `Decimal(int)`, which first tries every other type of argument.
        return Decimal.from_float
    return _Decimals(exponent, shift).__getitem__


def _datetimes(times: Sequence[int], steps: _Steps) -> Iterator[datetime]:
    """UTC datetimes of millisecond timestamps: the first from the epoch, the rest by differences.

    The differences are taken a run of `_RUN` at a time: a run one interval apart (most of a
    session's candles) is checked against a `range` in C and needs no subtraction per candle.
    """
    if not times:
        return iter(())
    values = list(times)  # the reply's ints, made once
    first = _EPOCH + timedelta(milliseconds=values[0])
    runs: list[Iterable[timedelta]] = []
    for start in range(0, len(values) - 1, _RUN):
        run = values[start : start + _RUN + 1]
        begin, step = run[0], run[1] - run[0]
        if step and run == list(range(begin, begin + step * len(run), step)):
            runs.append(repeat(steps[step], len(run) - 1))
        else:
            runs.append(map(steps.__getitem__, map(operator.sub, islice(run, 1, None), run)))
    return accumulate(chain.from_iterable(runs), operator.add, initial=first)


class CandleSeries(Sequence[Candle]):
    """An immutable, ascending sequence of candles of one symbol and interval.

    Besides the `Candle`s, whole columns can be had at once (`open_times`, `opens`, `highs`, `lows`,
    `closes`, `volumes`): the same exact values, without building an entity per candle.
    """

    __slots__ = ("_columns", "_interval", "_offsets", "_pages", "_prices", "_steps", "_symbol", "_volumes")

    def __init__(
        self,
        symbol: str,
        interval: Interval,
        pages: Sequence[market_data_pb2.GetCandlesResponse] = (),
    ) -> None:
        self._symbol = symbol
        self._interval = interval
        self._pages = tuple(page for page in pages if page.open_time_unix_ms)
        self._offsets = list(accumulate((len(page.open_time_unix_ms) for page in self._pages), initial=0))
        # Pages with other exponents are rescaled to the smallest one, exactly, so that every value of
        # a column has the same exponent whatever page it came from.
        price_exponent = min((page.price_exponent for page in self._pages), default=0)
        volume_exponent = min((page.volume_exponent for page in self._pages), default=0)
        self._prices = {
            page.price_exponent: _decimals(price_exponent, page.price_exponent - price_exponent)
            for page in self._pages
        }
        self._volumes = {
            page.volume_exponent: _decimals(volume_exponent, page.volume_exponent - volume_exponent)
            for page in self._pages
        }
        self._steps = _Steps()
        self._columns: dict[str, tuple[object, ...]] = {}

    @classmethod
    def from_pages(
        cls, symbol: str, interval: Interval, pages: Sequence[market_data_pb2.GetCandlesResponse]
    ) -> CandleSeries:
        """Join the pages of one GetCandles range (kept as they are, converted when read)."""
        return cls(symbol, interval, pages)

    def __len__(self) -> int:
        return self._offsets[-1]

    @overload
    def __getitem__(self, index: int) -> Candle: ...

    @overload
    def __getitem__(self, index: slice) -> list[Candle]: ...

    def __getitem__(self, index: int | slice) -> Candle | list[Candle]:
        if isinstance(index, slice):
            return [self._candle(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("candle index out of range")
        return self._candle(index)

    def __iter__(self) -> Iterator[Candle]:
        symbol, interval = repeat(self._symbol), repeat(self._interval)
        for page in self._pages:
            prices = self._prices[page.price_exponent]
            volumes = self._volumes[page.volume_exponent]
            yield from map(
                Candle,
                symbol,
                interval,
                _datetimes(page.open_time_unix_ms, self._steps),
                map(prices, page.open),
                map(prices, page.high),
                map(prices, page.low),
                map(prices, page.close),
                map(volumes, page.volume),
            )

    def _candle(self, index: int) -> Candle:
        number = bisect.bisect_right(self._offsets, index) - 1
        page, row = self._pages[number], index - self._offsets[number]
        prices = self._prices[page.price_exponent]
        return Candle(
            self._symbol,
            self._interval,
            _EPOCH + timedelta(milliseconds=page.open_time_unix_ms[row]),
            prices(page.open[row]),
            prices(page.high[row]),
            prices(page.low[row]),
            prices(page.close[row]),
            self._volumes[page.volume_exponent](page.volume[row]),
        )

    # -- whole columns -----------------------------------------------------------------------------

    @property
    def open_times(self) -> Sequence[datetime]:
        """The `start` of every candle (UTC), in order."""
        column = self._columns.get("start")
        if column is None:
            steps = self._steps
            column = self._columns["start"] = tuple(
                chain.from_iterable(_datetimes(page.open_time_unix_ms, steps) for page in self._pages)
            )
        return column  # type: ignore[return-value]  # built from datetimes only

    @property
    def opens(self) -> Sequence[Decimal]:
        """The `open` of every candle, in order."""
        return self._price_column("open")

    @property
    def highs(self) -> Sequence[Decimal]:
        """The `high` of every candle, in order."""
        return self._price_column("high")

    @property
    def lows(self) -> Sequence[Decimal]:
        """The `low` of every candle, in order."""
        return self._price_column("low")

    @property
    def closes(self) -> Sequence[Decimal]:
        """The `close` of every candle, in order."""
        return self._price_column("close")

    @property
    def volumes(self) -> Sequence[Decimal]:
        """The `volume` of every candle, in order."""
        column = self._columns.get("volume")
        if column is None:
            column = self._columns["volume"] = self._convert(
                (self._volumes[page.volume_exponent], page.volume) for page in self._pages
            )
        return column  # type: ignore[return-value]  # built from Decimals only

    def _price_column(self, name: str) -> Sequence[Decimal]:
        column = self._columns.get(name)
        if column is None:
            column = self._columns[name] = self._convert(
                (self._prices[page.price_exponent], getattr(page, name)) for page in self._pages
            )
        return column  # type: ignore[return-value]  # built from Decimals only

    @staticmethod
    def _convert(parts: Iterable[tuple[Callable[[int], Decimal], Sequence[int]]]) -> tuple[Decimal, ...]:
        return tuple(chain.from_iterable(map(convert, column) for convert, column in parts))

    def __repr__(self) -> str:
        return f"<CandleSeries {self._symbol} {self._interval} x{len(self)}>"
