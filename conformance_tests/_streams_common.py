"""Reading a gateway's stream in the background while a clause breaks and restores the link."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from broker_plugins import IBrokerGateway, OrderUpdate, Quote
from conformance_tests._support import close_stream, ending, eventually, expect, outcome_of

__all__ = ["OrderUpdateReader", "QuoteReader", "StreamReader"]

_T = TypeVar("_T")
_CLOSE_BOUND = 2.0


class StreamReader(Generic[_T]):
    """Reads a stream in a task of its own, keeping each item with the `time.monotonic()` it came."""

    def __init__(self, stream: AsyncIterator[_T]) -> None:
        self.received: list[tuple[_T, float]] = []
        self._stream = stream
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for item in self._stream:
                self.received.append((item, time.monotonic()))
        finally:
            await close_stream(self._stream)

    def items(self, after: float | None = None) -> list[_T]:
        """The items received (only those after the monotonic time `after`, when given)."""
        return [item for item, at in self.received if after is None or at > after]

    async def wait_for(self, clause_id: str, count: int, seconds: float, after: float | None = None) -> None:
        """Wait until `count` items came (after `after`); the clause fails if they do not within
        `seconds`, or if the stream ends first."""
        __tracebackhide__ = True
        await eventually(lambda: len(self.items(after)) >= count or self.task.done(), seconds)
        got = len(self.items(after))
        since = "" if after is None else " since the link was restored"
        expect(
            got >= count,
            clause_id,
            f"the stream yielded {got} of {count} items{since} within {seconds:g} s "
            f"(the stream: {ending(self.task)})",
        )

    async def close(self) -> None:
        """Stop reading; bounded, whatever the stream does about it."""
        self.task.cancel()
        await outcome_of(asyncio.gather(self.task, return_exceptions=True), _CLOSE_BOUND)


class QuoteReader(StreamReader[Quote]):
    """`stream_quotes([symbol])` of a gateway, read in the background."""

    def __init__(self, gateway: IBrokerGateway, symbol: str) -> None:
        super().__init__(gateway.stream_quotes([symbol]))


class OrderUpdateReader(StreamReader[OrderUpdate]):
    """`stream_order_updates()` of a gateway, read in the background."""

    def __init__(self, gateway: IBrokerGateway) -> None:
        super().__init__(gateway.stream_order_updates())
