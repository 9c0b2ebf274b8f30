"""`RedisRateLimiter`: one rate budget for every process and machine that trades through an account.

`pip install 'broker-plugins[redis]'`; redis-py (its asyncio client) is imported only when a
`RedisRateLimiter` connects, so the core needs no Redis.

**The guarantee** is the in-process one: never more than `max_calls` grants in any window of
`period`, for every window of a category and for the shared `"*"` windows, whatever the number of
processes; a waiter cancelled while waiting takes nothing. Every decision is one call of a Lua script
registered once (`register_script`): one atomic round trip that reads the windows and the line,
decides, and records the grant, on Redis's own clock (`TIME`), so that machines whose clocks differ
still count one window. Each window is a list of its last `max_calls` grant times, as in-process.

**Why not a library.** pyrate-limiter's Redis bucket holds one window exactly, but a call must take
from its category's windows and the shared ones in one atomic step (pyrate puts into each bucket in
turn); its timestamps come from each client's own clock; and its waiters sleep and retry, so the
process that retries first wins (the starvation of issue 13). `limits` only has whole-second windows.

**Fair across processes.** Each process with callers waiting in a category holds one place in a
line in Redis, and the line is served in rounds: a process takes its next permit only once every
process ahead of it in the round has had as many (ties in the order they joined; one that joins
starts level with the least served). So processes saturating one budget get equal shares, whatever
their own number of callers, also when a whole window of permits frees up at once; a process's own
callers are served in arrival order. A place lapses when its process stops asking for `GRACE`
seconds past the time it was told to come back (a process killed, or stalled).

**While Redis is unreachable** no permit is granted: `acquire` fails with
`SharedBudgetUnavailableError` (within about twice `timeout`), nothing is sent, and `stats()` says
`store_reachable=False` with the reason; the next call tries again. A grant whose reply was lost
is never used, so a failure can only leave budget unspent, never exceed it.

**When Redis loses its data** (restarted without persistence, or flushed), nobody knows what was
granted in the last period. The first process that notices (it knew the budget's previous epoch)
marks every window full as of that moment, so calls resume one period later. Run Redis with
`appendonly yes` and `appendfsync always` where windows are long (an hour window would hold for an
hour). A process that never saw the budget before cannot tell a loss from a first start.

**Refusals** (`note_refusal`) hold the category back in every process for the broker's retry-after.

All processes sharing a `budget` must give it the same limits and margin (checked: a different one
fails with `InvalidRequestError`). A paced limit `RateLimit(N, P, paced=True)` is kept in Redis as a
window of one call per `P/N`. The URL's password (or `password=`) never appears in a repr, a log
line or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

from broker_plugins import _redis_scripts as lua
from broker_plugins._aio import Alarm
from broker_plugins._errors import BrokerError, InvalidRequestError, SharedBudgetUnavailableError
from broker_plugins._limiter import CategoryRecord, LimiterStats
from broker_plugins._limits import (
    CATEGORIES,
    SHARED,
    RateLimit,
    RateLimitsSpec,
    check_margin,
    describe,
    parse_spec,
    unknown_category,
)
from broker_plugins._redis_store import RedisStore

__all__ = ["GRACE", "RedisRateLimiter"]

_log = logging.getLogger("broker_plugins.ratelimit")

GRACE = 1.0
"""Seconds a process keeps its place in line past the time it was told to come back, or past its
last permit when no caller of it waits."""

_POLL = 0.25  # a waiting process asks again at least this often: places ahead may have lapsed
_US = 1_000_000


class _Line:
    """One category in this process: its windows in Redis, its callers, and the task serving them."""

    __slots__ = (
        "args",
        "driver",
        "held_until",
        "keys",
        "limits",
        "nudge",
        "queue",
        "record",
        "refusal_seen",
        "shared_held_until",
        "ticketed",
        "windows",
    )

    def __init__(
        self, base: str, category: str, limits: tuple[RateLimit, ...], windows: list[_Window]
    ) -> None:
        self.limits = limits
        self.windows = windows
        longest = max((window.span for window in windows), default=0)
        grace = round(GRACE * _US)
        ticket = f"{secrets.token_hex(8)}:{category}"  # this process's place in the category's line
        self.keys = [f"{base}:{category}:{part}" for part in ("queue", "leases", "seq", "hold", "rounds")]
        self.keys += [window.key for window in windows]
        self.args = [ticket, str(grace), str(longest + grace)]
        self.args += [str(number) for window in windows for number in (window.max_calls, window.span)]
        self.queue: deque[asyncio.Future[int]] = deque()
        self.driver: asyncio.Task[None] | None = None
        self.nudge = Alarm()
        self.ticketed = False
        self.held_until = -math.inf  # this process's own hold after a refusal (monotonic clock)
        self.shared_held_until = -math.inf  # a hold noted by any process, as last seen
        self.refusal_seen = 0
        self.record = CategoryRecord()


class _Window:
    """One window as Redis keeps it: a list under `key` of the last `max_calls` grants, `span` µs long."""

    __slots__ = ("key", "max_calls", "span")

    def __init__(self, key: str, limit: RateLimit, margin: float) -> None:
        span = math.ceil((limit.period + margin) * _US)  # never a microsecond shorter than asked
        self.key = key
        # A paced limit is one call per period / max_calls, as the in-process pacer keeps it.
        self.max_calls = 1 if limit.paced else limit.max_calls
        self.span = math.ceil(span / limit.max_calls) if limit.paced else span


class RedisRateLimiter:
    """A `Limiter` whose budget lives in Redis, shared by every process that names the same `budget`.

    `url` is `redis://[[user]:password@]host:port/db`, `rediss://...` or `unix:///path.sock?db=0`;
    `password` may be given apart from it. `timeout` bounds every round trip to Redis. Use it as
    `async with RedisRateLimiter(...) as limiter:` or call `aclose()`; it binds to the event loop it
    is first used in until then. `stats()` reports this process's permits, waits and waiters, the
    last refusal any process noted, and whether Redis is reachable.
    """

    def __init__(
        self,
        url: str,
        limits: RateLimitsSpec,
        *,
        budget: str,
        password: str | None = None,
        margin: float = 0.0,
        timeout: float = 1.0,
        key_prefix: str = "broker-plugins",
    ) -> None:
        if not isinstance(budget, str) or not budget or len(budget) > 200 or set(budget) & set("{}\n"):
            raise InvalidRequestError(f"budget must be a short name without braces, got {budget!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
            raise InvalidRequestError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._store = RedisStore(
            url, password=password, timeout=float(timeout), name=f"shared rate budget {budget!r}"
        )
        margin = check_margin(margin)
        self._budget = budget
        self._limits = parse_spec(limits)
        base = f"{key_prefix}:{{{budget}}}"

        def windows(name: str, limits: tuple[RateLimit, ...]) -> list[_Window]:
            return [_Window(f"{base}:{name}:w{index}", limit, margin) for index, limit in enumerate(limits)]

        shared_limits = self._limits.get(SHARED, ())
        shared = windows("shared", shared_limits)
        every = list(shared)
        self._lines: dict[str, _Line] = {}
        for category in CATEGORIES:
            own_limits = self._limits.get(category, ())
            own = windows(category, own_limits)
            every += own
            self._lines[category] = _Line(base, category, own_limits + shared_limits, own + shared)
        # What every process on this budget must agree on: each category's windows, as Redis keeps them.
        self._spec = "v1;" + ";".join(
            f"{category}=" + ",".join(f"{w.max_calls}/{w.span}" for w in line.windows)
            for category, line in self._lines.items()
        )
        self._epoch_keys = [f"{base}:epoch", f"{base}:spec"]
        self._recover_keys = [f"{base}:epoch", *(w.key for w in every)]
        self._recover_args = [str(number) for w in every for number in (w.max_calls, w.span)]
        self._epoch = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def limits_for(self, category: str) -> tuple[RateLimit, ...]:
        """Every limit a call in `category` is subject to: its own, then the shared ones."""
        return self._line(category).limits

    async def acquire(self, category: str) -> None:
        """Wait until the shared budget allows a call in `category` now, and take the permit.

        Raises `SharedBudgetUnavailableError` while Redis cannot be reached (nothing was granted).
        """
        line = self._line(category)
        if not line.windows:
            line.record.granted(0.0)
            return
        loop = asyncio.get_running_loop()
        self._bind(loop)
        started = loop.time()
        waiter: asyncio.Future[int] = loop.create_future()
        line.queue.append(waiter)
        if line.driver is None:
            line.driver = loop.create_task(self._serve(line))
        elif len(line.queue) == 1:
            line.nudge.ring()  # the task serving the line was about to give up its place: go on
        try:
            await waiter
        except asyncio.CancelledError:
            # Granted just as it was cancelled: the permit goes to the next caller, or back.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._hand_over(line, waiter.result())
            raise
        finally:
            if waiter in line.queue:
                line.queue.remove(waiter)
                if not line.queue:
                    line.nudge.ring()  # nobody left: give up the place in line now
        line.record.granted(loop.time() - started)

    def note_refusal(self, category: str, retry_after: float | None) -> None:
        """The broker refused a call in `category`: every process sharing the budget holds back."""
        line = self._line(category)
        valid = retry_after is not None and math.isfinite(retry_after) and retry_after > 0
        line.record.refused(retry_after if valid else None)
        if retry_after is None or not valid:
            return
        line.held_until = max(line.held_until, time.monotonic() + retry_after)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop to tell the others from: this process holds back on its own
        if self._loop in (None, loop):
            self._bind(loop)
            self._spawn(self._share_refusal(line, retry_after))

    def stats(self) -> LimiterStats:
        """This process's permits, waits and waiters per category, the last refusal, and the store."""
        now = time.monotonic()
        return LimiterStats(
            categories=tuple(
                line.record.snapshot(
                    category,
                    line.limits,
                    waiters=len(line.queue),
                    held_for=max(line.held_until, line.shared_held_until) - now,
                )
                for category, line in self._lines.items()
            ),
            store=f"redis budget {self._budget!r} at {self._store.location}",
            store_reachable=self._store.reachable,
            store_error=self._store.error,
        )

    async def aclose(self) -> None:
        """Stop serving callers (they fail), give up places in line, close the connections."""
        tasks = [line.driver for line in self._lines.values() if line.driver is not None]
        tasks += self._tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        closed = SharedBudgetUnavailableError(f"the shared rate budget {self._budget!r} was closed")
        for line in self._lines.values():
            _fail_waiters(line, closed)
            if line.ticketed and self._store.connected:
                line.ticketed = False
                with contextlib.suppress(BrokerError):
                    await self._leave(line)
        await self._store.aclose()
        self._loop = None

    async def __aenter__(self) -> RedisRateLimiter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- serving one category's callers --------------------------------------------------------

    async def _serve(self, line: _Line) -> None:
        """Ask Redis for permits while callers wait, one decision per round trip, and hand them out."""
        try:
            while True:
                while line.queue:
                    held = line.held_until - time.monotonic()
                    if held > 0:
                        await line.nudge.sleep(held)
                        continue
                    try:
                        granted_at, wait = await self._decide(line)
                    except BrokerError as error:
                        _fail_waiters(line, error)
                        continue
                    except Exception as error:  # noqa: BLE001 - a bug must fail the callers, not strand them
                        _log.exception("shared rate budget %r: deciding failed", self._budget)
                        failed = f"the shared rate budget {self._budget!r} failed ({type(error).__name__})"
                        _fail_waiters(line, SharedBudgetUnavailableError(failed))
                        continue
                    if granted_at is not None:
                        self._hand_over(line, granted_at)
                    else:
                        await line.nudge.sleep(min(wait, _POLL))
                if line.ticketed:
                    # A caller that just got its permit usually asks again soon: keep the place
                    # (and the turns counted on it) as long as its lease, so that a busy process
                    # does not leave and join again level with the least served.
                    await line.nudge.sleep(GRACE)
                    if line.queue:
                        continue
                    line.ticketed = False
                    with contextlib.suppress(BrokerError):
                        await self._leave(line)
                if not line.queue:  # no await between this check and the end of the task
                    return
        finally:
            line.driver = None

    async def _decide(self, line: _Line) -> tuple[int | None, float]:
        """(the grant's time in µs, 0) or (None, seconds to wait): one round trip, unless the epoch moved."""
        for _ in range(3):
            reply = await self._store.run(
                "decide", self._epoch_keys + line.keys, [self._epoch, self._spec, *line.args]
            )
            code = int(reply[0])
            if code == lua.STALE_EPOCH:
                await self._recover()
                continue
            if code == lua.SPEC_MISMATCH:
                raise InvalidRequestError(
                    f"the shared rate budget {self._budget!r} is in use with other limits "
                    f"({reply[1]}; here {self._spec}): give every process the same limits and margin"
                )
            self._learn_refusal(line, int(reply[3]), int(reply[4]))
            line.ticketed = True  # in line until it leaves, also after a grant: turns are counted
            if code == lua.GRANTED:
                return int(reply[1]), 0.0
            wait = int(reply[1]) / _US
            if int(reply[2]):
                line.shared_held_until = time.monotonic() + wait
            return None, wait
        raise SharedBudgetUnavailableError(f"the shared rate budget {self._budget!r} keeps being reset")

    async def _recover(self) -> None:
        knew = self._epoch
        epoch = str(
            await self._store.run(
                "recover", self._recover_keys, [knew, secrets.token_hex(8), *self._recover_args]
            )
        )
        if knew and epoch.endswith("+") and epoch != knew:
            _log.warning(
                "shared rate budget %r at %s lost its windows (Redis restarted or was flushed): "
                "every window is held for one period",
                self._budget,
                self._store.location,
            )
        self._epoch = epoch

    def _learn_refusal(self, line: _Line, at_us: int, retry_us: int) -> None:
        if at_us and at_us != line.refusal_seen:
            line.refusal_seen = at_us
            at = datetime.datetime.fromtimestamp(at_us / _US, tz=datetime.timezone.utc)
            line.record.refused(retry_us / _US, at=at)

    def _hand_over(self, line: _Line, granted_at: int) -> None:
        while line.queue:
            waiter = line.queue.popleft()
            if not waiter.done():
                waiter.set_result(granted_at)
                return
        self._spawn(self._refund(line, granted_at))

    async def _refund(self, line: _Line, granted_at: int) -> None:
        with contextlib.suppress(BrokerError):
            window_keys = line.keys[5:]
            await self._store.run(
                "refund", self._epoch_keys[:1] + window_keys, [self._epoch, str(granted_at)]
            )

    async def _share_refusal(self, line: _Line, retry_after: float) -> None:
        with contextlib.suppress(BrokerError):
            await self._store.run("refuse", line.keys[3:4], [str(math.ceil(retry_after * _US))])

    async def _leave(self, line: _Line) -> None:
        await self._store.run("leave", [*line.keys[:2], line.keys[4]], line.args[:1])

    # -- bookkeeping -------------------------------------------------------------------------------

    def _line(self, category: str) -> _Line:
        try:
            return self._lines[category]
        except KeyError:
            raise unknown_category(category) from None

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not loop:
            if self._loop is not None:
                raise RuntimeError("this RedisRateLimiter is in use by another event loop; aclose() it first")
            self._loop = loop

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __repr__(self) -> str:
        return (
            f"<RedisRateLimiter budget {self._budget!r} at {self._store.location}: {describe(self._limits)}>"
        )


def _fail_waiters(line: _Line, error: BrokerError) -> None:
    while line.queue:
        waiter = line.queue.popleft()
        if not waiter.done():
            waiter.set_exception(type(error)(str(error)))
