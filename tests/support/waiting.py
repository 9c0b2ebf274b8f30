"""Waiting for a condition in tests, with a bound so that a broken promise fails instead of hanging."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from broker_plugins import ConnectionState, IBrokerGateway


def state_of(gateway: IBrokerGateway) -> ConnectionState:
    """The gateway's state now, read afresh (a checker would keep an earlier assert's narrowing)."""
    return gateway.state


async def until(condition: Callable[[], bool], within: float = 10.0) -> float:
    """Seconds until `condition` holds, polling every 10 ms; fails the test after `within`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, f"condition not met within {within} s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started
