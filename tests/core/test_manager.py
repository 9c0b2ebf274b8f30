"""BrokerConnectionManager with real (in-memory) gateways whose backends go down and come back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from memory_broker import MemoryBackend, MemoryBrokerGateway, MemoryLink

from broker_plugins import (
    Backoff,
    BrokerConnectionManager,
    BrokerTimeoutError,
    ConnectionState,
    HealthStatus,
    InvalidRequestError,
    RateLimit,
    StateChange,
)
from tests.support.waiting import until

FAST: dict[str, Any] = {
    "check_interval": 0.02,
    "check_timeout": 0.1,
    "backoff": Backoff(initial=0.01, maximum=0.05),
}


def memory(link: MemoryLink | None = None, **options: object) -> MemoryBrokerGateway:
    """A memory gateway that probes its link rarely: the manager's own health checks are under test."""
    return MemoryBrokerGateway(link=link, health_interval=3600.0, backoff=Backoff(0.01, 0.05), **options)  # type: ignore[arg-type]


class GivingUpGateway(MemoryBrokerGateway):
    """Does not reconnect by itself: at the first loss it ends DISCONNECTED, behind the host's back."""

    async def _supervise(self) -> None:
        reason = await self._watch()
        self._set_state(ConnectionState.DISCONNECTED, reason)


async def test_start_connects_every_gateway_and_stop_closes_them_and_their_tasks() -> None:
    before = asyncio.all_tasks()
    manager = BrokerConnectionManager(**FAST)
    manager.add("kiwoom", memory())
    manager.add("kis", memory())
    async with manager:
        await manager.wait_connected(timeout=2)
        await until(lambda: all(s.latency is not None for s in manager.statuses()))  # a health check each
        statuses = manager.statuses()
        assert [s.name for s in statuses] == ["kis", "kiwoom"]
        assert all(s.state is ConnectionState.CONNECTED for s in statuses)
        assert all(s.last_success is not None and s.attempts == 0 for s in statuses)
        assert sorted(manager) == ["kis", "kiwoom"]
        assert len(manager) == 2
    assert manager["kis"].state is ConnectionState.CLOSED
    assert asyncio.all_tasks() == before


async def test_a_gateway_that_cannot_connect_is_retried_until_its_backend_returns() -> None:
    link = MemoryLink(MemoryBackend())
    link.cut()
    seen: list[tuple[str, ConnectionState]] = []
    manager = BrokerConnectionManager(**FAST)
    manager.add_listener(lambda name, change: seen.append((name, change.current)))
    manager.add("late", memory(link))
    async with manager:
        await until(lambda: manager.status("late").attempts >= 2)
        status = manager.status("late")
        assert status.state is ConnectionState.DISCONNECTED
        assert status.last_error is not None
        assert "cannot reach the backend: connection refused" in status.last_error
        link.restore()
        await manager.wait_connected(timeout=2)
    assert ("late", ConnectionState.CONNECTED) in seen
    assert seen[-1] == ("late", ConnectionState.CLOSED)


async def test_a_dropped_connection_is_connected_again_without_the_host() -> None:
    link = MemoryLink(MemoryBackend())
    gateway = GivingUpGateway(link=link, health_interval=0.02, backoff=Backoff(0.01, 0.05))
    changes: list[StateChange] = []
    async with BrokerConnectionManager(**FAST) as manager:
        manager.add("flaky", gateway)  # added while running: started at once
        await manager.wait_connected(timeout=2)
        manager.add_listener(lambda name, change: changes.append(change))
        link.cut()
        await until(lambda: bool(changes))
        link.restore()
        await manager.wait_connected(timeout=2)
    states = [c.current for c in changes]
    # Given up, then connected again by the manager (after failed attempts while the link was cut).
    assert states[0] is ConnectionState.DISCONNECTED
    assert states[-3:] == [ConnectionState.CONNECTING, ConnectionState.CONNECTED, ConnectionState.CLOSED]
    assert changes[0].reason is not None


async def test_unhealthy_and_hanging_health_checks_count_as_failures() -> None:
    link = MemoryLink(MemoryBackend())
    # Probes that never give up by themselves: the manager's timeout decides.
    gateway = memory(link, health_timeout=3600.0)
    async with BrokerConnectionManager(**FAST) as manager:
        manager.add("silent", gateway)
        await manager.wait_connected(timeout=2)
        link.blackhole()
        await until(lambda: manager.status("silent").attempts >= 1)
        assert "health check timed out" in (manager.status("silent").last_error or "")
        link.restore()
        await until(lambda: manager.status("silent").attempts == 0)


