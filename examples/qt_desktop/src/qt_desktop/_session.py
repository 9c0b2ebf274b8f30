"""`TradingSession`: the Qt-free half of the desktop host.

It starts what each named connection needs (the gateway's embedded backend when no options are
given), keeps the gateways up with one `BrokerConnectionManager`, reads each connection's quote and
order-update streams, and tells its listeners what happened. Every task it starts is its own: on
exit it cancels them, awaits them, stops the manager (which disconnects every gateway) and then the
backends, in that order.

Everything here runs on the event loop's thread; listeners are called there too, so a Qt widget can
be updated straight from them when the loop is Qt's (qasync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from broker_plugins import (
    BrokerConnectionManager,
    BrokerError,
    BrokerRegistry,
    ConnectionState,
    ConnectionStatus,
    IBrokerGateway,
    Order,
    OrderRequest,
    Quote,
    StateChange,
    check_symbol,
)

__all__ = ["ConnectionSpec", "RunningBackend", "SessionListener", "TradingSession"]

_log = logging.getLogger("qt_desktop")
_T = TypeVar("_T")

STREAM_RETRY_DELAY = 0.5
"""Seconds before a stream that ended with an error is opened again (the gateway paces reconnects)."""


@runtime_checkable
class RunningBackend(Protocol):
    """A started embedded backend (what `running()` yields): how to reach it, and an outage switch."""

    @property
    def options(self) -> Mapping[str, object]:
        """Gateway options that reach the backend."""
        ...

    @property
    def description(self) -> str:
        """One line for people: what runs, and where."""
        ...

    async def stop(self) -> None:
        """Stop serving, as a backend that went away would."""
        ...

    async def start(self) -> None:
        """Serve again at the same address."""
        ...


@runtime_checkable
class _EmbeddedBackend(Protocol):
    def running(self) -> AbstractAsyncContextManager[RunningBackend]: ...


def _symbols(value: Sequence[str]) -> tuple[str, ...]:
    symbols = tuple(check_symbol(symbol) for symbol in value)
    if not symbols:
        raise ValueError("a connection needs at least one symbol to watch")
    return symbols


@attrs.frozen
class ConnectionSpec:
    """One named connection of the window: which gateway, how to reach it, what to watch.

    `options` are the gateway's options (for the grpc gateway at least `target`); `None` runs the
    gateway's embedded backend in this process and connects to it, so nothing needs setting up.
    """

    name: str
    symbols: tuple[str, ...] = attrs.field(converter=_symbols)
    gateway: str = "grpc"
    options: Mapping[str, object] | None = attrs.field(default=None, repr=False)  # may hold a token


class SessionListener(Protocol):
    """What a `TradingSession` reports, always on the event loop's thread."""

    def quote_received(self, connection: str, quote: Quote) -> None:
        """A quote arrived on `connection`'s stream."""

    def order_changed(self, connection: str, order: Order) -> None:
        """An order was placed, or the broker reported a change to it."""

    def state_changed(self, connection: str, change: StateChange) -> None:
        """`connection`'s gateway changed state (from `BrokerConnectionManager`)."""

    def stream_failed(self, connection: str, error: BrokerError) -> None:
        """A stream of `connection` ended with `error`; it is opened again shortly."""


