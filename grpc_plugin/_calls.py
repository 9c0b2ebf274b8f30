"""`Calls`: the one path every request takes: admission (link, then permit), the call, its failure.

The order matters. Waiting for the channel after the permit would let a permit granted early reach
the bridge late, squeezing two calls into one of the bridge's windows; so the link is checked first
(inside `admit`) and the call goes out as soon as the permit is granted. A failure is mapped to the
error tree (purely) and then reported where it matters: an unreachable bridge to the connection,
a budget refusal to the limiter, so that every gateway sharing it holds back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from broker_plugins import (
    BrokerError,
    BrokerUnavailableError,
    ConnectionState,
    Limiter,
    RateLimitExceededError,
)
from grpc_plugin._config import GatewayConfig
from grpc_plugin._connection import Connection
from grpc_plugin._status import to_broker_error

__all__ = ["Admit", "Calls"]

Admit = Callable[[str, float], Awaitable[None]]
"""`GatewayBase._admit`: wait for the link (bounded), then take a permit in a category."""


class Calls:
    """Makes the requests of one gateway."""

    def __init__(
        self,
        config: GatewayConfig,
        connection: Connection,
        limiter: Limiter,
        admit: Admit,
        state: Callable[[], ConnectionState],
    ) -> None:
        self._config = config
        self._connection = connection
        self._limiter = limiter
        self._admit = admit
        self._state = state

    def method(self, service: str, rpc: str) -> Callable[..., Any]:
        """The stub method `rpc` of `service` (`market` or `trading`) on the current channel."""
        stub = self._connection.market if service == "market" else self._connection.trading
        if stub is None:
            raise BrokerUnavailableError(f"not connected to {self._config.target}: call connect() first")
        method: Callable[..., Any] = getattr(stub, rpc)
        return method

    def failure(self, exc: grpc.aio.AioRpcError, rpc: str, category: str) -> BrokerError:
        """The error for a failed call, reported to the connection or the limiter as it says."""
        error = to_broker_error(exc, method=rpc, target=self._config.target, secret=self._config.secret)
        code = exc.code()
        if code is grpc.StatusCode.UNAVAILABLE:
            self._connection.note_failure(error)
        elif isinstance(error, RateLimitExceededError):
            self._limiter.note_refusal(category, error.retry_after)
        return error

    async def once(self, category: str, service: str, rpc: str, request: object, *, timeout: float) -> Any:
        """One attempt: admission, then the call. Raises `BrokerError` only."""
        timeout, degraded = await self.admit(category, timeout)
        return await self.send(category, service, rpc, request, timeout=timeout, degraded=degraded)

    async def admit(self, category: str, timeout: float) -> tuple[float, bool]:
        """Wait for the link and a permit; returns the call's deadline and whether the link is degraded.

        While the gateway is not `CONNECTED` (a probe failed, though the channel may still claim to
        be up, as a half-open one does) the call gets at most `unavailable_timeout`, so nothing
        hangs on a silent peer; running out of it then means unreachable, not slow. A failure here
        means nothing was sent.
        """
        config = self._config
        degraded = self._state() is not ConnectionState.CONNECTED
        if degraded:
            timeout = min(timeout, config.unavailable_timeout)
        await self._admit(category, min(timeout, config.unavailable_timeout))
        return timeout, degraded

    async def send(
        self, category: str, service: str, rpc: str, request: object, *, timeout: float, degraded: bool
    ) -> Any:
        """The call itself, once admitted; its failure mapped and reported."""
        connection = self._connection
        call = self.method(service, rpc)(request, timeout=timeout, metadata=connection.metadata)
        failure: BrokerError
        connection.in_flight.add(call)
        connection.call_started()
        try:
            reply = await call
        except asyncio.CancelledError:
            if not connection.severed(call):
                raise
            failure = BrokerUnavailableError(
                f"{rpc} on {self._config.target}: the connection was lost while the call was in flight"
            )
        except grpc.aio.AioRpcError as exc:
            if degraded and exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                failure = BrokerUnavailableError(
                    f"{rpc} on {self._config.target}: the bridge did not answer within {timeout:g} s "
                    "while the connection is being re-established"
                )
            else:
                failure = self.failure(exc, rpc, category)
        except grpc.aio.UsageError:
            failure = BrokerUnavailableError(f"{rpc} on {self._config.target}: the gateway was disconnected")
        else:
            connection.heard()
            return reply
        finally:
            connection.call_ended()
            connection.release(call)
            del call
        # Raised outside the except clause, so that it carries no context: gRPC's exception and its
        # traceback hold the call, and a live call keeps its connection open after the channel closes.
        raise failure

    async def read(self, category: str, service: str, rpc: str, request: object) -> Any:
        """A call that is safe to repeat: retried while the bridge is briefly unavailable or busy.

        UNAVAILABLE is retried for at most `unavailable_timeout` (a bridge that stays down fails the
        call fast); RESOURCE_EXHAUSTED waits the bridge's retry-after when that fits within the
        call's deadline, and fails at once, carrying the retry-after, when it does not.
        """
        loop = asyncio.get_running_loop()
        timeout = self._config.timeouts[category]
        started = loop.time()
        attempt = 0
        while True:
            remaining = started + timeout - loop.time()
            try:
                return await self.once(category, service, rpc, request, timeout=max(remaining, 0.001))
            except BrokerError as error:
                wait = self._retry_wait(error, attempt, started, timeout, loop.time())
                if wait is None:
                    raise
            await asyncio.sleep(wait)
            attempt += 1

    async def open_stream(self, category: str, service: str, rpc: str, request: object) -> Any:
        """Admission, then a server-streaming call (no deadline: it runs until cancelled).

        The call is in the connection's `in_flight` until its reader passes it to `release`.
        """
        await self._admit(category, self._config.unavailable_timeout)
        call = self.method(service, rpc)(request, metadata=self._connection.metadata)
        self._connection.in_flight.add(call)
        return call

    def _retry_wait(
        self, error: BrokerError, attempt: int, started: float, timeout: float, now: float
    ) -> float | None:
        if isinstance(error, RateLimitExceededError):
            # The limiter holds the category back for the retry-after too (every gateway sharing it
            # waits); this call waits it out itself, whatever limiter it was given.
            wait = self._backoff(attempt) if error.retry_after is None else error.retry_after
            return wait if now + wait < started + timeout else None
        if isinstance(error, BrokerUnavailableError) and self._connection.open:
            wait = self._backoff(attempt)
            return wait if now + wait < started + self._config.unavailable_timeout else None
        return None

    def _backoff(self, attempt: int) -> float:
        return self._config.reconnect_backoff.delay(attempt)
