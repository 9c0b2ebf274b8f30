"""Outages for the reconnect clauses: breaking the link for a block, and waiting for recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broker_plugins import ConnectionState, IBrokerGateway, StateChange
from conformance_tests._backdoor import on_harness
from conformance_tests._harness import BreakMode, ConformanceHarness
from conformance_tests._support import eventually, expect, outcome_of

__all__ = [
    "FAIL_FAST",
    "NOTICE",
    "RECOVERY",
    "broken",
    "check_chain",
    "gave_up",
    "recovered",
    "run_into_outage",
]

FAIL_FAST = 2.0
"""Seconds within which a call fails while the backend is unreachable: a gateway's own bound for
noticing (1 s by default) plus the wait for a permit."""
RECOVERY = 5.0
"""Seconds after the link is restored within which calls succeed again, with no action by the user."""
NOTICE = 3.0
"""Seconds the suite waits for a gateway to notice an outage before going on regardless."""
GAVE_UP = 1.0
"""Seconds after the restore after which a gateway still DISCONNECTED or CLOSED is taken to have given
up: one reconnecting by itself says RECONNECTING."""
_IDLE = frozenset({ConnectionState.DISCONNECTED, ConnectionState.CLOSED})


def gave_up(gateway: IBrokerGateway, restored: float) -> bool:
    """Whether the gateway has stopped trying: not reconnecting, `GAVE_UP` seconds after the restore."""
    return gateway.state in _IDLE and time.monotonic() - restored >= GAVE_UP


@asynccontextmanager
async def broken(harness: ConformanceHarness, mode: BreakMode = BreakMode.CUT) -> AsyncIterator[None]:
    """The link broken in `mode` for the block, and restored however the block ends."""
    await on_harness(harness.break_connection(mode))
    try:
        yield
    finally:
        await on_harness(harness.restore_connection())


async def run_into_outage(*gateways: IBrokerGateway, symbol: str) -> None:
    """Make a call into an outage on each gateway, as an application would, and return once every
    one has noticed (its state left CONNECTED), or after `FAIL_FAST + NOTICE` seconds regardless.

    How the call ends is RC-1's business; here it only lets a gateway that learns of failures from
    its calls learn of this one. A call still running when its gateway has noticed is cancelled.
    """
    calls = [asyncio.ensure_future(gateway.get_quote(symbol)) for gateway in gateways]
    try:
        # Polled: the suite cannot rely on a gateway's listeners to tell it, that is what LC-3 checks.
        await eventually(
            lambda: all(gateway.state is not ConnectionState.CONNECTED for gateway in gateways),
            FAIL_FAST + NOTICE,
        )
    finally:
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)


async def recovered(
    gateway: IBrokerGateway, symbol: str, seconds: float
) -> tuple[bool, BaseException | None]:
    """Whether a get_quote succeeds within `seconds`, trying every 50 ms, unless the gateway gives up
    first; and the last error seen."""
    restored = time.monotonic()
    deadline = restored + seconds
    last: BaseException | None = None
    while (remaining := deadline - time.monotonic()) > 0 and not gave_up(gateway, restored):
        outcome = await outcome_of(gateway.get_quote(symbol), remaining)
        if outcome.finished and outcome.error is None:
            return True, None
        last = outcome.error
        await asyncio.sleep(0.05)
    return False, last


def check_chain(clause_id: str, initial: ConnectionState, changes: list[StateChange]) -> None:
    """Each change starts where the one before it ended, and they come in time order."""
    __tracebackhide__ = True
    previous = initial
    for change in changes:
        expect(
            change.previous is previous and change.current is not previous,
            clause_id,
            f"a change reported {change.previous} -> {change.current} after the state was {previous}",
        )
        previous = change.current
    times = [change.time for change in changes]
    expect(times == sorted(times), clause_id, "state changes were reported out of time order")
