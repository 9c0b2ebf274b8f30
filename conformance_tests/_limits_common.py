"""What the rate-limit clauses share: running callers, checking what the backend saw, and confirming
a timing-sensitive violation before reporting it."""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from broker_plugins import RateLimit
from conformance_tests._harness import BackendRequest, ConformanceHarness
from conformance_tests._support import bounded, expect, violated
from conformance_tests._windows import busiest_window, jitter_allowance, over_limit_message

__all__ = [
    "CONFIRM_SCALE",
    "LAST_SCALE",
    "SMALL_EXCESS",
    "STALLED_SCALE",
    "STALL_SHARE",
    "Call",
    "Overrun",
    "Scenario",
    "StallWatch",
    "all_succeeded",
    "arrivals",
    "bound_for",
    "check_windows",
    "confirmed",
    "run_callers",
    "scaled",
    "window_problems",
]

Call = Callable[[], Awaitable[object]]
Scenario = Callable[[float], Awaitable[list[str]]]
"""A rate-limit check run with every window `scale` times its usual length; returns what it found
wrong (nothing when the limits held)."""

CONFIRM_SCALE = 2.0
"""How much longer the windows are when a violation is checked again before it is reported."""

LAST_SCALE = 4.0
"""How much longer the windows are for a last check of a small violation (`SMALL_EXCESS`)."""

STALLED_SCALE = 8.0
"""How much longer the windows are for a check of a violation seen while this process's event
loop stalled for longer than the windows' jitter allowance."""

SMALL_EXCESS = 2
"""The most calls too many in a window that a loaded machine's bunching can still explain on
windows twice as long (a defect puts a whole batch of calls in one window, at every scale)."""

_TICK = 0.005  # how often the stall watch wakes
_LATE = 0.002  # a wake later than this: the loop had other work queued when the sleeper was due
STALL_SHARE = 0.25
"""The largest share of a window a measured stall may widen its jitter allowance to: beyond it the
windows are too short to tell a stall from a defect, and longer ones are tried."""


class Overrun(str):
    """A window that held more arrivals than its limit allows: the message, by how many calls, and
    the window's allowance for arrival jitter (none given: no stall excuses it)."""

    __slots__ = ("allowance", "excess")
    excess: int
    allowance: float

    def __new__(cls, message: str, excess: int, allowance: float = math.inf) -> Overrun:
        overrun = super().__new__(cls, message)
        overrun.excess = excess
        overrun.allowance = allowance
        return overrun


def _small(problems: Sequence[str]) -> bool:
    return all(isinstance(problem, Overrun) and problem.excess <= SMALL_EXCESS for problem in problems)


def _stalled(problems: Sequence[str], stall: float) -> bool:
    """Every problem is a window over its limit, and the loop stalled for longer than its allowance."""
    return all(isinstance(problem, Overrun) and stall > problem.allowance for problem in problems)


