"""Serialised placement: one PlaceOrder at a time per (account, client_order_id).

A broker API takes time to accept an order. Two attempts with one id that overlap would both find
the id free and place two orders; so the second waits for the first to finish, then finds the
order it created (duplicate = true). Attempts with different ids do not wait for each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["PlacementLocks"]


class PlacementLocks:
    """A lock per key, created on first use and dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, account: str, client_order_id: str) -> AsyncIterator[None]:
        """Hold the lock of (account, client_order_id) for the body; waits for a holder first."""
        key = (account, client_order_id)
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            _, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
