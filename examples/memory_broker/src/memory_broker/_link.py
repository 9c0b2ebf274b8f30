"""`MemoryLink`: the network between gateways and a `MemoryBackend`, in memory, and breakable.

A gateway opens a `MemorySession` over the link and sends requests through it. Nothing here starts a
task: a request is a future that timers deliver to the backend and back, so a cut can fail every
request in flight at once, and a black hole can simply let them wait. Timeouts are timers too, not
`asyncio.wait_for`, which before Python 3.12 can swallow a cancellation that arrives as it finishes.

The link keeps what a network tap would see, for the conformance harness: every connection attempt
(`connections`) and when anything from a gateway reached the backend (`heard`).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from broker_plugins import BrokerError, OrderUpdate, Quote
from memory_broker._backend import MemoryBackend

__all__ = ["Connection", "LinkDownError", "MemoryLink", "MemorySession"]

_Mode = Literal["up", "cut", "blackhole"]
_RECORDS = 100_000  # a long-running gateway's link keeps this many records, not all of them


class LinkDownError(Exception):
    """The link failed; `sent` says whether a request had been handed to it (and so may have
    reached the backend). A transport error: the gateway maps it, it never reaches a host."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class Connection:
    """One connection attempt as the backend saw it: `time.monotonic()` when it was opened and closed."""

    __slots__ = ("closed", "opened")

    def __init__(self) -> None:
        self.opened = time.monotonic()
        self.closed: float | None = None

    def close(self) -> None:
        if self.closed is None:
            self.closed = time.monotonic()