class TradingSession:
    """Named connections, kept up and streamed, for one window. Use it as an async context manager."""

    def __init__(
        self,
        connections: Sequence[ConnectionSpec],
        *,
        registry: BrokerRegistry | None = None,
        health_check_interval: float = 1.0,
    ) -> None:
        names = [spec.name for spec in connections]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"connection names must be given and unique, got {names}")
        self._specs = {spec.name: spec for spec in connections}
        self._registry = registry or BrokerRegistry()
        self._manager = BrokerConnectionManager(check_interval=health_check_interval)
        self._listeners = _Broadcast()
        self._backends: dict[str, RunningBackend] = {}
        self._connected: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._exit_stack: contextlib.AsyncExitStack | None = None

    @property
    def connections(self) -> Mapping[str, ConnectionSpec]:
        """The connections, by name, in the order they were given."""
        return self._specs

    def subscribe(self, listener: SessionListener) -> None:
        """Report everything that happens from now on to `listener`."""
        self._listeners.listeners.append(listener)

    def status(self, connection: str) -> ConnectionStatus | None:
        """The manager's snapshot of `connection` (state, last success and error, round trip).

        None until the session has built the connection's gateway (its backend starts first).
        """
        if connection not in self._specs:
            raise KeyError(connection)
        return self._manager.status(connection) if connection in self._manager else None

    def gateway(self, connection: str) -> IBrokerGateway:
        """The gateway behind `connection`."""
        return self._manager[connection]

    def backend(self, connection: str) -> RunningBackend | None:
        """The embedded backend `connection` talks to, or None when it was given options."""
        return self._backends.get(connection)

    def place_order(self, connection: str, request: OrderRequest) -> asyncio.Task[Order]:
        """Send `request` on `connection`; the task is the session's (cancelled on close).

        Its result goes to the listeners as well; a `BrokerError` is the task's exception.
        """

        async def place() -> Order:
            order = await self.gateway(connection).place_order(request)
            self._listeners.order_changed(connection, order)
            return order

        return self._spawn(place(), f"place order {request.client_order_id} on {connection}")

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The tasks the session runs now (for tests and for a host that wants to know)."""
        return frozenset(self._tasks)

    async def __aenter__(self) -> TradingSession:
        async with contextlib.AsyncExitStack() as stack:
            for name, spec in self._specs.items():
                options = spec.options
                if options is None:
                    running = await stack.enter_async_context(self._embedded(spec.gateway).running())
                    self._backends[name] = running
                    options = running.options
                gateway = self._registry.create(spec.gateway, **options)
                self._connected[name] = connected = asyncio.Event()
                if gateway.state is ConnectionState.CONNECTED:
                    connected.set()
                self._manager.add(name, gateway)
            self._manager.add_listener(self._on_state)
            stack.push_async_callback(self._manager.stop)  # disconnects the gateways before backends stop
            await self._manager.start()
            for name, spec in self._specs.items():
                self._spawn(self._stream_quotes(name, spec.symbols), f"quotes on {name}")
                self._spawn(self._stream_orders(name), f"order updates on {name}")
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel and await every task, disconnect every gateway, stop every backend. Idempotent."""
        while self._tasks:
            tasks = tuple(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        stack, self._exit_stack = self._exit_stack, None
        if stack is not None:
            await stack.aclose()

    def _embedded(self, gateway: str) -> _EmbeddedBackend:
        backend = self._registry.embedded_backend(gateway)
        if backend is None:
            raise LookupError(f"gateway {gateway!r} has no embedded backend: give the connection options")
        if not isinstance(backend, _EmbeddedBackend):
            raise TypeError(f"the embedded backend of {gateway!r} has no running(): {backend!r}")
        return backend

    def _spawn(self, coro: Coroutine[Any, Any, _T], name: str) -> asyncio.Task[_T]:
        task = asyncio.get_running_loop().create_task(coro, name=f"qt_desktop: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_state(self, connection: str, change: StateChange) -> None:
        connected = self._connected[connection]
        if change.current is ConnectionState.CONNECTED:
            connected.set()
        else:
            connected.clear()
        self._listeners.state_changed(connection, change)

    async def _follow(
        self, connection: str, opened: Callable[[], AsyncIterator[_T]], deliver: Callable[[_T], None]
    ) -> None:
        """Hand each item of the stream `opened()` makes to `deliver`; open it again after a failure.

        The gateway resumes its streams across reconnects by itself; this loop is for a stream that
        ends with an error all the same (a gateway that does not resume, a broker that refuses).
        """
        while True:
            await self._connected[connection].wait()
            stream = opened()
            try:
                async for item in stream:
                    deliver(item)
            except BrokerError as error:
                self._listeners.stream_failed(connection, error)
                await asyncio.sleep(STREAM_RETRY_DELAY)
            finally:
                # End the call now, not whenever the generator is collected (after the loop closed).
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()

    async def _stream_quotes(self, connection: str, symbols: tuple[str, ...]) -> None:
        gateway = self.gateway(connection)
        await self._follow(
            connection,
            lambda: gateway.stream_quotes(symbols),
            lambda quote: self._listeners.quote_received(connection, quote),
        )

    async def _stream_orders(self, connection: str) -> None:
        await self._follow(
            connection,
            self.gateway(connection).stream_order_updates,
            lambda update: self._listeners.order_changed(connection, update.order),
        )


class _Broadcast:
    """Every subscribed listener as one; a listener that raises is logged and the others still hear."""

    def __init__(self) -> None:
        self.listeners: list[SessionListener] = []

    @contextlib.contextmanager
    def _guard(self, listener: SessionListener) -> Iterator[None]:
        try:
            yield
        except Exception:  # noqa: BLE001 - one broken widget must not end a stream or the session
            _log.exception("session listener %r failed", listener)

    def quote_received(self, connection: str, quote: Quote) -> None:
        for listener in tuple(self.listeners):
            with self._guard(listener):
                listener.quote_received(connection, quote)

    def order_changed(self, connection: str, order: Order) -> None:
        for listener in tuple(self.listeners):
            with self._guard(listener):
                listener.order_changed(connection, order)

    def state_changed(self, connection: str, change: StateChange) -> None:
        for listener in tuple(self.listeners):
            with self._guard(listener):
                listener.state_changed(connection, change)

    def stream_failed(self, connection: str, error: BrokerError) -> None:
        for listener in tuple(self.listeners):
            with self._guard(listener):
                listener.stream_failed(connection, error)
