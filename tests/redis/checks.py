"""What the shared-budget tests check, over (who, when) pairs: the budget held, and shared fairly."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from broker_plugins import RateLimit
from tests.support.windows import most_in_any_window


def check_budget_at_bridge(seen: Sequence[tuple[str, float]], limit: RateLimit) -> None:
    allowance = 0.010 + 0.1 * limit.period
    most = most_in_any_window([at for _, at in seen], limit.period, allowance)
    assert most <= limit.max_calls, (
        f"{most} calls reached the bridge within {limit.period - allowance:.3f} s, limit {limit.max_calls}"
    )


def check_fair_shares(
    seen: Sequence[tuple[str, float]], processes: int, period: float, until: float = math.inf
) -> None:
    """Each process's share of the calls made while all of them saturated the budget.

    That is from one period after the last process got its first call through (until then the
    first ones to start had the budget to themselves) to `until`, when they were told to stop.
    """
    firsts: dict[str, float] = {}
    for account, at in seen:
        firsts.setdefault(account, at)
    assert len(firsts) == processes, f"only {sorted(firsts)} got any calls through"
    since = max(firsts.values()) + period
    counts = Counter(account for account, at in seen if since <= at < until)
    total = sum(counts.values())
    shares = {account: counts[account] / total for account in sorted(firsts)}
    low, high = 0.8 / processes, 1.2 / processes  # 20% to 30% of the budget for four
    assert all(low <= share <= high for share in shares.values()), f"shares {shares} of {total} calls"