class MemorySession:
    """One connection over a `MemoryLink`."""

    def __init__(self, link: MemoryLink, connection: Connection) -> None:
        self._link = link
        self._connection = connection
        self._failure: str | None = None
        self._silent = False
        self._pending: dict[asyncio.Future[Any], asyncio.TimerHandle | None] = {}

    @property
    def closed(self) -> bool:
        """Whether the session has failed or been closed; a closed session never carries again."""
        return self._failure is not None

    async def request(
        self, method: str, category: str, arguments: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any:
        """Send one request of the broker API and return the backend's answer (or raise its error);
        `asyncio.TimeoutError` when there is none within `timeout` seconds."""
        serve = functools.partial(self._link.backend.handle, method, category, arguments)
        return await self._exchange(serve, timeout=timeout, sent=True)

    async def ping(self, timeout: float) -> None:
        """One round trip that the backend does not record as a request, as a health probe is."""
        await self._exchange(lambda: None, timeout=timeout, sent=True)

    async def next_quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """The quotes pushed on a subscription at the next tick."""
        backend = self._link.backend
        quotes: list[Quote] = await self._exchange(
            lambda: backend.push_quotes(symbols), delay=self._link.tick
        )
        return quotes

    async def next_updates(self, after: int) -> list[OrderUpdate]:
        """The order updates after sequence `after` that are there at the next tick."""
        backend = self._link.backend
        updates: list[OrderUpdate] = await self._exchange(
            lambda: backend.push_updates(after), delay=self._link.tick
        )
        return updates

    def close(self, reason: str = "session closed") -> None:
        """Close the session: every request still in flight fails with `LinkDownError`."""
        if self._failure is None:
            self._failure = reason
        self._connection.close()
        self._link.forget(self)
        for future, handle in self._pending.items():
            if handle is not None:
                handle.cancel()
            if not future.done():
                future.set_exception(LinkDownError(reason, sent=True))

    def silence(self) -> None:
        """Carry nothing more, either way: requests in flight wait for an answer that never comes."""
        self._silent = True
        for future, handle in self._pending.items():
            if handle is not None:
                handle.cancel()
                self._pending[future] = None

    async def _exchange(
        self,
        serve: Callable[[], object],
        *,
        delay: float | None = None,
        timeout: float | None = None,
        sent: bool = False,
    ) -> Any:
        """A message to the backend and its answer; `sent` when the gateway sent it (a request, a
        probe), not when it stands for the backend pushing on a subscription."""
        if self._failure is not None:
            raise LinkDownError(self._failure, sent=False)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        latency = self._link.latency if delay is None else delay
        self._pending[future] = (
            None if self._silent else loop.call_later(latency, self._arrive, future, serve, sent)
        )
        expiry = None if timeout is None else loop.call_later(timeout, _expire, future)
        try:
            return await future
        finally:
            handle = self._pending.pop(future, None)
            for timer in (handle, expiry):
                if timer is not None:
                    timer.cancel()

    def _arrive(self, future: asyncio.Future[Any], serve: Callable[[], object], sent: bool) -> None:
        if future.done() or self._silent:
            return
        if sent:
            self._link.heard.append(time.monotonic())
        try:
            answer, failed = serve(), False
        except BrokerError as exc:
            answer, failed = exc, True
        loop = asyncio.get_running_loop()
        self._pending[future] = loop.call_later(self._link.latency, self._reply, future, answer, failed)

    def _reply(self, future: asyncio.Future[Any], answer: object, failed: bool) -> None:
        if future.done() or self._silent:
            return
        if failed:
            assert isinstance(answer, BaseException)
            future.set_exception(answer)
        else:
            future.set_result(answer)


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(asyncio.TimeoutError())


def _answer(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class MemoryLink:
    """Carries sessions' requests to one backend, `latency` seconds each way.

    Opening a session takes one round trip. `cut()` resets every session and refuses new ones;
    `blackhole()` keeps sessions open but carries nothing, and new sessions never finish opening;
    `restore()` carries again, resetting the sessions that were black-holed, as a peer that comes
    back after silence does.
    """

    def __init__(self, backend: MemoryBackend, *, tick: float = 0.05) -> None:
        self.backend = backend
        self.tick = tick
        self._latency = 0.0
        self._mode: _Mode = "up"
        self._sessions: set[MemorySession] = set()
        self._opening: dict[asyncio.Future[None], asyncio.TimerHandle | None] = {}
        self.connections: deque[Connection] = deque(maxlen=_RECORDS)
        """Every attempt to open a session, refused ones included, oldest first."""
        self.heard: deque[float] = deque(maxlen=_RECORDS)
        """`time.monotonic()` of every request and probe that reached the backend, oldest first."""

    @property
    def latency(self) -> float:
        """Seconds every message takes, each way."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"latency must be a number of seconds >= 0, got {seconds!r}")
        self._latency = seconds

    def reset_records(self) -> None:
        """Forget the recorded connection attempts and arrivals."""
        self.connections.clear()
        self.heard.clear()

    async def open(self, timeout: float) -> MemorySession:
        """A new session, after one round trip; raises `LinkDownError` when cut, and
        `asyncio.TimeoutError` when the handshake gets no answer within `timeout` (black-holed)."""
        connection = Connection()
        self.connections.append(connection)
        if self._mode == "cut":
            connection.close()
            raise LinkDownError("connection refused", sent=False)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        # Answered by the handshake's round trip, or with an error by cut(), restore() or the timeout.
        self._opening[waiter] = (
            None if self._mode == "blackhole" else loop.call_later(2 * self._latency, _answer, waiter)
        )
        expiry = loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        except BaseException:
            connection.close()
            raise
        finally:
            expiry.cancel()
            handshake = self._opening.pop(waiter, None)
            if handshake is not None:
                handshake.cancel()
        session = MemorySession(self, connection)
        self._sessions.add(session)
        return session

    def cut(self) -> None:
        """Reset every session and refuse new ones."""
        self._mode = "cut"
        self._fail_all("connection reset by peer")

    def blackhole(self) -> None:
        """Keep sessions open but carry nothing; new sessions hang while opening."""
        self._mode = "blackhole"
        for session in self._sessions:
            session.silence()
        for waiter, handshake in self._opening.items():
            if handshake is not None:
                handshake.cancel()
                self._opening[waiter] = None

    def restore(self) -> None:
        """Carry again; sessions that were black-holed are reset."""
        if self._mode == "blackhole":
            self._fail_all("connection reset after silence")
        self._mode = "up"

    def forget(self, session: MemorySession) -> None:
        """Called by a session that closed."""
        self._sessions.discard(session)

    def _fail_all(self, reason: str) -> None:
        for session in list(self._sessions):
            session.close(reason)
        for waiter in self._opening:
            if not waiter.done():
                waiter.set_exception(LinkDownError(reason, sent=False))
