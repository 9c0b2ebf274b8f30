"""`BrokerConnectionManager`: many named gateways, each health-checked and kept connected."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from types import TracebackType

import attrs

from broker_plugins._aio import wait_for
from broker_plugins._backoff import Backoff
from broker_plugins._enums import ConnectionState
from broker_plugins._errors import BrokerError, BrokerTimeoutError, InvalidRequestError
from broker_plugins._gateway import IBrokerGateway, StateChange
from broker_plugins._limiter import Limiter, LimiterStats, ObservableLimiter
from broker_plugins._ratelimit import CATEGORIES, RateLimiter, RateLimitsSpec
from broker_plugins._staleness import StaleStream

__all__ = ["BrokerConnectionManager", "ConnectionStatus"]

_log = logging.getLogger("broker_plugins")

ConnectionListener = Callable[[str, StateChange], object]
"""Called with the connection's name and the change, synchronously and in order."""


@attrs.frozen(kw_only=True)
class ConnectionStatus:
    """A snapshot of one managed connection."""

    name: str
    state: ConnectionState
    since: datetime
    last_success: datetime | None
    last_error: str | None
    attempts: int
    """Failed connect attempts or health checks in a row; 0 while healthy."""
    latency: float | None
    """Round trip of the last successful health check, in seconds."""
    budget: LimiterStats | None = None
    """The rate budget of the gateway's limiter (permits, waits, waiters, the broker's last refusal),
    when the gateway exposes an observable one as `rate_limiter` (every `GatewayBase` does)."""
    stale_stream: StaleStream | None = None
    """The gateway's latest stream found mute while its market was open (`last_stale_stream`)."""


@attrs.define
class _Entry:
    gateway: IBrokerGateway
    since: datetime = attrs.field(factory=lambda: datetime.now(timezone.utc))
    last_success: datetime | None = None
    last_error: str | None = None
    attempts: int = 0
    latency: float | None = None
    task: asyncio.Task[None] | None = None
    unsubscribe: Callable[[], None] | None = None


