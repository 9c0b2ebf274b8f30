"""Per-account call budgets over several sliding windows at once (say 20 per second and 1000 per hour),
shared fairly among the clients (connections) that use one account.

Exact sliding windows counted by arrival: a call is admitted when, in every window, fewer than
`max_calls` admitted calls arrived during the last `period` seconds; the admitted arrival is then
counted in every window. A refused call is not counted, so a client that backs off for the
advertised time gets through when nobody else took the room meanwhile.

Fair shares. First come, first served starves clients: a client whose own limiter releases a call
the moment its oldest call leaves the window takes every freed slot, and a second process sharing
the account gets nothing (measured: 78 of 78 replies to one of two processes). So within each
window, a client that the window refused while it held fewer than its share (`max_calls` divided
by the number of clients using the window) is *waiting*, until it holds its share or a period has
passed since; while one is, a client holding its share or more is refused too, and the room goes
to the waiting one when it calls again. Without waiting clients the whole budget is first come,
first served, so a lone client still gets all of it. The total never exceeds `max_calls` in any
window either way.

The advice (`admit`'s return value) is when the call would be admitted if nobody called
meanwhile: the oldest arrival leaving a full window, or, for a client over its share while
another waits, enough of its own arrivals leaving. It holds because the passing of time alone
only ends waiting (a client becomes waiting only when refused), shrinks the client's own count and
grows shares.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence

import attrs

__all__ = ["DEFAULT_BUDGET", "CallBudget", "Window"]

_MAX_WAITING = 10_000  # waiting clients remembered per window; the oldest are forgotten first


@attrs.frozen
class Window:
    """At most `max_calls` calls in any `period` seconds."""

    max_calls: int
    period: float

    def __attrs_post_init__(self) -> None:
        if self.max_calls < 1 or not self.period > 0:
            raise ValueError(f"a budget window needs max_calls >= 1 and period > 0, got {self}")

    def __str__(self) -> str:
        return f"{self.max_calls}/{self.period:g}s"


DEFAULT_BUDGET: tuple[Window, ...] = (Window(20, 1.0), Window(1000, 3600.0))


class _WindowState:
    """One window of one account: admitted arrivals, overall and by client, and waiting clients."""

    __slots__ = ("arrivals", "by_client", "waiting", "window")

    def __init__(self, window: Window) -> None:
        self.window = window
        self.arrivals: deque[tuple[float, str]] = deque()
        self.by_client: dict[str, deque[float]] = {}
        self.waiting: dict[str, float] = {}  # client -> when it was refused, oldest first

    def expire(self, now: float) -> None:
        horizon = now - self.window.period
        arrivals = self.arrivals
        while arrivals and arrivals[0][0] <= horizon:
            _, client = arrivals.popleft()
            own = self.by_client[client]
            own.popleft()
            if not own:
                del self.by_client[client]
        for client, refused_at in list(self.waiting.items()):
            if refused_at > horizon:
                break  # ordered by time: the rest are newer
            del self.waiting[client]

    def share(self, client: str) -> float:
        """`max_calls` divided among the clients using the window, `client` included."""
        users = set(self.by_client) | set(self.waiting)
        users.add(client)
        return self.window.max_calls / len(users)

    def wait(self, client: str, now: float) -> float:
        """Seconds until `client` may call in this window (0: now)."""
        period, max_calls = self.window.period, self.window.max_calls
        wait = 0.0
        if len(self.arrivals) >= max_calls:
            wait = self.arrivals[0][0] + period - now
        share = self.share(client)
        # A waiting client that holds its share now (shares shrink when a client joins) has been
        # served: it stops waiting for good, so that it cannot come back to waiting as its own
        # calls leave the window, which would make the advice given to others untrue.
        for other in [c for c in self.waiting if c != client and len(self.by_client.get(c, ())) >= share]:
            del self.waiting[other]
        own = self.by_client.get(client, ())
        if len(own) >= share and self._someone_waits(client):
            # Admitted again once its count is below its share: its oldest arrivals must leave.
            keep = math.ceil(share) - 1
            wait = max(wait, own[len(own) - keep - 1] + period - now)
        return wait

    def _someone_waits(self, client: str) -> bool:
        return any(other != client for other in self.waiting)

    def admit(self, client: str, now: float) -> None:
        self.arrivals.append((now, client))
        own = self.by_client.setdefault(client, deque())
        own.append(now)
        if len(own) >= self.share(client):
            self.waiting.pop(client, None)  # served its share: no longer ahead of anyone

    def refuse(self, client: str, now: float) -> None:
        self.waiting.pop(client, None)  # re-inserted last: the dict stays ordered by time
        if len(self.by_client.get(client, ())) < self.share(client):
            self.waiting[client] = now
            if len(self.waiting) > _MAX_WAITING:
                del self.waiting[next(iter(self.waiting))]


class CallBudget:
    """The budgets of every account; an empty window list admits everything."""

    def __init__(self, windows: Sequence[Window], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.windows = tuple(windows)
        self._clock = clock
        self._accounts: dict[str, list[_WindowState]] = {}

    def admit(self, account: str, client: str = "") -> float | None:
        """Count one call of `client` on `account` now; `None` if admitted, else seconds until one
        would be (if nothing else changed meanwhile)."""
        if not self.windows:
            return None
        now = self._clock()
        states = self._accounts.get(account)
        if states is None:
            states = self._accounts[account] = [_WindowState(window) for window in self.windows]
        waits = []
        for state in states:
            state.expire(now)
            waits.append(state.wait(client, now))
        wait = max(waits)
        if wait > 0:
            # Waiting in the windows that refused it only: a client refused by the per-second
            # window holds no claim on the per-hour one.
            for state, own_wait in zip(states, waits, strict=True):
                if own_wait > 0:
                    state.refuse(client, now)
            return wait
        for state in states:
            state.admit(client, now)
        return None
