"""`FaultProxy`: a TCP proxy on loopback that cuts, black-holes or delays what it forwards.

Put it between a gateway and its backend and any TCP-based gateway can be cut off without killing
its backend. It listens on 127.0.0.1 (port 0 picks a free port; read it back from `port`) and only
ever talks to loopback addresses. It also keeps the records a harness's backdoor needs: every
connection it accepted (`connection_records()`, attempts refused during a cut included) and when anything
from a client came through (`heard()`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import deque
from types import TracebackType

from conformance_tests._harness import BackendConnection, BreakMode

__all__ = ["FaultProxy"]

_CHUNK = 64 * 1024
_RECORDS = 100_000  # the most connections and arrivals kept: far more than one clause makes


def _loopback(host: str, what: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{what} must be a loopback IP address such as 127.0.0.1, got {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"{what} must be a loopback address; the fault proxy never leaves this host: {host}")
    return host


class _Direction:
    """One way through a pipe: writes now, or after the latency, always in the order read."""

    __slots__ = ("queue", "timer", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.queue: deque[tuple[float, bytes]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def send_later(self, data: bytes, latency: float) -> None:
        loop = asyncio.get_running_loop()
        self.queue.append((loop.time() + latency, data))
        if self.timer is None:
            self.timer = loop.call_at(self.queue[0][0], self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        now = loop.time()
        while self.queue and self.queue[0][0] <= now:
            _due, data = self.queue.popleft()
            if not self.writer.transport.is_closing():
                self.writer.write(data)
        if self.queue:
            # Chunks wait behind older ones even if the latency was lowered since: order is kept.
            self.timer = loop.call_at(self.queue[0][0], self._flush, loop)

    async def flushed(self) -> None:
        """Return once every delayed chunk has been written."""
        loop = asyncio.get_running_loop()
        # Waiting on the clock: the flush timer empties the queue when the last chunk is due.
        while self.queue:  # noqa: ASYNC110
            await asyncio.sleep(max(0.0, self.queue[-1][0] - loop.time()))

    def drop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()


class _Pipe:
    """A client connection and its upstream connection."""

    __slots__ = ("client", "closed", "opened", "silent", "tasks", "upstream")

    def __init__(self, client: asyncio.StreamWriter, *, silent: bool) -> None:
        self.client = _Direction(client)
        self.upstream: _Direction | None = None
        self.silent = silent
        self.closed: float | None = None
        self.opened = time.monotonic()
        self.tasks: set[asyncio.Task[None]] = set()

    def attach(self, upstream: asyncio.StreamWriter) -> None:
        """The upstream connection is open; a pipe black-holed while it opened stays silent."""
        self.upstream = _Direction(upstream)
        if self.silent:
            self.silence()

    def silence(self) -> None:
        self.silent = True
        for direction in self._directions():
            direction.drop()

    def abort(self, *, unless_closing: bool = False) -> None:
        """Close both sides at once, dropping anything still delayed, as a reset connection does;
        with `unless_closing`, a side already closing gracefully is left to finish."""
        self.silent = True
        if self.closed is None:
            self.closed = time.monotonic()
        for direction in self._directions():
            direction.drop()
            if not (unless_closing and direction.writer.transport.is_closing()):
                direction.writer.transport.abort()

    def _directions(self) -> tuple[_Direction, ...]:
        return (self.client,) if self.upstream is None else (self.client, self.upstream)


class FaultProxy:
    """Forwards TCP connections from `127.0.0.1:port` to a loopback target, with faults on demand.

    `cut()` closes every connection and refuses new ones (each is reset as soon as it is accepted, so
    that attempts are counted, and the port stays the proxy's); `blackhole()` keeps connections open
    (and accepts new ones) but forwards nothing; `set_latency()` delays every chunk, each way;
    `restore()` forwards again. Every task the proxy starts is cancelled and awaited by `close()`.
    """

    def __init__(
        self,
        target_port: int,
        *,
        target_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._target = (_loopback(target_host, "target_host"), target_port)
        self._host = _loopback(host, "host")
        self._port = port
        self._server: asyncio.Server | None = None
        self._mode: BreakMode | None = None
        self._latency = 0.0
        self._pipes: set[_Pipe] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._accepted: deque[_Pipe] = deque(maxlen=_RECORDS)
        self._heard: deque[float] = deque(maxlen=_RECORDS)

    @property
    def port(self) -> int:
        """The port the proxy listens on (known after `start()`)."""
        if self._port == 0:
            raise RuntimeError("the fault proxy has no port until start() has run")
        return self._port

    @property
    def address(self) -> str:
        """`host:port` to point a gateway at."""
        return f"{self._host}:{self.port}"

    @property
    def mode(self) -> BreakMode | None:
        """How the proxy is breaking connections now; None while it forwards."""
        return self._mode

    @property
    def latency(self) -> float:
        """Seconds every chunk is held before it is forwarded, each way."""
        return self._latency

    @property
    def connections(self) -> int:
        """Client connections open through the proxy now."""
        return len(self._pipes)

    def connection_records(self) -> list[BackendConnection]:
        """Every client connection accepted since the last `reset_records()`, oldest first, with when
        it opened and closed; an attempt refused during a cut is closed as soon as it opened."""
        return [BackendConnection(pipe.opened, pipe.closed) for pipe in self._accepted]

    def heard(self) -> list[float]:
        """The `time.monotonic()` of every chunk a client sent that was forwarded to the target (or
        queued behind the latency), since the last `reset_records()`."""
        return list(self._heard)

    def reset_records(self) -> None:
        """Forget the recorded connections and arrivals."""
        self._accepted.clear()
        self._heard.clear()

    async def start(self) -> None:
        """Listen; with port 0 the system picks a free port, kept for every later `restore()`."""
        if self._closed:
            raise RuntimeError("a closed fault proxy cannot be started again")
        if self._server is None:
            await self._listen()

    async def set_latency(self, seconds: float) -> None:
        """Hold every chunk `seconds` before forwarding it, each way; 0 forwards at once."""
        if not seconds >= 0:
            raise ValueError(f"latency must be a number of seconds >= 0, got {seconds!r}")
        self._latency = float(seconds)

    async def break_connection(self, mode: BreakMode) -> None:
        """`cut()` or `blackhole()`, by `mode`."""
        if mode is BreakMode.CUT:
            await self.cut()
        else:
            await self.blackhole()

    async def cut(self) -> None:
        """Close every connection, and reset each new one as soon as it arrives."""
        self._mode = BreakMode.CUT
        await self._abort(set(self._pipes))

    async def blackhole(self) -> None:
        """Keep connections open, and accept new ones, but forward nothing in either direction."""
        self._mode = BreakMode.BLACKHOLE
        for pipe in self._pipes:
            pipe.silence()

    async def restore(self) -> None:
        """Forward again; connections that were black-holed are reset, since bytes they sent were
        lost and their streams can no longer be trusted."""
        self._mode = None
        if self._server is None and not self._closed:
            await self._listen()
        await self._abort({pipe for pipe in self._pipes if pipe.silent})

    async def close(self) -> None:
        """Stop listening, reset every connection, and cancel and await every task."""
        self._closed = True
        await self._stop_listening()
        await self._abort(set(self._pipes))
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _listen(self) -> None:
        if self._closed:
            raise RuntimeError("the fault proxy is closed")
        server = await asyncio.start_server(self._accept, self._host, self._port, reuse_address=True)
        if self._port == 0:
            self._port = int(server.sockets[0].getsockname()[1])
        self._server = server

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    async def _abort(self, pipes: set[_Pipe]) -> None:
        tasks: list[asyncio.Task[None]] = []
        for pipe in pipes:
            pipe.abort()
            self._pipes.discard(pipe)
            tasks.extend(pipe.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _own(self, pipe: _Pipe, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        pipe.tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(pipe.tasks.discard)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback rather than a coroutine, so that the proxy creates, and owns, the tasks.
        pipe = _Pipe(writer, silent=self._mode is BreakMode.BLACKHOLE)
        self._accepted.append(pipe)
        if self._closed or self._mode is BreakMode.CUT:
            pipe.abort()
            return
        self._pipes.add(pipe)
        self._own(pipe, asyncio.get_running_loop().create_task(self._serve(pipe, reader)))

    async def _serve(self, pipe: _Pipe, client: asyncio.StreamReader) -> None:
        try:
            if pipe.silent:
                await self._pump(pipe, client, None)
                return
            host, port = self._target
            try:
                # No timeout needed: the target is on this host, so a connect succeeds or is refused at once.
                upstream, writer = await asyncio.open_connection(host, port)
            except OSError:
                return
            pipe.attach(writer)
            if pipe.closed:  # cut while connecting
                writer.transport.abort()
                return
            replies = asyncio.get_running_loop().create_task(self._pump(pipe, upstream, pipe.client))
            self._own(pipe, replies)
            await self._pump(pipe, client, pipe.upstream)
            await replies
        finally:
            pipe.abort(unless_closing=True)
            self._pipes.discard(pipe)

    async def _pump(self, pipe: _Pipe, reader: asyncio.StreamReader, to: _Direction | None) -> None:
        try:
            while data := await reader.read(_CHUNK):
                if pipe.silent or to is None:
                    continue  # a black hole: the bytes vanish
                if to is not pipe.client:
                    self._heard.append(time.monotonic())
                if self._latency > 0 or to.queue:
                    to.send_later(data, self._latency)
                else:
                    to.writer.write(data)
                    await to.writer.drain()
        except OSError:
            pipe.abort()  # one side was reset: reset the other too
            return
        if to is not None and not pipe.silent:
            # End of stream: deliver what is still delayed, then pass the end on.
            await to.flushed()
            to.writer.close()
