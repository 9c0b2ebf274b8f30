"""Per-account call budgets over several sliding windows at once (say 20 per second and 1000 per hour),
shared fairly among the clients (connections) that use one account.

Exact sliding windows counted by arrival: a call is admitted when, in every window, fewer than
`max_calls` admitted calls arrived during the last `period` seconds; the admitted arrival is then
counted in every window. A refused call is not counted, so a client that backs off for the
advertised time gets through when nobody else took the room meanwhile.

Fair shares. First come, first served starves clients: a client whose own limiter releases a call
the moment its oldest call leaves the window takes every freed slot, and a second process sharing
the account gets nothing (measured: 78 of 78 replies to one of two processes). So each window
remembers which clients it refused during the last two periods (they *want* more: a client that
paces itself comes back up to a period after a refusal), and divides `max_calls` into equal shares
among the clients using it. While a client that wants more holds less than its share, a client
holding its share or more is refused, and the room goes to the other when it calls again. With no
such client the budget is first come, first served, so a lone client gets all of it. The total
never exceeds `max_calls` in any window either way. The price: room held for a client that
stopped calling stays unused for at most two periods.

The advice (`admit`'s return value) is when the call would be admitted if nobody called
meanwhile: when the oldest arrival leaves a full window, and, for a client at or over its share
while another wants more (or may, by then, hold less than its share), when enough of its own
arrivals have left. That is always enough: with time alone, a client's own count only shrinks,
shares only grow, and nobody starts wanting more.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence

import attrs

__all__ = ["DEFAULT_BUDGET", "CallBudget", "Window"]

_MAX_WANTING = 10_000  # refused clients remembered per window; the oldest are forgotten first
# How long a refused client is taken to want more, in periods: one that paces itself comes back up
# to a period (plus its own margin) after a refusal, and must find its claim still there.
_WANTING_PERIODS = 2


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
    """One window of one account: admitted arrivals, overall and by client, and who wants more."""

    __slots__ = ("arrivals", "by_client", "wanting", "window")

    def __init__(self, window: Window) -> None:
        self.window = window
        self.arrivals: deque[tuple[float, str]] = deque()
        self.by_client: dict[str, deque[float]] = {}
        self.wanting: dict[str, float] = {}  # client -> when the window last refused it, oldest first

    @property
    def patience(self) -> float:
        """How long a refused client is taken to want more."""
        return _WANTING_PERIODS * self.window.period

    def expire(self, now: float) -> None:
        horizon = now - self.window.period
        arrivals = self.arrivals
        while arrivals and arrivals[0][0] <= horizon:
            _, client = arrivals.popleft()
            own = self.by_client[client]
            own.popleft()
            if not own:
                del self.by_client[client]
        for client, refused_at in list(self.wanting.items()):
            if refused_at > now - self.patience:
                break  # ordered by time: the rest are newer
            del self.wanting[client]

    def share(self, client: str) -> float:
        """`max_calls` divided among the clients using the window, `client` included."""
        users = set(self.by_client) | set(self.wanting)
        users.add(client)
        return self.window.max_calls / len(users)

    def wait(self, client: str, now: float, later: float = 0.0) -> float:
        """Seconds until `client` may call in this window (0: now), if nobody calls meanwhile.

        With `later` > 0 the call is being put off that long anyway (for another window): the
        answer then also covers clients that want more and may hold less than their share by then.
        """
        period, max_calls = self.window.period, self.window.max_calls
        wait = self.arrivals[0][0] + period - now if len(self.arrivals) >= max_calls else 0.0
        share = self.share(client)
        own = self.by_client.get(client, ())
        if len(own) < share:
            return wait  # under its share, it only waits for room (and stays under its share)
        others = [other for other in self.wanting if other != client]
        starved = any(len(self.by_client.get(other, ())) < share for other in others)
        until = now + max(wait, later)
        if starved or (until > now and any(self.wanting[o] + self.patience > until for o in others)):
            keep = math.ceil(share) - 1  # calls it may hold to be under its share
            wait = max(wait, own[len(own) - keep - 1] + period - now)
        return wait

    def admit(self, client: str, now: float) -> None:
        self.arrivals.append((now, client))
        self.by_client.setdefault(client, deque()).append(now)

    def refuse(self, client: str, now: float) -> None:
        self.wanting.pop(client, None)  # re-inserted last: the dict stays ordered by time
        self.wanting[client] = now
        if len(self.wanting) > _MAX_WANTING:
            del self.wanting[next(iter(self.wanting))]


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
            # Put off by one window, the call must also be admissible in the others by then.
            settled = False
            while not settled:
                longest = max(state.wait(client, now, wait) for state in states)
                settled = longest <= wait
                wait = max(wait, longest)
            # Waiting in the windows that refused it only: a client refused by the per-second
            # window holds no claim on the per-hour one.
            for state, own_wait in zip(states, waits, strict=True):
                if own_wait > 0:
                    state.refuse(client, now)
            return wait
        for state in states:
            state.admit(client, now)
        return None
