"""Broken gateways that break a promise about the connection: connecting, reconnecting, streams,
listeners and half-open links. Each is a few lines off the memory example."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Callable
from datetime import datetime, timezone
from typing import Any, cast

from memory_broker import MemoryBrokerGateway, MemorySession
from memory_broker._link import LinkDownError

from broker_plugins import (
    Backoff,
    BrokerUnavailableError,
    ConnectionState,
    OrderUpdate,
    Quote,
    StateChange,
    StateListener,
)


class NoReconnectGateway(MemoryBrokerGateway):
    """Gives up at the first failure: the state goes to DISCONNECTED and stays there."""

    async def _supervise(self) -> None:
        reason = await self._watch()
        if self._session is not None:
            self._session.close(str(reason))
        self._set_state(ConnectionState.DISCONNECTED, reason)


class HangingGateway(MemoryBrokerGateway):
    """Waits inside every call for an outage to end, instead of failing fast."""

    async def _wait_link(self, timeout: float) -> None:
        while self.state in (ConnectionState.RECONNECTING, ConnectionState.CONNECTING):
            await self._state_changed()
        await super()._wait_link(timeout)


class TaskLeakingGateway(MemoryBrokerGateway):
    """Starts a keepalive task with every reconnect, and never stops one."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._keepalives: list[asyncio.Task[None]] = []

    async def _restore_session(self) -> MemorySession:
        session = await super()._restore_session()
        self._keepalives.append(asyncio.get_running_loop().create_task(_keep_alive(), name="keepalive"))
        return session


class UnownedTaskGateway(MemoryBrokerGateway):
    """Starts a poller with connect() that it does not own: disconnect() leaves it running."""

    async def _open_link(self) -> None:
        await super()._open_link()
        self._poller = asyncio.get_running_loop().create_task(_keep_alive(), name="memory poller")


async def _keep_alive() -> None:
    while True:
        await asyncio.sleep(0.05)


class _Backoff(MemoryBrokerGateway):
    BACKOFF = Backoff()

    def __init__(self, **options: Any) -> None:
        super().__init__(**{**options, "backoff": self.BACKOFF})


class StormingReconnectGateway(_Backoff):
    """Tries to reconnect every millisecond."""

    BACKOFF = Backoff(initial=0.001, maximum=0.001)


class FixedIntervalReconnectGateway(_Backoff):
    """Tries to reconnect every 0.1 s, never backing off."""

    BACKOFF = Backoff(initial=0.1, maximum=0.1)


class UncappedBackoffGateway(_Backoff):
    """Triples its wait after every failed attempt, with no ceiling."""

    BACKOFF = Backoff(initial=0.02, maximum=3600.0, multiplier=3.0)


class LockstepReconnectGateway(_Backoff):
    """Backs off exactly as every other gateway does: no jitter."""

    BACKOFF = Backoff(initial=0.02, maximum=0.2, jitter=0.0)


class LockstepUnevenNoticeGateway(_Backoff):
    """Backs off with no jitter, and one in four reacts to a lost link 20 ms late (as when a probe
    tells one gateway of an outage before a call tells the other): of pairs made one after the
    other, every other pair notices 20 ms apart, and only the others show the lock-step."""

    BACKOFF = LockstepReconnectGateway.BACKOFF
    _made = itertools.count()

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._late = 0.02 if next(self._made) % 4 == 1 else 0.0

    async def _watch(self) -> BrokerUnavailableError:
        reason = await super()._watch()
        if self._late:
            await asyncio.sleep(self._late)
        return reason


class GivesUpGateway(MemoryBrokerGateway):
    """Stops trying after five failed attempts, and says so: DISCONNECTED."""

    async def _restore_session(self) -> MemorySession:
        for attempt in range(5):
            await asyncio.sleep(self._backoff.delay(attempt))
            try:
                return await self._open_session()
            except BrokerUnavailableError as error:
                reason = error
        self._set_state(ConnectionState.DISCONNECTED, reason)
        await asyncio.Event().wait()  # nothing more to do until disconnect() cancels it
        raise AssertionError("unreachable")


class NoStreamResumeGateway(MemoryBrokerGateway):
    """Declares STREAM_RESUME, but its quote stream ends quietly when the link is lost."""

    async def _stream_quotes(self, symbols: tuple[str, ...]) -> AsyncGenerator[Quote, None]:
        await self._read("market_data", "stream_quotes", {"symbols": symbols})
        while True:
            try:
                quotes = await self._live_session().next_quotes(symbols)
            except (LinkDownError, BrokerUnavailableError):
                return
            for quote in quotes:
                yield quote


