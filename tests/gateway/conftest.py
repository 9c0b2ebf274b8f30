"""Fixtures of the gateway tests: real bridges (in-process and subprocess) and gateways to them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from broker_plugins import Backoff, RateLimit
from grpc_plugin import GrpcBrokerGateway
from tests.bridge.conftest import bridge_processes, pki, start_bridge  # noqa: F401 - shared fixtures

FAST: dict[str, Any] = {
    "health_check_interval": 0.2,
    "health_check_timeout": 0.5,
    "unavailable_timeout": 1.0,
    "reconnect_backoff": Backoff(initial=0.05, maximum=0.3),
    "rate_limits": RateLimit(100_000, 1.0),
    "timeouts": 5.0,
}
"""Settings that keep reconnect tests short; limits that never bind unless a test sets its own."""

MakeGateway = Callable[..., GrpcBrokerGateway]


@pytest.fixture
async def gateways() -> AsyncIterator[MakeGateway]:
    """Build gateways (FAST settings, overridable); every one is disconnected afterwards."""
    made: list[GrpcBrokerGateway] = []

    def make(target: str, **options: Any) -> GrpcBrokerGateway:
        gateway = GrpcBrokerGateway(target=target, **{**FAST, **options})
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.disconnect()


@pytest.fixture(autouse=True)
async def no_task_leaks() -> AsyncIterator[None]:
    """Fail a test that leaves a task running after its gateways were disconnected."""
    before = asyncio.all_tasks()
    yield

    def leaked() -> list[asyncio.Task[object]]:
        return [task for task in asyncio.all_tasks() - before if task is not asyncio.current_task()]

    # Tasks that were cancelled (a bridge's handlers of calls the gateway gave up) need some loop
    # turns to finish; one still running after two seconds is a leak.
    deadline = time.monotonic() + 2.0
    while leaked() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert not leaked(), f"tasks left running: {leaked()}"
