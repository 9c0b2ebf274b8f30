"""How long the suite's own event loop stalled: timing checks that a stall can fool take it into account."""

from __future__ import annotations

import asyncio

__all__ = ["StallWatch"]

_TICK = 0.005  # how often the watch wakes


class StallWatch:
    """The longest this event loop was late to wake a sleeper while the block ran: a stalled loop
    (or a descheduled process) delays, or bunches, every event a backend on that loop records."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StallWatch:
        self._task = asyncio.ensure_future(self._watch())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(_TICK)
            self.longest = max(self.longest, loop.time() - before - _TICK)