class StaleQuoteGateway(MemoryBrokerGateway):
    """After subscribing again, yields the last quote it had first, to fill the gap."""

    async def _stream_quotes(self, symbols: tuple[str, ...]) -> AsyncGenerator[Quote, None]:
        await self._read("market_data", "stream_quotes", {"symbols": symbols})
        last: Quote | None = None
        while True:
            try:
                for quote in await self._live_session().next_quotes(symbols):
                    last = quote
                    yield quote
            except (LinkDownError, BrokerUnavailableError):
                self._report_loss()
                await self._resubscribe("market_data", "stream_quotes", {"symbols": symbols})
                if last is not None:
                    yield last


class OrderStreamFromLatestGateway(MemoryBrokerGateway):
    """Subscribes again after an outage from the latest update: what changed meanwhile is lost."""

    async def _stream_order_updates(self) -> AsyncGenerator[OrderUpdate, None]:
        last = cast(int, await self._read("trading", "stream_order_updates", {"after": None}))
        while True:
            try:
                for update in await self._live_session().next_updates(last):
                    last = update.sequence
                    yield update
            except (LinkDownError, BrokerUnavailableError):
                self._report_loss()
                while True:
                    while self.state is not ConnectionState.CONNECTED:
                        await self._state_changed()
                    try:
                        last = cast(int, await self._read("trading", "stream_order_updates", {"after": None}))
                        break
                    except BrokerUnavailableError:
                        await asyncio.sleep(0.02)


class RacingConnectGateway(MemoryBrokerGateway):
    """connect() checks the state, then opens a session, with nothing to stop a second call meanwhile."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._sessions: list[MemorySession] = []

    async def connect(self) -> None:
        if self.state is ConnectionState.CONNECTED:
            return
        self._GatewayLifecycle__closing = False  # as the base's connect() does, under its lock
        self._set_state(ConnectionState.CONNECTING)
        self._session = await self._open_session()
        self._sessions.append(self._session)
        self._spawn(self._supervise(), "supervisor")
        self._set_state(ConnectionState.CONNECTED)


class ConnectSurvivesDisconnectGateway(MemoryBrokerGateway):
    """disconnect() does nothing while connect() is under way, which then connects."""

    async def disconnect(self) -> None:
        if self.state is ConnectionState.CONNECTING:
            return
        await super().disconnect()


class ReopeningConnectGateway(MemoryBrokerGateway):
    """connect() on a connected gateway opens a fresh session in place of the one it has."""

    async def connect(self) -> None:
        if self.state is ConnectionState.CONNECTED and self._session is not None:
            old, self._session = self._session, await self._open_session()
            old.close("replaced")
            return
        await super().connect()


class SkipsConnectingGateway(MemoryBrokerGateway):
    """Never reports CONNECTING: it goes from DISCONNECTED straight to CONNECTED (or back)."""

    def _set_state(self, state: ConnectionState, reason: Any = None) -> None:
        if state is not ConnectionState.CONNECTING:
            super()._set_state(state, reason)


class FragileListenersGateway(MemoryBrokerGateway):
    """Calls its own list of listeners, and lets one that raises take the caller down with it."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._mine: list[StateListener] = []

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        self._mine.append(listener)
        return lambda: self._mine.remove(listener)

    def _set_state(self, state: ConnectionState, reason: Any = None) -> None:
        previous = self.state
        super()._set_state(state, reason)
        if self.state is not previous:
            change = StateChange(
                previous=previous, current=state, time=datetime.now(timezone.utc), reason=reason
            )
            for listener in tuple(self._mine):
                listener(change)


class DoubleSessionGateway(MemoryBrokerGateway):
    """Opens a spare session with every reconnect, and keeps it."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._spares: list[MemorySession] = []

    async def _restore_session(self) -> MemorySession:
        session = await super()._restore_session()
        self._spares.append(await self._open_session())
        return session


class DeadlineOnlyGateway(MemoryBrokerGateway):
    """Does not probe while a request waits for its reply: that request finds out at its deadline."""

    async def _watch(self) -> BrokerUnavailableError:
        while True:
            await self._pause()
            session = self._session
            if session is None or session.closed:
                return BrokerUnavailableError("memory: the connection to the backend was lost")
            if session._pending:
                continue
            try:
                await self._ping(session)
            except BrokerUnavailableError as error:
                return error


class SlowProbeGateway(MemoryBrokerGateway):
    """Probes eight times less often than its harness declares."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**{**options, "health_interval": 8 * options.get("health_interval", 1.0)})


class NoProbeGateway(MemoryBrokerGateway):
    """Declares HALF_OPEN_DETECTION but never probes: a silent peer is never noticed."""

    async def _ping(self, session: MemorySession) -> None:
        if session.closed:
            raise BrokerUnavailableError("memory: the connection to the backend was lost")
