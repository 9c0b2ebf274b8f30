"""BrokerConnectionManager with real (in-memory) gateways whose backends go down and come back."""

from __future__ import annotations

import asyncio

import pytest

from broker_plugins import (
    Backoff,
    BrokerConnectionManager,
    BrokerTimeoutError,
    ConnectionState,
    InvalidRequestError,
    StateChange,
)
from tests.support.memory_gateway import MemoryGateway

FAST = {
    "health_check_interval": 0.02,
    "health_check_timeout": 0.1,
    "backoff": Backoff(initial=0.01, maximum=0.05),
}


async def test_start_connects_every_gateway_and_stop_closes_them_and_their_tasks() -> None:
    before = asyncio.all_tasks()
    manager = BrokerConnectionManager(**FAST)
    manager.add("kiwoom", MemoryGateway(name="kiwoom"))
    manager.add("kis", MemoryGateway(name="kis"))
    async with manager:
        await manager.wait_connected(timeout=2)
        await asyncio.sleep(0.05)  # at least one health check each
        statuses = manager.statuses()
        assert [s.name for s in statuses] == ["kis", "kiwoom"]
        assert all(s.state is ConnectionState.CONNECTED for s in statuses)
        assert all(s.last_success is not None and s.latency == 0.0 and s.attempts == 0 for s in statuses)
        assert sorted(manager) == ["kis", "kiwoom"]
        assert len(manager) == 2
    assert manager["kis"].state is ConnectionState.CLOSED
    assert asyncio.all_tasks() == before


async def test_a_gateway_that_cannot_connect_is_retried_until_its_backend_returns() -> None:
    gateway = MemoryGateway(name="late")
    gateway.backend_up = False
    seen: list[tuple[str, ConnectionState]] = []
    manager = BrokerConnectionManager(**FAST)
    manager.add_listener(lambda name, change: seen.append((name, change.current)))
    manager.add("late", gateway)
    async with manager:
        await asyncio.sleep(0.2)
        status = manager.status("late")
        assert status.state is ConnectionState.DISCONNECTED
        assert status.attempts >= 2
        assert status.last_error is not None
        assert "backend is down" in status.last_error
        gateway.backend_up = True
        await manager.wait_connected(timeout=2)
    assert ("late", ConnectionState.CONNECTED) in seen
    assert seen[-1] == ("late", ConnectionState.CLOSED)


async def test_a_dropped_connection_is_connected_again_without_the_host() -> None:
    gateway = MemoryGateway(name="flaky")
    changes: list[StateChange] = []
    async with BrokerConnectionManager(**FAST) as manager:
        manager.add("flaky", gateway)  # added while running: started at once
        await manager.wait_connected(timeout=2)
        manager.add_listener(lambda name, change: changes.append(change))
        gateway.drop()
        await manager.wait_connected(timeout=2)
    assert [c.current for c in changes[:3]] == [
        ConnectionState.DISCONNECTED,
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
    ]
    assert changes[0].reason is not None


async def test_unhealthy_and_hanging_health_checks_count_as_failures() -> None:
    gateway = MemoryGateway(name="silent")
    async with BrokerConnectionManager(**FAST) as manager:
        manager.add("silent", gateway)
        await manager.wait_connected(timeout=2)
        gateway.backend_up = False
        await asyncio.sleep(0.15)
        assert manager.status("silent").attempts >= 1
        assert manager.status("silent").last_error == "backend is down"
        gateway.backend_up = True
        gateway.health_hangs = True
        await asyncio.sleep(0.35)
        assert "timed out" in (manager.status("silent").last_error or "")
        gateway.health_hangs = False
        await asyncio.sleep(0.2)
        assert manager.status("silent").attempts == 0


async def test_remove_disconnects_and_a_faulty_listener_is_isolated() -> None:
    manager = BrokerConnectionManager(**FAST)
    calls: list[str] = []

    def broken(name: str, change: StateChange) -> None:
        raise RuntimeError("host bug")

    manager.add_listener(broken)
    remove = manager.add_listener(lambda name, change: calls.append(name))
    manager.add("one", MemoryGateway())
    async with manager:
        await manager.wait_connected(timeout=2)
        gateway = await manager.remove("one")
        assert gateway.state is ConnectionState.CLOSED
        assert len(manager) == 0
    remove()
    assert calls
    assert calls[0] == "one"


async def test_wait_connected_names_what_did_not_connect() -> None:
    down = MemoryGateway(name="down")
    down.backend_up = False
    async with BrokerConnectionManager(**FAST) as manager:
        manager.add("down", down)
        with pytest.raises(BrokerTimeoutError, match=r"not connected within 0\.1 s: down"):
            await manager.wait_connected(timeout=0.1)


def test_misuse_is_reported_clearly() -> None:
    manager = BrokerConnectionManager()
    manager.add("one", MemoryGateway())
    with pytest.raises(InvalidRequestError, match="already managed"):
        manager.add("one", MemoryGateway())
    with pytest.raises(InvalidRequestError, match="non-empty string"):
        manager.add("", MemoryGateway())
    with pytest.raises(InvalidRequestError, match="is not an IBrokerGateway"):
        manager.add("two", object())  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="no connection named 'three'; managed: one"):
        manager.status("three")
    with pytest.raises(InvalidRequestError, match="health_check_interval must be a positive number"):
        BrokerConnectionManager(health_check_interval=0)
