"""`MemoryLink`: the network between gateways and a `MemoryBackend`, in memory, and breakable.

A gateway opens a `MemorySession` over the link and sends requests through it. Nothing here starts a
task: a request is a future that timers deliver to the backend and back, so a cut can fail every
request in flight at once, and a black hole can simply let them wait. Timeouts are timers too, not
`asyncio.wait_for`, which before Python 3.12 can swallow a cancellation that arrives as it finishes.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from broker_plugins import BrokerError, OrderUpdate, Quote
from memory_broker._backend import MemoryBackend

__all__ = ["LinkDownError", "MemoryLink", "MemorySession"]

_Mode = Literal["up", "cut", "blackhole"]


class LinkDownError(Exception):
    """The link failed; `sent` says whether a request had been handed to it (and so may have
    reached the backend). A transport error: the gateway maps it, it never reaches a host."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class MemorySession:
    """One connection over a `MemoryLink`."""

    def __init__(self, link: MemoryLink) -> None:
        self._link = link
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
        return await self._exchange(serve, timeout=timeout)

    async def ping(self, timeout: float) -> None:
        """One round trip that the backend does not record, as a health probe is."""
        await self._exchange(lambda: None, timeout=timeout)

    async def next_quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """The quotes pushed on a subscription at the next tick."""
        backend = self._link.backend
        quotes: list[Quote] = await self._exchange(
            lambda: [backend.quote(symbol) for symbol in symbols], delay=self._link.tick
        )
        return quotes

    async def next_updates(self, after: int) -> list[OrderUpdate]:
        """The order updates after sequence `after` that are there at the next tick."""
        backend = self._link.backend
        updates: list[OrderUpdate] = await self._exchange(
            lambda: backend.updates_after(after), delay=self._link.tick
        )
        return updates

    def close(self, reason: str = "session closed") -> None:
        """Close the session: every request still in flight fails with `LinkDownError`."""
        if self._failure is None:
            self._failure = reason
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
        self, serve: Callable[[], object], *, delay: float | None = None, timeout: float | None = None
    ) -> Any:
        if self._failure is not None:
            raise LinkDownError(self._failure, sent=False)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        latency = self._link.latency if delay is None else delay
        self._pending[future] = (
            None if self._silent else loop.call_later(latency, self._arrive, future, serve)
        )
        expiry = None if timeout is None else loop.call_later(timeout, _expire, future)
        try:
            return await future
        finally:
            handle = self._pending.pop(future, None)
            for timer in (handle, expiry):
                if timer is not None:
                    timer.cancel()

    def _arrive(self, future: asyncio.Future[Any], serve: Callable[[], object]) -> None:
        if future.done() or self._silent:
            return
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


class MemoryLink:
    """Carries sessions' requests to one backend, `latency` seconds each way.

    `cut()` resets every session and refuses new ones; `blackhole()` keeps sessions open but carries
    nothing, and new sessions never finish opening; `restore()` carries again, resetting the sessions
    that were black-holed, as a peer that comes back after silence does.
    """

    def __init__(self, backend: MemoryBackend, *, tick: float = 0.05) -> None:
        self.backend = backend
        self.tick = tick
        self._latency = 0.0
        self._mode: _Mode = "up"
        self._sessions: set[MemorySession] = set()
        self._opening: set[asyncio.Future[None]] = set()

    @property
    def latency(self) -> float:
        """Seconds every message takes, each way."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"latency must be a number of seconds >= 0, got {seconds!r}")
        self._latency = seconds

    async def open(self, timeout: float) -> MemorySession:
        """A new session; raises `LinkDownError` when cut, and `asyncio.TimeoutError` when black-holed
        for `timeout` seconds."""
        if self._mode == "cut":
            raise LinkDownError("connection refused", sent=False)
        if self._mode == "blackhole":
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            self._opening.add(waiter)
            expiry = loop.call_later(timeout, _expire, waiter)
            try:
                await waiter  # answered only with an error: by restore(), cut() or the timeout
            finally:
                expiry.cancel()
                self._opening.discard(waiter)
        session = MemorySession(self)
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
