"""A real asyncio event loop on virtual time: whenever nothing is ready to run, its clock jumps to the
next timer. Tests of timing logic (rate limits, pacing) run exact and in milliseconds on it.

Every loop iteration also moves the clock on by one nanosecond, as running code takes time on a
real clock: arithmetic that waits "until a rounding error has passed" then finishes, as it would.
Real I/O still works (it is polled without waiting), but a test that waits on a socket or a thread
must not hold a timer meanwhile, or the clock runs ahead of the I/O.

    @virtual_time
    async def test_something() -> None:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(RateLimit(5, 1.0), clock=loop.time)
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

__all__ = ["START", "TICK", "VirtualTimeLoop", "run_in_virtual_time", "virtual_time"]

T = TypeVar("T")

START = 1_000_000.0
"""The virtual clock's reading at start: far from zero, as `time.monotonic()` is."""

TICK = 1e-9
"""How far the clock moves on each loop iteration that does not jump to a timer."""

_DEADLOCK_AFTER = 10.0  # real seconds with no timer, nothing ready and no I/O


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose `time()` is virtual; sleeps and timeouts take no real time."""

    def __init__(self) -> None:
        self._now = START
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self._now

    def _advance(self, seconds: float) -> None:
        self._now += seconds


class _JumpingSelector(selectors.BaseSelector):
    """A real selector that never waits while a timer is pending: it moves the loop's clock instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop
        self._real = selectors.DefaultSelector()

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready:
            return ready
        if timeout is None:
            # No timer and nothing to run: only I/O or another thread can wake the loop now.
            ready = self._real.select(_DEADLOCK_AFTER)
            if not ready:
                raise RuntimeError("virtual time: every task waits, and no timer or I/O can wake one")
            return ready
        # asyncio asks to wait `timeout` for the earliest timer: that much time passes, at once.
        self._loop._advance(max(timeout, TICK))
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()


def run_in_virtual_time(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh `VirtualTimeLoop`, then close the loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def virtual_time(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Make an async test function a plain one that runs on virtual time (fixtures still apply)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        run_in_virtual_time(test(*args, **kwargs))

    return run