class BrokerConnectionManager:
    """Keeps named gateways connected: connects them, health-checks each every `check_interval`
    seconds, and reconnects one that fails with `backoff` (exponential, jittered, capped).

    Gateways that reconnect by themselves are left to it while they say `RECONNECTING`; one that
    ends up `DISCONNECTED` or `CLOSED` behind the host's back is connected again by the manager.
    `start()` and `stop()` own every task the manager creates; `stop()` disconnects every gateway.
    """

    def __init__(
        self,
        *,
        check_interval: float = 5.0,
        check_timeout: float = 2.0,
        backoff: Backoff | None = None,
    ) -> None:
        for name, value in (("check_interval", check_interval), ("check_timeout", check_timeout)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise InvalidRequestError(f"{name} must be a positive number of seconds, got {value!r}")
        self._interval = float(check_interval)
        self._timeout = float(check_timeout)
        self._backoff = backoff or Backoff(initial=0.2, maximum=10.0)
        self._entries: dict[str, _Entry] = {}
        self._listeners: list[ConnectionListener] = []
        self._limiters: dict[str, RateLimiter] = {}
        self._running = False

    def limiter(self, account: str, limits: RateLimitsSpec) -> Limiter:
        """The one limiter of `account`: give it (`rate_limiter=`) to every gateway of that account.

        The first call creates it with `limits`; later calls return the same limiter, and refuse
        other limits rather than silently keeping the first ones.
        """
        if not isinstance(account, str) or not account:
            raise InvalidRequestError(f"account must be a non-empty string, got {account!r}")
        existing = self._limiters.get(account)
        if existing is None:
            existing = self._limiters[account] = RateLimiter(limits)
        elif any(existing.limits_for(c) != RateLimiter(limits).limits_for(c) for c in CATEGORIES):
            raise InvalidRequestError(
                f"account {account!r} already has a limiter with other limits: {existing}"
            )
        return existing

    def add(self, name: str, gateway: IBrokerGateway) -> None:
        """Manage `gateway` as `name`; started at once when the manager is running."""
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(f"connection name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise InvalidRequestError(f"a connection named {name!r} is already managed")
        if not isinstance(gateway, IBrokerGateway):
            raise InvalidRequestError(f"{type(gateway).__name__} is not an IBrokerGateway")
        entry = self._entries[name] = _Entry(gateway)
        entry.unsubscribe = gateway.add_state_listener(lambda change: self._on_change(name, entry, change))
        if self._running:
            self._start(name, entry)

    async def remove(self, name: str) -> IBrokerGateway:
        """Stop managing `name` and disconnect it; returns the gateway."""
        entry = self._entry(name)
        if entry.unsubscribe is not None:
            entry.unsubscribe()  # its changes are no longer this manager's to report
        await self._stop(entry)
        del self._entries[name]
        return entry.gateway

    def __getitem__(self, name: str) -> IBrokerGateway:
        return self._entry(name).gateway

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def status(self, name: str) -> ConnectionStatus:
        """A snapshot of connection `name`."""
        entry = self._entry(name)
        return ConnectionStatus(
            name=name,
            state=entry.gateway.state,
            since=entry.since,
            last_success=entry.last_success,
            last_error=entry.last_error,
            attempts=entry.attempts,
            latency=entry.latency,
            budget=_budget(entry.gateway),
            stale_stream=_stale(entry.gateway),
        )

    def statuses(self) -> list[ConnectionStatus]:
        """Snapshots of every connection, by name."""
        return [self.status(name) for name in sorted(self._entries)]

    def add_listener(self, listener: ConnectionListener) -> Callable[[], None]:
        """Call `listener(name, change)` on every state change of every connection."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def start(self) -> None:
        """Start keeping every connection up; returns at once (connecting goes on in the background)."""
        if self._running:
            return
        self._running = True
        for name, entry in self._entries.items():
            self._start(name, entry)

    async def stop(self) -> None:
        """Cancel every task the manager runs and disconnect every gateway."""
        self._running = False
        await asyncio.gather(*(self._stop(entry) for entry in self._entries.values()))

    async def wait_connected(self, timeout: float) -> None:
        """Wait until every connection is `CONNECTED`; `BrokerTimeoutError` naming the others if not."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = [
                name
                for name, entry in self._entries.items()
                if entry.gateway.state is not ConnectionState.CONNECTED
            ]
            if not waiting:
                return
            if time.monotonic() >= deadline:
                raise BrokerTimeoutError(f"not connected within {timeout:g} s: {', '.join(sorted(waiting))}")
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> BrokerConnectionManager:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise InvalidRequestError(
                f"no connection named {name!r}; managed: {', '.join(sorted(self._entries))}"
            ) from None

    def _start(self, name: str, entry: _Entry) -> None:
        entry.task = asyncio.create_task(self._keep(name, entry), name=f"broker-connection {name}")

    async def _stop(self, entry: _Entry) -> None:
        task, entry.task = entry.task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            await entry.gateway.disconnect()
        except BrokerError as error:
            _log.warning("disconnecting %r failed: %s", entry.gateway, error)

    def _on_change(self, name: str, entry: _Entry, change: StateChange) -> None:
        entry.since = change.time
        if change.reason is not None:
            entry.last_error = str(change.reason)
        if change.current is ConnectionState.CONNECTED:
            entry.attempts = 0  # the gateway healed itself: no failure in a row any more
        for listener in tuple(self._listeners):
            try:
                listener(name, change)
            except Exception:  # noqa: BLE001 - a host's callback must not stop the manager
                _log.exception("connection listener %r failed on %s", listener, name)

    async def _keep(self, name: str, entry: _Entry) -> None:
        """Connect, then health-check forever; back off after each failure in a row."""
        gateway = entry.gateway
        while True:
            if gateway.state in (ConnectionState.DISCONNECTED, ConnectionState.CLOSED):
                healthy = await self._connect(name, entry)
            else:
                healthy = await self._check(name, entry)
            if healthy:
                entry.attempts = 0
                await asyncio.sleep(self._interval)
            else:
                entry.attempts += 1
                await asyncio.sleep(self._backoff.delay(entry.attempts - 1))

    async def _connect(self, name: str, entry: _Entry) -> bool:
        try:
            await wait_for(entry.gateway.connect(), self._timeout + self._interval)
        except (BrokerError, asyncio.TimeoutError) as error:
            entry.last_error = str(error) or f"connect timed out after {self._timeout + self._interval:g} s"
            _log.info("connection %s: connect failed (%s); retrying", name, entry.last_error)
            return False
        except Exception as bug:  # noqa: BLE001 - a gateway's bug must not end its keeper
            entry.last_error = _bug(name, "connect", bug)
            return False
        entry.last_success = datetime.now(timezone.utc)
        return True

    async def _check(self, name: str, entry: _Entry) -> bool:
        try:
            health = await wait_for(entry.gateway.health_check(), self._timeout)
        except (BrokerError, asyncio.TimeoutError) as error:
            entry.last_error = str(error) or f"health check timed out after {self._timeout:g} s"
            return False
        except Exception as bug:  # noqa: BLE001 - a gateway's bug must not end its keeper
            entry.last_error = _bug(name, "health_check", bug)
            return False
        if health.healthy:
            entry.last_success = health.checked_at
            entry.latency = health.latency
            return True
        entry.last_error = health.error or "unhealthy"
        return False


def _budget(gateway: IBrokerGateway) -> LimiterStats | None:
    limiter = getattr(gateway, "rate_limiter", None)
    return limiter.stats() if isinstance(limiter, ObservableLimiter) else None


def _stale(gateway: IBrokerGateway) -> StaleStream | None:
    last = getattr(gateway, "last_stale_stream", None)
    return last if isinstance(last, StaleStream) else None


def _bug(name: str, operation: str, bug: Exception) -> str:
    """Log a gateway's bug with its traceback, and say it in the status; the keeper goes on."""
    _log.error("connection %s: %s raised %r (a bug in its gateway)", name, operation, bug, exc_info=bug)
    return f"{operation} failed with {type(bug).__name__}: {bug} (a bug in the gateway)"
