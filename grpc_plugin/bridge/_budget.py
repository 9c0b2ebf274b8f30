"""Per-account call budgets over several sliding windows at once (say 20 per second and 1000 per hour).

Exact sliding windows counted by arrival: a call is admitted when, in every window, fewer than
`max_calls` admitted calls arrived during the last `period` seconds; the admitted arrival is then
counted in every window. A refused call is not counted, so a client that backs off for the
advertised time always gets through. Each window keeps at most `max_calls` timestamps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

import attrs

__all__ = ["DEFAULT_BUDGET", "CallBudget", "Window"]


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


class CallBudget:
    """The budgets of every account; an empty window list admits everything."""

    def __init__(self, windows: Sequence[Window], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.windows = tuple(windows)
        self._clock = clock
        self._arrivals: dict[str, list[deque[float]]] = {}

    def admit(self, account: str) -> float | None:
        """Count one call of `account` now; `None` if admitted, else seconds until one would be."""
        if not self.windows:
            return None
        now = self._clock()
        arrivals = self._arrivals.get(account)
        if arrivals is None:
            arrivals = self._arrivals[account] = [deque() for _ in self.windows]
        wait = 0.0
        for window, times in zip(self.windows, arrivals, strict=True):
            horizon = now - window.period
            while times and times[0] <= horizon:
                times.popleft()
            if len(times) >= window.max_calls:
                wait = max(wait, times[0] - horizon)
        if wait > 0:
            return wait
        for times in arrivals:
            times.append(now)
        return None