async def test_remove_disconnects_and_a_faulty_listener_is_isolated() -> None:
    manager = BrokerConnectionManager(**FAST)
    calls: list[str] = []

    def broken(name: str, change: StateChange) -> None:
        raise RuntimeError("host bug")

    manager.add_listener(broken)
    remove = manager.add_listener(lambda name, change: calls.append(name))
    manager.add("one", memory())
    async with manager:
        await manager.wait_connected(timeout=2)
        gateway = await manager.remove("one")
        assert gateway.state is ConnectionState.CLOSED
        assert len(manager) == 0
    remove()
    assert calls
    assert calls[0] == "one"


async def test_wait_connected_names_what_did_not_connect() -> None:
    link = MemoryLink(MemoryBackend())
    link.cut()
    async with BrokerConnectionManager(**FAST) as manager:
        manager.add("down", memory(link))
        with pytest.raises(BrokerTimeoutError, match=r"not connected within 0\.1 s: down"):
            await manager.wait_connected(timeout=0.1)


def test_misuse_is_reported_clearly() -> None:
    manager = BrokerConnectionManager()
    manager.add("one", memory())
    with pytest.raises(InvalidRequestError, match="already managed"):
        manager.add("one", memory())
    with pytest.raises(InvalidRequestError, match="non-empty string"):
        manager.add("", memory())
    with pytest.raises(InvalidRequestError, match="is not an IBrokerGateway"):
        manager.add("two", object())  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="no connection named 'three'; managed: one"):
        manager.status("three")
    with pytest.raises(InvalidRequestError, match="check_interval must be a positive number"):
        BrokerConnectionManager(check_interval=0)


async def test_a_removed_connection_no_longer_reports_to_the_listeners() -> None:
    link = MemoryLink(MemoryBackend())
    gateway = memory(link)
    seen: list[str] = []
    async with BrokerConnectionManager(**FAST) as manager:
        manager.add("one", gateway)
        manager.add_listener(lambda name, change: seen.append(name))
        await manager.wait_connected(timeout=2)
        await manager.remove("one")
        seen.clear()
        await gateway.connect()  # used on its own now: the manager hears nothing of it
        await gateway.disconnect()
    assert seen == []


class _Flawed(MemoryBrokerGateway):
    """Its health check has a bug the first two times: not a BrokerError."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.bugs = 2

    async def health_check(self) -> HealthStatus:
        if self.bugs:
            self.bugs -= 1
            raise KeyError("oops")
        return await super().health_check()


async def test_a_bug_in_a_health_check_is_a_counted_failure_and_the_keeper_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = _Flawed(health_interval=3600.0)
    async with BrokerConnectionManager(**FAST) as manager:
        manager.add("flawed", gateway)
        await until(lambda: manager.status("flawed").attempts >= 1)
        assert "health_check failed with KeyError: 'oops' (a bug in the gateway)" in (
            manager.status("flawed").last_error or ""
        )
        await until(lambda: gateway.bugs == 0 and manager.status("flawed").attempts == 0)
    assert "a bug in its gateway" in caplog.text


def test_one_account_has_one_limiter_whoever_asks() -> None:
    manager = BrokerConnectionManager()
    first = manager.limiter("account-1", RateLimit(10, 1.0))
    assert manager.limiter("account-1", RateLimit(10, 1.0)) is first
    assert manager.limiter("account-2", RateLimit(10, 1.0)) is not first
    with pytest.raises(InvalidRequestError, match="already has a limiter with other limits"):
        manager.limiter("account-1", RateLimit(5, 1.0))
    with pytest.raises(InvalidRequestError, match="account must be a non-empty string"):
        manager.limiter("", RateLimit(5, 1.0))


async def test_a_status_shows_the_gateways_rate_budget() -> None:
    async with BrokerConnectionManager(**FAST) as manager:
        gateway = memory(rate_limits=RateLimit(5, 1.0))
        manager.add("budgeted", gateway)
        await manager.wait_connected(timeout=2)
        await gateway.get_quote("ACME")
        budget = manager.status("budgeted").budget
        assert budget is not None
        assert budget.category("market_data").permits_granted == 1
        assert budget.category("market_data").limits == (RateLimit(5, 1.0),)
