"""Per-account order update sequences: retention for replay, and live subscribers.

A subscriber first gets the retained updates after the sequence it names, then every new one.
Both happen without an `await` in between, so no update can fall between replay and live.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping

from grpc_plugin.bridge._errors import OutOfRangeError, ShuttingDownError, SubscriberOverflowError
from grpc_plugin.bridge._orders import OrderUpdateRecord

__all__ = ["UpdateLog", "UpdateSubscription"]


class UpdateSubscription:
    """A live reader of one account's updates; `next_batch` returns what arrived since last time."""

    def __init__(self, account: str, max_pending: int) -> None:
        self.account = account
        self._max_pending = max_pending
        self._pending: list[OrderUpdateRecord] = []
        self._ready = asyncio.Event()
        self._overflowed = False
        self._closed = False

    def push(self, update: OrderUpdateRecord) -> None:
        """Queue one update (called by the log)."""
        if len(self._pending) >= self._max_pending:
            # Dropping updates would break the gap-free promise; end the stream instead.
            self._overflowed = True
        else:
            self._pending.append(update)
        self._ready.set()

    def close(self) -> None:
        """Wake the reader so that it ends (the bridge is shutting down)."""
        self._closed = True
        self._ready.set()

    async def next_batch(self) -> list[OrderUpdateRecord]:
        """Wait for updates, then take every update queued, in sequence (possibly none)."""
        await self._ready.wait()
        self._ready.clear()
        return self.drain()

    def drain(self) -> list[OrderUpdateRecord]:
        """Take every queued update without waiting.

        `SubscriberOverflowError` if the reader fell too far behind, `ShuttingDownError` once closed.
        """
        if self._overflowed:
            raise SubscriberOverflowError(
                f"this stream fell more than {self._max_pending} order updates behind; "
                "reconnect with after_sequence = the last sequence received"
            )
        if self._closed:
            raise ShuttingDownError("the bridge is shutting down")
        batch, self._pending = self._pending, []
        return batch


class UpdateLog:
    """The retained updates and last sequence of every account, and its live subscribers."""

    def __init__(self, *, retain: int = 10_000, max_pending: int = 100_000) -> None:
        self._retain = retain
        self._max_pending = max_pending
        self._retained: dict[str, deque[OrderUpdateRecord]] = {}
        self._last: dict[str, int] = {}
        self._subscribers: set[UpdateSubscription] = set()

    def restore(self, updates: Iterable[OrderUpdateRecord], last_sequences: Mapping[str, int]) -> None:
        """Load state from a journal snapshot (updates ascending by sequence)."""
        for update in updates:
            self._deque(update.account).append(update)
        self._last.update(last_sequences)

    def _deque(self, account: str) -> deque[OrderUpdateRecord]:
        retained = self._retained.get(account)
        if retained is None:
            retained = self._retained[account] = deque(maxlen=self._retain)
        return retained

    def last_sequence(self, account: str) -> int:
        """The sequence of the account's latest update (0 before the first)."""
        return self._last.get(account, 0)

    def publish(self, updates: Iterable[OrderUpdateRecord]) -> None:
        """Append committed updates (consecutive sequences) and hand them to live subscribers."""
        for update in updates:
            expected = self.last_sequence(update.account) + 1
            if update.sequence != expected:
                raise AssertionError(f"update sequence {update.sequence}, expected {expected}")
            self._last[update.account] = update.sequence
            self._deque(update.account).append(update)
            for subscriber in self._subscribers:
                if subscriber.account == update.account:
                    subscriber.push(update)

    def subscribe(
        self, account: str, after_sequence: int
    ) -> tuple[list[OrderUpdateRecord], UpdateSubscription]:
        """The retained updates after `after_sequence`, and a subscription for the ones to come."""
        last = self.last_sequence(account)
        if after_sequence > last:
            raise OutOfRangeError(
                f"after_sequence {after_sequence} is ahead of the account's latest sequence {last}"
            )
        retained = self._retained.get(account, deque())
        oldest = retained[0].sequence if retained else last + 1
        if after_sequence + 1 < oldest:
            raise OutOfRangeError(
                f"updates after sequence {after_sequence} are no longer retained (oldest is {oldest}); "
                "resynchronise with ListOrders and stream from the latest sequence"
            )
        replay = [update for update in retained if update.sequence > after_sequence]
        subscription = UpdateSubscription(account, self._max_pending)
        self._subscribers.add(subscription)
        return replay, subscription

    def unsubscribe(self, subscription: UpdateSubscription) -> None:
        """Stop delivering to `subscription` (idempotent)."""
        self._subscribers.discard(subscription)

    def close_all(self) -> None:
        """Wake every subscriber so that its stream ends."""
        for subscriber in self._subscribers:
            subscriber.close()
