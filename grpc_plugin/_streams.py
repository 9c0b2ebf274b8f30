"""Server streams that survive reconnects: quotes resume, order updates resume without a gap.

Each open stream is one gRPC call. When the connection breaks, the call ends with a transient status
(UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED, or cancelled by the staleness watchdog) and the
iterator opens a new call once the bridge is reachable, taking a new permit; the caller's `async for`
never sees the break. Reopenings are paced by the reconnect backoff, reset once a message arrives.
A bridge fault (INTERNAL, UNKNOWN, DATA_LOSS) is retried the same way, but after three in a row the
mapped error reaches the reader; any other status reaches it at once. Order updates carry a
sequence: the new call asks for what came after the last one seen, so fills during the outage are
replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs
import grpc

from broker_plugins import BrokerUnavailableError, OrderUpdate, Quote
from grpc_plugin._calls import Calls
from grpc_plugin._config import GatewayConfig
from grpc_plugin._connection import Connection
from grpc_plugin._mapping import order_from, order_update_from, quote_from, time_to
from grpc_plugin._staleness import QuoteSilence, Staleness
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, trading_pb2

__all__ = ["FAULT_ATTEMPTS", "OrderStreamGap", "StreamSet"]

_log = logging.getLogger("grpc_plugin")

# A stream ending with one of these is a broken connection, not an answer: it is reopened.
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)
# A fault of the bridge: reopened, but only FAULT_ATTEMPTS times in a row.
_FAULTS = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS})
FAULT_ATTEMPTS = 3
"""Openings of one stream that may end in a bridge fault in a row before the reader gets the error."""


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


class _Pacing:
    """How often one stream has failed in a row, and so how long its next opening waits."""

    __slots__ = ("failures", "faults")

    def __init__(self) -> None:
        self.failures = 0
        self.faults = 0

    def reset(self) -> None:
        self.failures = self.faults = 0


class StreamSet:
    """The open stream calls of one gateway, so that disconnect can end them all."""

    def __init__(
        self,
        config: GatewayConfig,
        connection: Connection,
        calls: Calls,
        is_open: Callable[[], bool],
        staleness: Staleness | None = None,
    ) -> None:
        self._config = config
        self._connection = connection
        self._calls = calls
        self._is_open = is_open
        self._staleness = staleness
        self._used = False
        self._gap_listeners: list[Callable[[OrderStreamGap], object]] = []

    def add_gap_listener(self, listener: Callable[[OrderStreamGap], object]) -> Callable[[], None]:
        self._gap_listeners.append(listener)
        return lambda: self._gap_listeners.remove(listener) if listener in self._gap_listeners else None

    def used(self) -> bool:
        """Whether a stream was opened since the last time this was asked."""
        used, self._used = self._used, False
        return used

    async def _open(self, service: str, rpc: str, request: object, category: str, pacing: _Pacing) -> Any:
        """Open the call once the bridge is reachable, waiting through an outage, paced."""
        while True:
            if not self._is_open():
                raise BrokerUnavailableError(f"{rpc}: the gateway was disconnected")
            if pacing.failures:
                await asyncio.sleep(self._config.reconnect_backoff.delay(pacing.failures - 1))
            try:
                call = await self._calls.open_stream(category, service, rpc, request)
            except BrokerUnavailableError:
                if not self._is_open():
                    raise
                pacing.failures += 1
                continue
            self._used = True
            return call

    async def _messages(
        self,
        service: str,
        rpc: str,
        request: object,
        category: str,
        pacing: _Pacing,
        *,
        symbols: tuple[str, ...] = (),
    ) -> AsyncGenerator[Any, None]:
        """Open one call and yield its messages; returns when it broke in a way worth resuming.

        Only this frame ever holds the call, and it lets go in `finally`: a traceback kept by the
        caller (a task's exception) keeps frames alive, and a live call object keeps its connection
        open even after the channel is closed.
        """
        call: Any = await self._open(service, rpc, request, category, pacing)
        watchdog = _Watchdog(call, self._config.stream_stale_after)
        silence = self._staleness.watch(call, symbols) if self._staleness and symbols else None
        connection = self._connection
        failure: BaseException | None = None
        try:
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    pacing.failures += 1  # ended by the bridge: reopened, but not in a hot loop
                    return
                connection.heard()
                if pacing.failures:
                    pacing.reset()
                watchdog.touch()
                if silence is not None:
                    silence.touch()
                yield message
        except asyncio.CancelledError:
            failure = self._cancelled(call, rpc, pacing, watchdog, silence)
        except grpc.aio.AioRpcError as exc:
            failure = self._ended(exc, rpc, category, pacing)
        finally:
            watchdog.stop()
            if silence is not None:
                silence.stop()
            call.cancel()
            connection.release(call)
            del call, watchdog, silence
        if failure is not None:
            # Raised here, outside the except clause, so it carries no context: gRPC's exception
            # and its traceback would keep the call, and so its connection, alive.
            raise failure

    def _cancelled(
        self, call: Any, rpc: str, pacing: _Pacing, watchdog: _Watchdog, silence: QuoteSilence | None
    ) -> BaseException | None:
        """Called in the `except` clause of a cancelled read: what to raise (None: reopen the stream);
        a cancellation that is not ours is re-raised."""
        connection = self._connection
        if not self._is_open() and connection.severed(call):
            return BrokerUnavailableError(f"{rpc}: the gateway was disconnected")
        if watchdog.fired:
            _log.warning("%s on %s went silent; reopening it", rpc, self._config.target)
        elif silence is not None and silence.fired is not None:
            stale = silence.fired
            _log.warning(
                "%s of %s on %s delivered nothing for %.1f s while %s; reopening it",
                rpc,
                ",".join(stale.symbols),
                self._config.target,
                stale.silent_for,
                "the market was open" if stale.market_open else "no calendar said the market was closed",
            )
            assert self._staleness is not None
            self._staleness.report(stale)
        elif connection.severed(call):
            pacing.failures += 1  # the link was lost under it: reopened once there is a new one
        else:
            raise  # noqa: PLE0704 - re-raises the cancellation being handled by the caller
        return None

    def _ended(
        self, exc: grpc.aio.AioRpcError, rpc: str, category: str, pacing: _Pacing
    ) -> BaseException | None:
        """What a stream that ended with `exc` does next: None to reopen it, else what to raise."""
        code = exc.code()
        if code is grpc.StatusCode.OUT_OF_RANGE and rpc == "StreamOrderUpdates":
            return _CannotReplay()
        error = self._calls.failure(exc, rpc, category)  # also tells the connection when unreachable
        if not self._is_open():
            return BrokerUnavailableError(f"{rpc}: the gateway was disconnected")
        if code in _TRANSIENT:
            pacing.failures += 1
            return None
        if code in _FAULTS and pacing.faults + 1 < FAULT_ATTEMPTS:
            pacing.faults += 1
            pacing.failures += 1
            _log.warning("%s on %s failed (%s); reopening it", rpc, self._config.target, error)
            return None
        return error

    async def quotes(self, symbols: Sequence[str]) -> AsyncGenerator[Quote, None]:
        """Quotes of `symbols`, resumed across reconnects until the caller stops iterating."""
        request = market_data_pb2.StreamQuotesRequest(symbols=symbols)
        pacing = _Pacing()
        while True:
            batches = self._messages(
                "market", "StreamQuotes", request, "market_data", pacing, symbols=tuple(symbols)
            )
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    for quote in batch.quotes:
                        yield quote_from(quote)

    async def order_updates(self) -> AsyncGenerator[OrderUpdate, None]:
        """Order updates from now on, in sequence; after an interruption the missed ones come first.

        The bridge answers a subscription at once (with its replay, or with nothing and the latest
        sequence), so a gap is closed, and reported, as soon as the stream is back.
        """
        last_sequence: int | None = None  # None: start from the latest, replaying nothing
        pacing = _Pacing()
        gap_start: datetime | None = None
        resync_since: datetime | None = None
        while True:
            request = trading_pb2.StreamOrderUpdatesRequest(
                after_sequence=last_sequence or 0, from_latest=last_sequence is None
            )
            batches = self._messages("trading", "StreamOrderUpdates", request, "trading", pacing)
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
        reply = await self._calls.read("trading", "trading", "ListOrders", request)
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
