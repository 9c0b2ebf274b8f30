"""`Caller`: one unary call made right: readiness, then a permit, then the call with its deadline.

The order matters. Waiting for the channel after the permit would let a permit granted early reach
the bridge late, squeezing two calls into one of the bridge's windows; so the channel is checked
first and the call goes out as soon as the permit is granted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

import grpc

from broker_plugins import (
    BrokerError,
    BrokerUnavailableError,
    ConnectionState,
    RateLimiter,
    RateLimitExceededError,
)
from grpc_plugin._config import GatewayConfig
from grpc_plugin._connection import Connection
from grpc_plugin._status import to_broker_error

__all__ = ["Caller", "Service"]

Service = Literal["market", "trading"]


class Caller:
    """Makes the unary calls of one gateway."""

    def __init__(self, config: GatewayConfig, connection: Connection, limiter: RateLimiter) -> None:
        self._config = config
        self._connection = connection
        self.limiter = limiter
        self._secret = config.token.reveal() if config.token else None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...] | None:
        """Call metadata: the bearer token, when there is one."""
        return self._connection.metadata

    @property
    def connection_open(self) -> bool:
        """False once the gateway was disconnected: nothing can be learned from the bridge then."""
        return self._connection.open

    async def prepare(self, category: str, timeout: float, *, ready: bool = False) -> None:
        """Wait (bounded) for a usable channel, then take a permit for one call in `category`.

        With `ready`, the channel itself must be connected, not just the gateway believed to be:
        a call that must not go out late (an order) is refused rather than queued on a dead link.
        """
        if ready or self._connection.state is not ConnectionState.CONNECTED:
            await self._connection.wait_ready(min(timeout, self._config.unavailable_timeout))
        await self.limiter.acquire(category)

    def stub_method(self, service: Service, rpc: str) -> Callable[..., Any]:
        stub = self._connection.market if service == "market" else self._connection.trading
        if stub is None or not self._connection.open:
            raise BrokerUnavailableError(f"not connected to {self._config.target}: call connect() first")
        method: Callable[..., Any] = getattr(stub, rpc)
        return method

    def error(self, exc: grpc.aio.AioRpcError, rpc: str) -> BrokerError:
        """The `BrokerError` for `exc`; an unreachable bridge is also reported to the connection."""
        error = to_broker_error(exc, method=rpc, target=self._config.target, secret=self._secret)
        if exc.code() is grpc.StatusCode.UNAVAILABLE:
            self._connection.note_failure(error)
        return error

    async def once(
        self, category: str, service: Service, rpc: str, request: object, *, timeout: float
    ) -> Any:
        """One attempt: readiness, permit, call. Raises `BrokerError` only.

        While the gateway is not `CONNECTED` (a probe failed, though the channel may still claim to
        be up, as a half-open one does) the call gets at most `unavailable_timeout`, so nothing
        hangs on a silent peer; running out of it then means unreachable, not slow.
        """
        degraded = self._connection.state is not ConnectionState.CONNECTED
        if degraded:
            timeout = min(timeout, self._config.unavailable_timeout)
        await self.prepare(category, timeout)
        method = self.stub_method(service, rpc)
        failure: BrokerError
        try:
            reply = await method(request, timeout=timeout, metadata=self._connection.metadata)
        except grpc.aio.AioRpcError as exc:
            if degraded and exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                failure = BrokerUnavailableError(
                    f"{rpc} on {self._config.target}: the bridge did not answer within {timeout:g} s "
                    "while the connection is being re-established"
                )
            else:
                failure = self.error(exc, rpc)
        except grpc.aio.UsageError:
            failure = BrokerUnavailableError(f"{rpc} on {self._config.target}: the gateway was disconnected")
        else:
            return reply
        # Raised outside the except clause, so that it carries no context: gRPC's exception and its
        # traceback hold the call, and a live call keeps its connection open after the channel closes.
        raise failure

    async def read(self, category: str, service: Service, rpc: str, request: object) -> Any:
        """A call that is safe to repeat: retried while the bridge is briefly unavailable or busy.

        UNAVAILABLE is retried for at most `unavailable_timeout` (a bridge that stays down fails the
        call fast); RESOURCE_EXHAUSTED waits the bridge's retry-after, within the call's deadline.
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

    def _retry_wait(
        self, error: BrokerError, attempt: int, started: float, timeout: float, now: float
    ) -> float | None:
        if isinstance(error, RateLimitExceededError):
            limit, hinted = timeout, error.retry_after
        elif isinstance(error, BrokerUnavailableError) and self._connection.open:
            limit, hinted = self._config.unavailable_timeout, None
        else:
            return None
        wait = hinted if hinted is not None else self._config.reconnect_backoff.delay(attempt)
        return wait if now + wait < started + limit else None
