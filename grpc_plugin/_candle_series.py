"""`CandleSeries`: candles kept in the columns they arrive in, built into `Candle`s on access.

Building a frozen attrs `Candle` with its Decimals and datetime costs about 2 us; parsing a packed
column costs about 15 ns a value. A reply of 100,000 candles is therefore kept as columns, and each
`Candle` is made when it is read. Prices on a tick grid repeat, so their Decimals are cached.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import overload

from broker_plugins import Candle, Interval
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2

__all__ = ["CandleSeries"]


class _DecimalColumn:
    """Mantissas sharing one exponent, turned into Decimals through a small cache."""

    __slots__ = ("_cache", "_scale", "mantissas")

    def __init__(self, exponent: int) -> None:
        self.mantissas: list[int] = []
        self._scale = Decimal(1).scaleb(exponent)
        self._cache: dict[int, Decimal] = {}

    def extend(self, mantissas: Sequence[int]) -> None:
        self.mantissas.extend(mantissas)

    def __getitem__(self, index: int) -> Decimal:
        mantissa = self.mantissas[index]
        value = self._cache.get(mantissa)
        if value is None:
            if len(self._cache) > 65536:  # bounded: a random walk can wander far
                self._cache.clear()
            value = self._cache[mantissa] = Decimal(mantissa) * self._scale
        return value


class CandleSeries(Sequence[Candle]):
    """An immutable, ascending sequence of candles of one symbol and interval."""

    __slots__ = ("_close", "_high", "_interval", "_low", "_open", "_symbol", "_times", "_volume")

    def __init__(self, symbol: str, interval: Interval, price_exponent: int, volume_exponent: int) -> None:
        self._symbol = symbol
        self._interval = interval
        self._times: list[int] = []
        self._open = _DecimalColumn(price_exponent)
        self._high = _DecimalColumn(price_exponent)
        self._low = _DecimalColumn(price_exponent)
        self._close = _DecimalColumn(price_exponent)
        self._volume = _DecimalColumn(volume_exponent)

    @classmethod
    def from_pages(
        cls, symbol: str, interval: Interval, pages: Sequence[market_data_pb2.GetCandlesResponse]
    ) -> CandleSeries:
        """Join the pages of one GetCandles range; pages with other exponents are rescaled exactly."""
        price_exponent = min((page.price_exponent for page in pages), default=0)
        volume_exponent = min((page.volume_exponent for page in pages), default=0)
        series = cls(symbol, interval, price_exponent, volume_exponent)
        for page in pages:
            series._times.extend(page.open_time_unix_ms)
            price_shift = page.price_exponent - price_exponent
            for column, mantissas in (
                (series._open, page.open),
                (series._high, page.high),
                (series._low, page.low),
                (series._close, page.close),
            ):
                column.extend(_shifted(mantissas, price_shift))
            series._volume.extend(_shifted(page.volume, page.volume_exponent - volume_exponent))
        return series

    def __len__(self) -> int:
        return len(self._times)

    @overload
    def __getitem__(self, index: int) -> Candle: ...

    @overload
    def __getitem__(self, index: slice) -> list[Candle]: ...

    def __getitem__(self, index: int | slice) -> Candle | list[Candle]:
        if isinstance(index, slice):
            return [self._candle(i) for i in range(*index.indices(len(self._times)))]
        if index < 0:
            index += len(self._times)
        if not 0 <= index < len(self._times):
            raise IndexError("candle index out of range")
        return self._candle(index)

    def __iter__(self) -> Iterator[Candle]:
        for index in range(len(self._times)):
            yield self._candle(index)

    def _candle(self, index: int) -> Candle:
        return Candle(
            self._symbol,
            self._interval,
            datetime.fromtimestamp(self._times[index] / 1000, tz=timezone.utc),
            self._open[index],
            self._high[index],
            self._low[index],
            self._close[index],
            self._volume[index],
        )

    def __repr__(self) -> str:
        return f"<CandleSeries {self._symbol} {self._interval} x{len(self._times)}>"


def _shifted(mantissas: Sequence[int], shift: int) -> Sequence[int]:
    # Moving to a smaller exponent multiplies the mantissa by a power of ten: always exact.
    if shift == 0:
        return mantissas
    factor = 10**shift
    return [mantissa * factor for mantissa in mantissas]