class StallWatch:
    """The longest this event loop was behind while the block ran: from the moment a sleeper was
    due until the loop, late on every wake since, last woke it. A loop that is behind (a backend
    sharing it, a descheduled process) delays every request going out and every arrival an
    in-process backend records by as much: the gateway's permits can be on time while their
    arrivals bunch. While the watch runs, `window_problems` widens its windows' jitter allowance to
    the stall (up to `STALL_SHARE` of a window)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None
        self._token: contextvars.Token[StallWatch | None] | None = None

    async def __aenter__(self) -> StallWatch:
        self._task = asyncio.ensure_future(self._watch())
        self._token = _WATCH.set(self)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        assert self._token is not None
        _WATCH.reset(self._token)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        behind_since: float | None = None
        while True:
            due = loop.time() + _TICK
            await asyncio.sleep(_TICK)
            woke = loop.time()
            if woke - due <= _LATE:
                behind_since = None
                continue
            if behind_since is None:
                behind_since = due
            self.longest = max(self.longest, woke - behind_since)


_WATCH: contextvars.ContextVar[StallWatch | None] = contextvars.ContextVar("stall_watch", default=None)


def _allowance(period: float) -> float:
    """The jitter allowance of a window of `period`, widened to the stall measured meanwhile."""
    allowance = jitter_allowance(period)
    watch = _WATCH.get()
    if watch is None:
        return allowance
    return max(allowance, min(watch.longest, STALL_SHARE * period))


async def confirmed(clause_id: str, scenario: Scenario) -> None:
    """Run `scenario` at the usual windows; if the limits did not hold, run it again on windows
    `CONFIRM_SCALE` times longer, and fail only if they do not hold there either, unless the longer
    check still leaves doubt:

    - windows over their limits by at most `SMALL_EXCESS` calls are checked on windows `LAST_SCALE`
      times longer;
    - windows over their limits while the event loop stalled for longer than their jitter allowance
      could be widened to are checked on windows `LAST_SCALE`, then `STALLED_SCALE` times longer.

    A correct limiter whose calls were bunched by a stalled event loop (a busy machine) keeps windows
    twice as long: stalls do not grow with the window. On a loaded machine (a backend sharing the
    loop, coverage tracing, other processes on two cores) the loop can still be behind for longer
    than a longer window's allowance, and then calls granted in two windows reach the backend in
    one; so each longer run measures how long the loop was behind, widens the allowance to it (up to
    `STALL_SHARE` of a window), and goes on to longer windows when the stall outgrew that. A defect
    (no limiter, a leaky bucket, a limiter forgotten on reconnect, a retry without a permit) breaks
    the longest windows as surely as the short ones; on an idle loop it is reported after the
    second run.
    """
    __tracebackhide__ = True
    first = await scenario(1.0)
    if not first:
        return
    scales: list[float] = []
    problems: list[str] = first
    stall = 0.0
    for scale in (CONFIRM_SCALE, LAST_SCALE, STALLED_SCALE):
        if scales and not _doubtful(scales[-1], problems, stall):
            break
        async with StallWatch() as watch:
            problems = await scenario(scale)
        if not problems:
            return
        scales.append(scale)
        stall = watch.longest
    longer = " and ".join(", ".join(f"{scale:g}" for scale in scales).rsplit(", ", 1))
    violated(
        clause_id,
        f"{'; '.join(problems)} (confirmed on windows {longer} times longer; at the usual windows: "
        f"{first[0]})",
    )


def _doubtful(scale: float, problems: Sequence[str], stall: float) -> bool:
    """Whether `problems`, seen on windows `scale` times longer, are checked on longer ones still."""
    if scale == CONFIRM_SCALE and _small(problems):
        return True
    return _stalled(problems, stall)


def bound_for(calls: int, limit: RateLimit) -> float:
    """Seconds `calls` may take under `limit` before the suite calls it a hang: three times the
    ideal, plus five."""
    return 5.0 + 3.0 * math.ceil(calls / limit.max_calls) * limit.period


def scaled(limit: RateLimit, scale: float) -> RateLimit:
    """`limit` with its window `scale` times as long."""
    return RateLimit(limit.max_calls, limit.period * scale)


async def run_callers(clause_id: str, calls: Sequence[Call], bound: float) -> None:
    """Run every call at once, each its own caller; every one must succeed within `bound`."""
    __tracebackhide__ = True
    gathered = asyncio.gather(*(call() for call in calls), return_exceptions=True)
    results = await bounded(clause_id, gathered, bound, f"{len(calls)} concurrent calls")
    all_succeeded(clause_id, results)


def all_succeeded(clause_id: str, results: Sequence[object]) -> None:
    __tracebackhide__ = True
    failures = [result for result in results if isinstance(result, BaseException)]
    expect(
        not failures,
        clause_id,
        f"{len(failures)} of {len(results)} calls failed against a healthy backend; first: {failures[:1]!r}",
    )


def window_problems(
    requests: Sequence[BackendRequest], limits: Sequence[RateLimit], what: str = ""
) -> list[str]:
    """What is wrong with `requests` under `limits`: one message per window that holds too many."""
    problems: list[str] = []
    for limit in limits:
        allowance = _allowance(limit.period)
        window = busiest_window(requests, limit.period, allowance)
        if window.count > limit.max_calls:
            message = over_limit_message(window, limit, what)
            problems.append(Overrun(message, window.count - limit.max_calls, allowance))
    return problems


def check_windows(
    clause_id: str, requests: Sequence[BackendRequest], limits: Sequence[RateLimit], what: str = ""
) -> None:
    """No window of any of `limits` holds more arrivals than it allows."""
    __tracebackhide__ = True
    for problem in window_problems(requests, limits, what):
        violated(clause_id, problem)


def arrivals(  # noqa: RET503 - violated() does not return
    clause_id: str, harness: ConformanceHarness, made: int, category: str | None = None
) -> list[BackendRequest]:
    """The backend's record of the calls just made; every call must have reached it."""
    __tracebackhide__ = True
    everything = list(harness.backend_requests())
    requests = [r for r in everything if category is None or r.category == category]
    if len(requests) >= made:
        return requests
    if category is not None and len(everything) >= made:
        elsewhere = Counter(f"{r.method} as {r.category!r}" for r in everything if r.category != category)
        violated(
            clause_id,
            f"the backend recorded {len(requests)} {category} requests for {made} {category} calls made; "
            f"it filed the others under another category: {', '.join(sorted(elsewhere))} (the gateway "
            "sends them in the wrong category, or the harness records the wrong one)",
        )
    violated(
        clause_id,
        f"the backend recorded {len(requests)} {category or ''} requests for {made} calls made; every call "
        "must reach the backend (no caching or coalescing) for its limiter to be seen at work",
    )
