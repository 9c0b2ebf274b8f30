"""asyncio helpers that keep cancellation intact on every supported Python.

`asyncio.wait_for` on Python 3.10 and 3.11 swallows a cancellation that arrives just as the awaited
thing completes: a supervisor loop cancelled at that moment keeps running, and `stop()` then waits
for it forever. Code in this distribution uses `wait_for` from here instead.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["Alarm", "wait_for"]

_T = TypeVar("_T")

if sys.version_info >= (3, 11):

    async def wait_for(awaitable: Awaitable[_T], timeout: float) -> _T:
        """Await `awaitable` for at most `timeout` seconds; `TimeoutError` after that."""
        async with asyncio.timeout(timeout):
            return await awaitable

else:  # pragma: no cover - exercised by the Python 3.10 run in CI

    async def wait_for(awaitable: Awaitable[_T], timeout: float) -> _T:
        """Await `awaitable` for at most `timeout` seconds; `asyncio.TimeoutError` after that."""
        inner = asyncio.ensure_future(awaitable)
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            inner.cancel()

        handle = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            # Awaiting the task (not a wrapper) lets a cancellation of ours reach it and come back.
            return await inner
        except asyncio.CancelledError:
            if timed_out and inner.cancelled():
                raise asyncio.TimeoutError from None
            raise
        finally:
            handle.cancel()


class Alarm:
    """A sleep another piece of code can cut short: `await alarm.sleep(s)`; `alarm.ring()` ends it.

    A timer and a future rather than `asyncio.wait_for` on an event, which before Python 3.12 can
    swallow a cancellation that arrives as the wait ends.
    """

    __slots__ = ("_wake",)

    def __init__(self) -> None:
        self._wake: asyncio.Future[None] | None = None

    @property
    def sleeping(self) -> bool:
        """Whether a `sleep` is under way."""
        return self._wake is not None

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of loop time, or until `ring()`, whichever comes first."""
        loop = asyncio.get_running_loop()
        self._wake = wake = loop.create_future()
        timer = loop.call_later(seconds, _resolve, wake)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    def ring(self) -> None:
        """End the sleep under way now (nothing if none is)."""
        wake = self._wake
        if wake is not None:
            _resolve(wake)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
