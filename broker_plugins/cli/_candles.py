"""Candle downloads for `brokerctl candles`: large ranges in chunks, so progress can be shown.

A gateway pages internally and returns only when it has everything, which says nothing while a
million candles arrive. When a range is known (`--start`) and large, it is fetched as consecutive
sub-ranges instead; each sub-range is an ordinary `get_candles` call, so the result is the same.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from broker_plugins._entities import Candle
from broker_plugins._enums import Interval
from broker_plugins._errors import InvalidRequestError
from broker_plugins._gateway import IBrokerGateway
from broker_plugins.cli._output import Progress

__all__ = ["CHUNK_CANDLES", "fetch_candles", "parse_time"]

CHUNK_CANDLES = 50_000
"""Candles per sub-range; a request that spans fewer is sent in one call."""


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time (`2025-01-02`, `2025-01-02T09:30`, `...Z`); UTC unless it says otherwise."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"  # fromisoformat takes no Z before Python 3.11
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(
            f"time {text!r} is not ISO 8601, for example 2025-01-02 or 2025-01-02T09:30:00Z"
        ) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


async def fetch_candles(
    gateway: IBrokerGateway,
    symbol: str,
    interval: Interval,
    *,
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
    progress: Progress,
) -> list[Candle]:
    """Candles of `symbol`, as `get_candles` returns them; in chunks when `progress` is shown."""
    if start is None or not progress.enabled:
        return list(await gateway.get_candles(symbol, interval, start=start, end=end, limit=limit))
    stop = end or datetime.now(timezone.utc)
    step = interval.duration * CHUNK_CANDLES
    spanned = max(0, math.ceil((stop - start) / interval.duration))
    total = spanned if limit is None else min(limit, spanned)
    if total <= CHUNK_CANDLES:
        return list(await gateway.get_candles(symbol, interval, start=start, end=end, limit=limit))
    candles: list[Candle] = []
    cursor = start
    progress.total = total
    progress.update(0, force=True)
    try:
        while cursor < stop and (limit is None or len(candles) < limit):
            chunk_end = min(cursor + step, stop)
            wanted = None if limit is None else min(limit - len(candles), CHUNK_CANDLES)
            candles.extend(
                await gateway.get_candles(symbol, interval, start=cursor, end=chunk_end, limit=wanted)
            )
            progress.update(len(candles))
            cursor = chunk_end
    finally:
        progress.finish()
    return candles
