"""The quote feed: one owned task that ticks the market and fans quotes out.

Only symbols someone cares about are ticked: those a stream subscribed to and those with working
orders (the paper broker matches them on every tick). With nothing to tick the task sleeps on an
event instead of waking at the tick rate. Ticks are produced in bursts of at most ~2,000 quotes with
the event loop free in between; when the task falls behind (a tick rate beyond what the machine can
produce) it skips ticks older than a quarter of a second rather than replaying them late.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence

from grpc_plugin.bridge._errors import ShuttingDownError
from grpc_plugin.bridge._market import Market, MarketQuote

__all__ = ["QuoteFeed", "QuoteSubscription"]

_log = logging.getLogger(__name__)
_MIN_SLEEP = 0.001  # below this asyncio would spin; ticks due in the meantime are batched
_MAX_LAG = 0.25  # seconds of ticks replayed after a stall; older ones are skipped
_MAX_QUOTES_PER_BURST = 2_000


class QuoteSubscription:
    """A stream's view of the feed: quotes accumulate until `next_batch` takes them all."""

    def __init__(self, symbols: Collection[str], max_buffered: int) -> None:
        self.symbols = frozenset(symbols)
        # A reader that stalls keeps the newest quotes: old quotes of a symbol are superseded anyway.
        self._buffer: deque[MarketQuote] = deque(maxlen=max_buffered)
        self._ready = asyncio.Event()
        self._closed = False

    def push(self, quote: MarketQuote) -> None:
        """Add one quote (called by the feed)."""
        self._buffer.append(quote)
        self._ready.set()

    def close(self) -> None:
        """Wake the reader so that it ends."""
        self._closed = True
        self._ready.set()

    async def next_batch(self) -> list[MarketQuote]:
        """Wait for quotes, then take every quote buffered, oldest first (possibly none)."""
        await self._ready.wait()
        self._ready.clear()
        return self.drain()

    def drain(self) -> list[MarketQuote]:
        """Take every quote buffered without waiting; `ShuttingDownError` once closed."""
        if self._closed:
            raise ShuttingDownError("the bridge is shutting down")
        batch = list(self._buffer)
        self._buffer.clear()
        return batch


class QuoteFeed:
    """Ticks the market for subscribed and traded symbols; `start` and `stop` own its task."""

    def __init__(
        self,
        market: Market,
        *,
        on_quotes: Callable[[Sequence[MarketQuote]], None] | None = None,
        traded_symbols: Callable[[], Iterable[str]] = frozenset,
        max_buffered: int = 100_000,
    ) -> None:
        self._market = market
        self._on_quotes = on_quotes
        self._traded_symbols = traded_symbols
        self._max_buffered = max_buffered
        self._subscriptions: set[QuoteSubscription] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def attach_broker(
        self,
        *,
        on_quotes: Callable[[Sequence[MarketQuote]], None],
        traded_symbols: Callable[[], Iterable[str]],
    ) -> None:
        """Have every tick matched by a broker, and tick the symbols it has working orders in."""
        self._on_quotes = on_quotes
        self._traded_symbols = traded_symbols

    def start(self) -> None:
        """Start ticking (idempotent); needs a running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="bridge-quote-feed")

    async def stop(self) -> None:
        """Stop ticking and wait for the task to end; subscriptions are closed."""
        self.close_all()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # waits without re-raising the task's CancelledError here
            if not task.cancelled() and task.exception() is not None:
                _log.error("the quote feed had stopped on an error", exc_info=task.exception())

    def subscribe(self, symbols: Collection[str]) -> QuoteSubscription:
        """A new subscription to `symbols` (known symbols, checked by the caller)."""
        subscription = QuoteSubscription(symbols, self._max_buffered)
        self._subscriptions.add(subscription)
        self.wake()
        return subscription

    def unsubscribe(self, subscription: QuoteSubscription) -> None:
        """End a subscription (idempotent)."""
        self._subscriptions.discard(subscription)

    def close_all(self) -> None:
        """Close every subscription, so that their streams end."""
        for subscription in self._subscriptions:
            subscription.close()

    def wake(self) -> None:
        """Tell the feed that the set of symbols to tick may have grown."""
        self._wakeup.set()

    def _symbols(self) -> list[str]:
        wanted = set(self._traded_symbols())
        for subscription in self._subscriptions:
            wanted.update(subscription.symbols)
        return sorted(wanted)

    async def _run(self) -> None:
        market = self._market
        last_tick: int | None = None
        while True:
            symbols = self._symbols()
            if not symbols:
                self._wakeup.clear()
                await self._wakeup.wait()
                last_tick = None  # nobody watched the idle time: do not replay it
                continue
            now_tick = market.current_tick()
            if last_tick is None:
                last_tick = now_tick - 1
            first = max(last_tick + 1, now_tick - int(market.tick_rate * _MAX_LAG))
            # A bounded burst, so that the streams get the event loop between bursts.
            stop = min(now_tick + 1, first + max(1, _MAX_QUOTES_PER_BURST // len(symbols)))
            for tick in range(first, stop):
                self._deliver([market.quote_at(symbol, tick) for symbol in symbols])
            last_tick = max(last_tick, stop - 1)
            if last_tick < now_tick:
                await asyncio.sleep(0)  # behind: let the streams send, then catch up
            else:
                await asyncio.sleep(max(_MIN_SLEEP, market.tick_time(last_tick + 1) - market.clock()))

    def _deliver(self, quotes: list[MarketQuote]) -> None:
        for subscription in self._subscriptions:
            for quote in quotes:
                if quote.symbol in subscription.symbols:
                    subscription.push(quote)
        if self._on_quotes is not None:
            try:
                self._on_quotes(quotes)
            except Exception:  # noqa: BLE001 - one failed match must not stop every quote stream
                _log.exception("matching orders against tick %d failed", quotes[0].tick)
