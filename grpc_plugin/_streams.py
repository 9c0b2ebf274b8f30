"""Server streams that survive reconnects: quotes resume, order updates resume without a gap.

Each open stream is one gRPC call. When the connection breaks, the call ends with UNAVAILABLE (or is
cancelled by the staleness watchdog) and the iterator opens a new call once the bridge is reachable,
taking a new permit; the caller's `async for` never sees the break. Order updates carry a sequence:
the new call asks for what came after the last one seen, so fills during the outage are replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import attrs
import grpc

from broker_plugins import BrokerUnavailableError, OrderUpdate, Quote
from grpc_plugin._calls import Caller, Service
from grpc_plugin._config import GatewayConfig
from grpc_plugin._connection import Connection
from grpc_plugin._mapping import order_from, order_update_from, quote_from, time_to
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, trading_pb2

__all__ = ["OrderStreamGap", "StreamSet"]

_T = TypeVar("_T")

_log = logging.getLogger("grpc_plugin")

# A stream ending with one of these is a broken connection, not an answer: it is reopened.
_RESUMABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)


@attrs.frozen(kw_only=True)
class OrderStreamGap:
    """An interruption of the order-update stream and how it was closed.

    Normally the bridge replays the updates of the gap from its retained sequence. When it cannot
    (it restarted without its state, or the gap outgrew what it keeps), `resynchronised` is true:
    the orders changed since `start` were fetched with ListOrders and yielded as snapshots.
    """

    start: datetime
    end: datetime
    resynchronised: bool


class _Watchdog:
    """Cancels a call that has delivered nothing for `after` seconds (a silent, half-open stream)."""

    __slots__ = ("_after", "_call", "_handle", "_loop", "_seen", "fired")

    def __init__(self, call: Any, after: float | None) -> None:
        self._call = call
        self._after = after
        self._seen = True
        self.fired = False
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(after, self._check) if after else None

    def touch(self) -> None:
        self._seen = True

    def _check(self) -> None:
        if not self._seen:
            self.fired = True
            self._call.cancel()
            return
        self._seen = False
        assert self._after is not None
        self._handle = self._loop.call_later(self._after, self._check)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


class StreamSet:
    """The open streams of one gateway, so that disconnect can end them all."""

    def __init__(self, config: GatewayConfig, connection: Connection, caller: Caller) -> None:
        self._config = config
        self._connection = connection
        self._caller = caller
        self._calls: set[Any] = set()
        # The iterators handed out; a paused one (its consumer stopped pulling) is closed on
        # disconnect, since it lets go of its call only when resumed or closed.
        self._iterators: weakref.WeakSet[AsyncGenerator[Any, None]] = weakref.WeakSet()
        self._closing = False
        self._used = False
        self._gap_listeners: list[Callable[[OrderStreamGap], object]] = []

    def add_gap_listener(self, listener: Callable[[OrderStreamGap], object]) -> Callable[[], None]:
        self._gap_listeners.append(listener)
        return lambda: self._gap_listeners.remove(listener) if listener in self._gap_listeners else None

    def reopen(self) -> None:
        """Allow streams again after a disconnect."""
        self._closing = False

    def close_all(self) -> bool:
        """End every open stream (their iterators raise `BrokerUnavailableError`); True if any
        stream was opened since the last call."""
        self._closing = True
        for call in tuple(self._calls):
            call.cancel()
        used, self._used = self._used, False
        return used

    async def wait_closed(self, timeout: float) -> None:
        """Wait until every cancelled stream's reader has let go of its call (at most `timeout`).

        A reader suspended at `yield` (its consumer is not pulling) lets go only when resumed or
        closed, so the wait is bounded; its call is cancelled either way.
        """
        for iterator in list(self._iterators):
            # One being read by its task ends through its cancelled call; only paused ones are closed.
            if not getattr(iterator, "ag_running", False):
                with contextlib.suppress(RuntimeError, BrokerUnavailableError):
                    await iterator.aclose()
        deadline = asyncio.get_running_loop().time() + timeout
        # Polling: readers let go in their own tasks, and there is no event to wait on.
        while self._calls and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    @property
    def open_calls(self) -> int:
        return len(self._calls)

    async def _open(self, service: Service, rpc: str, request: object, category: str) -> Any:
        """Open the call once the bridge is reachable, waiting through an outage."""
        attempt = 0
        while True:
            if self._closing or not self._connection.open:
                raise BrokerUnavailableError(f"{rpc}: the gateway was disconnected")
            try:
                await self._caller.prepare(category, self._config.unavailable_timeout)
            except BrokerUnavailableError:
                if not self._connection.open:
                    raise
                await asyncio.sleep(self._config.reconnect_backoff.delay(attempt))
                attempt += 1
                continue
            call = self._caller.stub_method(service, rpc)(request, metadata=self._connection.metadata)
            self._calls.add(call)
            self._used = True
            return call

    async def _messages(
        self, service: Service, rpc: str, request: object, category: str
    ) -> AsyncGenerator[Any, None]:
        """Open one call and yield its messages; returns when it broke in a way worth resuming.

        Only this frame ever holds the call, and it lets go in `finally`: a traceback kept by the
        caller (a task's exception) keeps frames alive, and a live call object keeps its connection
        open even after the channel is closed.
        """
        call: Any = await self._open(service, rpc, request, category)
        watchdog = _Watchdog(call, self._config.stream_stale_after)
        failure: BaseException | None = None
        try:
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    return
                watchdog.touch()
                yield message
        except asyncio.CancelledError:
            if watchdog.fired:
                _log.warning("%s on %s went silent; reopening it", rpc, self._config.target)
            elif self._closing:
                failure = BrokerUnavailableError(f"{rpc}: the gateway was disconnected")
            else:
                raise
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.OUT_OF_RANGE and rpc == "StreamOrderUpdates":
                failure = _CannotReplay()
            elif exc.code() not in _RESUMABLE or self._closing:
                failure = self._caller.error(exc, rpc)
            else:
                self._caller.error(exc, rpc)  # tells the connection the bridge is unreachable
        finally:
            watchdog.stop()
            call.cancel()
            self._calls.discard(call)
            del call, watchdog
        if failure is not None:
            # Raised here, outside the except clause, so it carries no context: gRPC's exception
            # and its traceback would keep the call, and so its connection, alive.
            raise failure

    def quotes(self, symbols: list[str]) -> AsyncIterator[Quote]:
        """Quotes of `symbols`, resumed across reconnects until the caller stops iterating."""
        return self._track(self._quotes(symbols))

    def order_updates(self) -> AsyncIterator[OrderUpdate]:
        """Order updates from now on, in sequence; see `_order_updates`."""
        return self._track(self._order_updates())

    def _track(self, iterator: AsyncGenerator[_T, None]) -> AsyncGenerator[_T, None]:
        self._iterators.add(iterator)
        return iterator

    async def _quotes(self, symbols: list[str]) -> AsyncGenerator[Quote, None]:
        request = market_data_pb2.StreamQuotesRequest(symbols=symbols)
        while True:
            batches = self._messages("market", "StreamQuotes", request, "market_data")
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    for quote in batch.quotes:
                        yield quote_from(quote)

    async def _order_updates(self) -> AsyncGenerator[OrderUpdate, None]:
        """Order updates from now on, in sequence; after an interruption the missed ones come first.

        The bridge answers a subscription at once (with its replay, or with nothing and the latest
        sequence), so a gap is closed, and reported, as soon as the stream is back.
        """
        last_sequence: int | None = None  # None: start from the latest, replaying nothing
        gap_start: datetime | None = None
        resync_since: datetime | None = None
        while True:
            request = trading_pb2.StreamOrderUpdatesRequest(
                after_sequence=last_sequence or 0, from_latest=last_sequence is None
            )
            batches = self._messages("trading", "StreamOrderUpdates", request, "trading")
            try:
                async for batch in batches:
                    if last_sequence is None:
                        last_sequence = batch.latest_sequence
                    if resync_since is not None:
                        # Subscribed first, so nothing between the snapshot and the stream is lost.
                        async for snapshot in self._resynchronise(resync_since):
                            yield snapshot
                        self._report(OrderStreamGap(start=resync_since, end=_now(), resynchronised=True))
                        resync_since = gap_start = None
                    elif gap_start is not None:
                        self._report(OrderStreamGap(start=gap_start, end=_now(), resynchronised=False))
                        gap_start = None
                    for update in batch.updates:
                        if update.sequence > last_sequence:  # anything older was delivered before
                            last_sequence = update.sequence
                            yield order_update_from(update)
            except _CannotReplay:
                # The bridge cannot replay from our sequence (it restarted without its state, or the
                # gap outgrew what it keeps): start from its latest and fetch what changed instead.
                resync_since = gap_start or _now()
                last_sequence = None
                continue
            finally:
                await batches.aclose()  # at once, not when the loop's finalizer gets to it
            if gap_start is None:
                gap_start = _now()

    async def _resynchronise(self, since: datetime) -> AsyncIterator[OrderUpdate]:
        request = trading_pb2.ListOrdersRequest(updated_since=time_to(since))
        reply = await self._caller.read("trading", "trading", "ListOrders", request)
        for message in reply.orders:
            order = order_from(message)
            # Sequence 0 marks a snapshot taken to close a gap, not an event the bridge numbered.
            yield OrderUpdate(order=order, sequence=0, time=order.updated_at)

    def _report(self, gap: OrderStreamGap) -> None:
        _log.info(
            "order updates resumed after a gap of %.3f s (resynchronised: %s)",
            (gap.end - gap.start).total_seconds(),
            gap.resynchronised,
        )
        for listener in tuple(self._gap_listeners):
            try:
                listener(gap)
            except Exception:  # noqa: BLE001 - a host's callback must not break the stream
                _log.exception("order stream gap listener %r failed", listener)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _CannotReplay(Exception):
    """The bridge cannot replay order updates from the sequence asked for (OUT_OF_RANGE)."""
