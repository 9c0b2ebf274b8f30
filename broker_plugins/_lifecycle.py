"""`GatewayLifecycle`: connecting, disconnecting and admitting requests, for any transport.

- `connect()` and `disconnect()` are idempotent and safe to call concurrently: one link is opened
  however many `connect()` calls overlap, and a `disconnect()` while `connect()` is under way abandons
  it (that `connect()` raises `BrokerUnavailableError`) and the gateway ends `CLOSED`.
- `_admit(category, timeout)`, awaited before each request: wait (bounded) for the link, take a permit
  from the limiter; the request then goes out at once. A call waiting for its permit when
  `disconnect()` runs fails with `BrokerUnavailableError` and sends nothing.
- Tasks started with `_spawn()` are cancelled and awaited on `disconnect()`; stream iterators handed
  out through `_track()` are closed then, paused ones included.

`GatewayBase` adds the broker operations on top; a transport implements `_open_link`, `_close_link`,
`_probe` and, when readiness is more than "the state is CONNECTED", `_wait_link`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import sys
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, TypeVar

from broker_plugins._enums import ConnectionState
from broker_plugins._errors import BrokerError, BrokerUnavailableError, InvalidRequestError, PluginError
from broker_plugins._gateway import HealthStatus, StateListener
from broker_plugins._limiter import Limiter
from broker_plugins._ratelimit import RateLimiter, RateLimitsSpec
from broker_plugins._state import ConnectionStateTracker

__all__ = ["GatewayLifecycle"]

_T = TypeVar("_T")
_G = TypeVar("_G", bound="GatewayLifecycle")
_UP = frozenset({ConnectionState.CONNECTED, ConnectionState.RECONNECTING})


def _limiter(
    rate_limits: RateLimitsSpec | None, rate_limiter: object, margin: float, default: RateLimitsSpec
) -> Limiter:
    if rate_limiter is None:
        return RateLimiter(default if rate_limits is None else rate_limits, margin=margin)
    if rate_limits is not None:
        raise InvalidRequestError("give rate_limits or rate_limiter, not both")
    if not isinstance(rate_limiter, Limiter):
        raise InvalidRequestError(
            f"rate_limiter must have acquire(category) and note_refusal(category, retry_after); "
            f"got {type(rate_limiter).__name__}"
        )
    return rate_limiter


class GatewayLifecycle(abc.ABC):
    """The lifecycle and call admission of a gateway; see the module docstring."""

    def __init__(
        self,
        *,
        name: str,
        rate_limits: RateLimitsSpec | None = None,
        rate_limiter: Limiter | None = None,
        limit_margin: float = 0.0,
        default_rate_limits: RateLimitsSpec = (),
    ) -> None:
        self._name = name
        self.__limiter = _limiter(rate_limits, rate_limiter, limit_margin, default_rate_limits)
        self.__tracker = ConnectionStateTracker()
        self.__lifecycle = asyncio.Lock()
        self.__closing = False
        self.__connecting: asyncio.Task[Any] | None = None
        self.__waiting: set[asyncio.Task[Any]] = set()
        self.__aborted: set[asyncio.Task[Any]] = set()
        self.__tasks: set[asyncio.Task[Any]] = set()
        self.__streams: weakref.WeakSet[AsyncGenerator[Any, None]] = weakref.WeakSet()
        self.__changed: asyncio.Future[None] | None = None

    # -- what a host sees ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name the gateway is registered under."""
        return self._name

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self.__tracker.state

    @property
    def rate_limiter(self) -> Limiter:
        """The limiter every request of this gateway takes its permit from."""
        return self.__limiter

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call `listener` on every state change; returns a function that removes it."""
        return self.__tracker.add_listener(listener)

    async def connect(self) -> None:
        """Open the link; returns once calls can be made, raises `BrokerError` if it cannot be opened.

        On a connected (or reconnecting) gateway it does nothing. After a failure the gateway is
        `DISCONNECTED`.
        """
        async with self.__lifecycle:
            if self.__tracker.state in _UP:
                return
            self.__closing = False
            self._set_state(ConnectionState.CONNECTING)
            self.__connecting = task = asyncio.current_task()
            abandoned = False
            try:
                await self._open_link()
            except asyncio.CancelledError:
                abandoned = self._was_aborted(task)
                await self._release()
                self._set_state(ConnectionState.CLOSED if abandoned else ConnectionState.DISCONNECTED)
                if not abandoned:
                    raise
            except BrokerError as error:
                await self._release()
                self._set_state(ConnectionState.DISCONNECTED, error)
                raise
            except Exception as exc:
                await self._release()
                bug = self._bug("connect", exc)
                self._set_state(ConnectionState.DISCONNECTED, bug)
                raise bug from exc
            finally:
                self.__connecting = None
            if abandoned:
                # Raised here, not in the except clause: as its context, the cancellation would keep
                # the frames of the abandoned attempt alive, and with them what they hold (a
                # transport's half-opened connection), for as long as the caller keeps the error.
                raise BrokerUnavailableError(
                    f"{self._name}: disconnect() was called while connect() was under way"
                )
            self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        """End streams, fail calls waiting for a permit, cancel owned tasks, release the link.

        Ends `CLOSED`; a gateway that is not connected (never was, or its `connect()` failed) stays as
        it is. A closed gateway may be connected again.
        """
        self.__closing = True
        connecting = self.__connecting
        if connecting is not None and connecting is not asyncio.current_task():
            self._abort(connecting)
        for waiter in tuple(self.__waiting):
            self._abort(waiter)
        async with self.__lifecycle:
            if self.__tracker.state not in _UP:
                return
            await self._release()
            self._set_state(ConnectionState.CLOSED)

    async def __aenter__(self: _G) -> _G:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.disconnect()

    async def health_check(self) -> HealthStatus:
        """One probe of the broker, taking no permit; reports an unhealthy broker instead of raising."""
        checked_at = datetime.now(timezone.utc)
        if self.__closing or self.__tracker.state not in _UP:
            return HealthStatus(
                healthy=False, state=self.state, checked_at=checked_at, error=f"not connected ({self.state})"
            )
        started = time.perf_counter()
        try:
            await self._probe()
        except Exception as error:  # noqa: BLE001 - health is reported, never raised
            message = str(error) if isinstance(error, BrokerError) else str(self._bug("health_check", error))
            return HealthStatus(healthy=False, state=self.state, checked_at=checked_at, error=message)
        latency = time.perf_counter() - started
        return HealthStatus(healthy=True, state=self.state, checked_at=checked_at, latency=latency)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name} {self.state}>"

    # -- for subclasses: the plumbing ----------------------------------------------------------------

    async def _admit(self, category: str, timeout: float) -> None:
        """Wait (at most `timeout`) for the link, then take a permit: the request may go out now.

        `BrokerUnavailableError` when the link is not usable within `timeout`, or when `disconnect()`
        runs meanwhile; a call refused here sent nothing and took no permit.
        """
        if self.__closing or self.__tracker.state not in _UP:
            raise self._closed_error()
        await self._wait_link(timeout)
        task = asyncio.current_task()
        assert task is not None  # gateways run inside asyncio tasks
        self.__waiting.add(task)
        try:
            await self.__limiter.acquire(category)
        except asyncio.CancelledError:
            if self._was_aborted(task):
                raise self._closed_error() from None
            raise
        finally:
            self.__waiting.discard(task)
        if self.__closing:
            raise self._closed_error()

    def _spawn(self, work: Coroutine[Any, Any, object], name: str) -> asyncio.Task[Any]:
        """Start a task this gateway owns: `disconnect()` cancels and awaits it."""
        task = asyncio.get_running_loop().create_task(work, name=f"{self._name} {name}")
        self.__tasks.add(task)
        task.add_done_callback(self.__tasks.discard)
        return task

    def _set_state(self, state: ConnectionState, reason: BrokerError | None = None) -> None:
        """Move to `state`, telling the listeners; wakes `_state_changed()` waiters."""
        if self.__tracker.set(state, reason) is not None and self.__changed is not None:
            changed, self.__changed = self.__changed, None
            if not changed.done():
                changed.set_result(None)

    def _state_changed(self) -> Awaitable[None]:
        """Resolves at the next state change."""
        if self.__changed is None:
            self.__changed = asyncio.get_running_loop().create_future()
        return asyncio.shield(self.__changed)

    @property
    def _open(self) -> bool:
        """Whether the gateway is connected (or reconnecting) and `disconnect()` has not begun."""
        return not self.__closing and self.__tracker.state in _UP

    def _closed_error(self) -> BrokerUnavailableError:
        return BrokerUnavailableError(f"{self._name}: not connected (call connect() first)")

    # -- for subclasses: the link ------------------------------------------------------------------

    @abc.abstractmethod
    async def _open_link(self) -> None:
        """Open the connection; raise `BrokerError` when it cannot be opened (it is then released)."""

    @abc.abstractmethod
    async def _close_link(self) -> None:
        """End calls and streams in flight and release the connection (also a half-opened one)."""

    @abc.abstractmethod
    async def _probe(self) -> None:
        """One round trip that takes no permit; raise `BrokerError` when the broker is not healthy."""

    async def _wait_link(self, timeout: float) -> None:
        """Return once a request can be sent now, else `BrokerUnavailableError` within `timeout`.

        By default a request can be sent while the state is `CONNECTED`, and not otherwise.
        """
        if self.__tracker.state is not ConnectionState.CONNECTED:
            raise BrokerUnavailableError(f"{self._name}: the broker is unreachable ({self.state})")

    # -- inside --------------------------------------------------------------------------------------

    def _bug(self, operation: str, exc: Exception) -> PluginError:
        return PluginError(f"gateway {self._name!r} failed in {operation}: {type(exc).__name__}: {exc}")

    def _track(self, stream: AsyncGenerator[_T, None]) -> AsyncGenerator[_T, None]:
        self.__streams.add(stream)
        return stream

    def _abort(self, task: asyncio.Task[Any]) -> None:
        if not task.done():
            self.__aborted.add(task)
            task.cancel()

    def _was_aborted(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether `disconnect()` cancelled `task`; if so that cancellation is taken back."""
        if task is None or task not in self.__aborted:
            return False
        self.__aborted.discard(task)
        # Someone else cancelled it too: their cancellation goes on.
        return not (sys.version_info >= (3, 11) and task.uncancel() > 0)

    async def _release(self) -> None:
        """Cancel owned tasks, close paused streams, then let the subclass release the link."""
        tasks = tuple(self.__tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for stream in tuple(self.__streams):
            # One being read ends through its transport; a paused one is closed here, so that it
            # lets go of what it holds now rather than when the garbage collector gets to it.
            if not getattr(stream, "ag_running", False):
                with contextlib.suppress(BrokerError, RuntimeError):
                    await stream.aclose()
        await self._close_link()
