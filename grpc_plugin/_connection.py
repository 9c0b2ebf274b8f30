"""`Connection`: the grpc.aio channel to the bridge, its stubs, and proof that the link is alive.

gRPC reconnects a channel's transport by itself (with the backoff set from the config), but a
channel whose connection dropped while idle stays IDLE until something asks it to connect: `watch()`
asks, and follows the channel's connectivity into the gateway's state.

A peer that goes silent without closing (a half-open connection) is found with ordinary RPCs, not
with frequent HTTP/2 pings: gRPC's stock server policy allows a client one ping without data per
five minutes and answers more with GOAWAY, and a vendor's bridge keeps the stock policy. So
`keep_alive()` sends a Health.Check when the link has been quiet for `health_check_interval` (or for
`health_check_timeout` while a unary call waits for its reply); two in a row left unanswered for
`health_check_timeout` each mean the link is dead (one alone may be a busy bridge), and the channel
is replaced (closing the old one fails what was in flight on it). Keepalive pings stay on, at an
interval the stock policy allows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker_plugins import BrokerError, BrokerTimeoutError, BrokerUnavailableError, ConnectionState
from broker_plugins._aio import Alarm, wait_for  # same distribution: shared, not public
from grpc_plugin._config import GatewayConfig
from grpc_plugin._status import connect_failure, definite_failure, to_broker_error
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2_grpc, trading_pb2_grpc

__all__ = ["SILENT_PROBES", "Connection", "channel_options"]

_log = logging.getLogger("grpc_plugin")
_READY = grpc.ChannelConnectivity.READY
_IDLE = grpc.ChannelConnectivity.IDLE
_SHUTDOWN = grpc.ChannelConnectivity.SHUTDOWN
_SERVING = health_pb2.HealthCheckResponse.SERVING
_HEALTH_REQUEST = health_pb2.HealthCheckRequest()

SILENT_PROBES = 2
"""Health checks in a row left unanswered, the channel READY, before the link counts as silent."""

SetState = Callable[[ConnectionState, "BrokerError | None"], None]


def channel_options(config: GatewayConfig) -> list[tuple[str, Any]]:
    """Channel arguments: stock-compatible keepalive, fast reconnects, message sizes."""
    backoff = config.reconnect_backoff
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", int(config.keepalive_time * 1000)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout * 1000)),
        # No pings on a connection without calls: a stock server counts them as abuse.
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.initial_reconnect_backoff_ms", max(1, int(backoff.initial * 1000))),
        ("grpc.min_reconnect_backoff_ms", max(1, int(backoff.initial * 1000))),
        ("grpc.max_reconnect_backoff_ms", max(1, int(backoff.maximum * 1000))),
        ("grpc.max_receive_message_length", config.max_message_size),
        ("grpc.max_send_message_length", config.max_message_size),
        # One connection per gateway: never share a subchannel with another gateway in the process,
        # so closing one cannot disturb the other's calls.
        ("grpc.use_local_subchannel_pool", 1),
    ]
    if config.server_name_override:
        options.append(("grpc.ssl_target_name_override", config.server_name_override))
    return options


class Connection:
    """The channel of one gateway, and what is known about the link under it."""

    def __init__(
        self, config: GatewayConfig, state: Callable[[], ConnectionState], set_state: SetState
    ) -> None:
        self._config = config
        self._state = state
        self._set_state = set_state
        self.metadata = config.metadata
        self._channel: grpc.aio.Channel | None = None
        self.market: market_data_pb2_grpc.MarketDataServiceStub | None = None
        self.trading: trading_pb2_grpc.TradingServiceStub | None = None
        # grpcio-health-checking ships no type information for its stub.
        self._health: Any = None
        self.last_error: BrokerError | None = None
        self.last_heard = 0.0
        """`time.monotonic()` when the bridge last answered anything (a reply, a stream message, a probe)."""
        self.pending = 0
        """Unary calls waiting for their reply (`call_started` / `call_ended`)."""
        self._alarm = Alarm()
        self._wake_at = 0.0
        self.in_flight: set[Any] = set()
        """Every call (unary or stream) on the channel that has not ended."""
        self._severed: set[Any] = set()

    @property
    def open(self) -> bool:
        """Whether a channel is open (from `open()` until `close()`)."""
        return self._channel is not None

    def sever(self) -> None:
        """End every call in flight; each fails as unavailable (`severed(call)` tells its reader)."""
        for call in tuple(self.in_flight):
            self._severed.add(call)
            call.cancel()

    def severed(self, call: object) -> bool:
        """Whether `call` was ended by `sever()` (a lost link or a disconnect), not by its reader."""
        return call in self._severed

    def release(self, call: object) -> None:
        """`call` has ended and its reader let go of it."""
        self.in_flight.discard(call)
        self._severed.discard(call)

    async def wait_released(self, timeout: float) -> None:
        """Wait until the readers of every call have let go of it (at most `timeout`)."""
        deadline = time.monotonic() + timeout
        # Polling: readers let go in their own tasks, and there is no event to wait on.
        while self.in_flight and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    def call_started(self) -> None:
        """A unary call went out: while it waits, the link is proven more often (see `keep_alive`)."""
        self.pending += 1
        # Woken only when its pause would outlast the probe a waiting call needs: once per quiet
        # spell, not once per call.
        if self._alarm.sleeping and self._wake_at > time.monotonic() + self._config.health_check_timeout:
            self._alarm.ring()

    def call_ended(self) -> None:
        """A unary call has its reply, or failed."""
        self.pending -= 1

    def heard(self) -> None:
        """The bridge answered: the link is alive now."""
        self.last_heard = time.monotonic()

    async def start(self) -> None:
        """Open the channel and make first contact with the credentials; `BrokerError` if it fails.

        The first contact is a Health.Check that does not wait for the channel to be ready, so a
        refused port, an unknown host or a failed TLS handshake fails at once and says why, and a
        wrong token fails here with `AuthenticationError`, not at the first call. A first attempt
        that failed for a passing reason (a slow handshake, a reset) is followed by one that waits
        for the channel, within `connect_timeout`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.connect_timeout
        channel = self._new_channel()
        health: Any = health_pb2_grpc.HealthStub(channel)  # the package ships no types for its stub
        failure: BrokerError | None = None
        patient = False
        while True:
            remaining = max(deadline - loop.time(), 0.001)
            try:
                reply = await health.Check(
                    _HEALTH_REQUEST, timeout=remaining, metadata=self.metadata, wait_for_ready=patient
                )
            except grpc.aio.AioRpcError as exc:
                passing = exc.code() is grpc.StatusCode.UNAVAILABLE and not definite_failure(exc)
                if passing and not patient and deadline - loop.time() > 0.05:
                    patient = True  # ride out the channel's own retries, within the deadline
                    failure = connect_failure(exc, target=self._config.target, secret=self._config.secret)
                    continue
                if not (patient and exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED and failure):
                    failure = connect_failure(exc, target=self._config.target, secret=self._config.secret)
            except BaseException:
                await channel.close(None)
                raise
            else:
                failure = None
                if reply.status != _SERVING:
                    failure = BrokerUnavailableError(f"the bridge at {self._config.target} is not serving")
            break
        if failure is not None:
            await channel.close(None)
            self.last_error = failure
            raise failure  # outside the except clause: gRPC's error would keep its call alive
        self._install(channel)
        self.heard()

    async def close(self) -> None:
        """Close the channel: its calls end as CANCELLED."""
        channel, self._channel = self._channel, None
        self.market = self.trading = self._health = None
        if channel is not None:
            await channel.close(None)

    async def wait_ready(self, timeout: float) -> None:
        """Return once the channel is ready, asking it to connect; else `BrokerUnavailableError`.

        Called before a permit is taken, so nothing waits here holding a permit and nothing is
        queued to be sent late: a call either goes now or fails within `timeout`.
        """
        channel = self._channel
        if channel is None:
            raise BrokerUnavailableError(f"not connected to {self._config.target}: call connect() first")
        if channel.get_state() is _READY:
            return
        try:
            await wait_for(_ready(channel), timeout)
        except (asyncio.TimeoutError, grpc.aio.UsageError, RuntimeError):
            reason = f": {self.last_error}" if self.last_error else ""
            raise BrokerUnavailableError(
                f"bridge {self._config.target} is unreachable (waited {timeout:g} s){reason}"
            ) from None

    def note_failure(self, error: BrokerError) -> None:
        """A call found the bridge unreachable: say so now rather than at the next probe."""
        self.last_error = error
        if self._channel is not None and self._state() is ConnectionState.CONNECTED:
            self._set_state(ConnectionState.RECONNECTING, error)
            if self._channel.get_state() is _IDLE:
                self._channel.get_state(try_to_connect=True)

    async def check_health(self, timeout: float) -> None:
        """One Health.Check round trip, with the credentials; `BrokerError` when it fails or the bridge
        is not serving."""
        health = self._health
        if health is None:
            raise BrokerUnavailableError(f"not connected to {self._config.target}")
        failure: BrokerError
        try:
            reply = await health.Check(_HEALTH_REQUEST, timeout=timeout, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            failure = to_broker_error(
                exc, method="Health.Check", target=self._config.target, secret=self._config.secret
            )
        except grpc.aio.UsageError:
            failure = BrokerUnavailableError(f"health check of {self._config.target}: the channel closed")
        else:
            if reply.status == _SERVING:
                self.heard()
                return
            failure = BrokerUnavailableError(f"bridge {self._config.target} is not serving")
        self.last_error = failure
        raise failure

    async def watch(self) -> None:
        """Follow the channel's connectivity into the gateway's state, kicking it when it idles.

        Runs until the connection is closed; follows a replaced channel.
        """
        while (channel := self._channel) is not None:
            state = channel.get_state()
            if state is _READY:
                if self._state() is ConnectionState.RECONNECTING:
                    self._set_state(ConnectionState.CONNECTED, None)
            elif state is not _SHUTDOWN:
                if self._state() is ConnectionState.CONNECTED:
                    error = BrokerUnavailableError(
                        f"the connection to {self._config.target} dropped; reconnecting"
                    )
                    self.last_error = error
                    self._set_state(ConnectionState.RECONNECTING, error)
                if state is _IDLE:
                    channel.get_state(try_to_connect=True)
            if state is _SHUTDOWN:
                await asyncio.sleep(0)  # replaced: the next turn watches the new channel
                continue
            try:
                await channel.wait_for_state_change(state)
            except (grpc.aio.UsageError, RuntimeError):
                continue  # closed meanwhile

    async def keep_alive(self) -> None:
        """Prove a quiet link with health checks; replace the channel when one goes unanswered."""
        interval = self._config.health_check_interval
        if interval is None:
            return
        timeout = self._config.health_check_timeout
        unanswered = 0
        while self._channel is not None:
            quiet = time.monotonic() - self.last_heard
            due = (min(interval, timeout) if self.pending else interval) - quiet
            if due > 0 and not unanswered:
                await self._pause(due)  # or less: a call that goes out wakes it
                continue
            try:
                await self.check_health(timeout)
            except BrokerError as error:
                # Unanswered while the channel says READY: silent, or only busy. A second probe in a
                # row unanswered means silent (a half-open link gRPC will not drop by itself).
                silent = isinstance(error, BrokerTimeoutError) and self._ready()
                unanswered = unanswered + 1 if silent else 0
                await self._unhealthy(error, replace=unanswered >= SILENT_PROBES)
                if unanswered >= SILENT_PROBES:
                    unanswered = 0
                continue
            unanswered = 0
            if self._state() is ConnectionState.RECONNECTING and self._ready():
                self._set_state(ConnectionState.CONNECTED, None)

    async def _pause(self, seconds: float) -> None:
        self._wake_at = time.monotonic() + seconds
        await self._alarm.sleep(seconds)

    async def _unhealthy(self, error: BrokerError, *, replace: bool) -> None:
        if self._state() is ConnectionState.CONNECTED:
            self._set_state(ConnectionState.RECONNECTING, error)
        if replace:
            _log.warning("%s did not answer health checks (%s); reconnecting", self._config.target, error)
            await self._replace_channel()  # a new channel makes a new connection
        self.last_heard = time.monotonic()  # the next probe comes an interval from now

    async def _replace_channel(self) -> None:
        old = self._channel
        if old is None:
            return
        self.sever()  # what was in flight on the silent link fails now, as unavailable
        self._install(self._new_channel())
        await old.close(None)

    def _ready(self) -> bool:
        channel = self._channel
        return channel is not None and channel.get_state() is _READY

    def _install(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self.market = market_data_pb2_grpc.MarketDataServiceStub(channel)
        self.trading = trading_pb2_grpc.TradingServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)

    def _new_channel(self) -> grpc.aio.Channel:
        config = self._config
        options = channel_options(config)
        if not config.secure:
            return grpc.aio.insecure_channel(config.target, options=options)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=config.root_certificates,
            private_key=config.client_key,
            certificate_chain=config.client_certificate,
        )
        return grpc.aio.secure_channel(config.target, credentials, options=options)


async def _ready(channel: grpc.aio.Channel) -> None:
    """Until `channel` is READY, asking it to connect only when it is IDLE.

    Not `channel.channel_ready()`: that asks at every change of state, and asking a channel that
    is backing off after a failure starts an attempt at once; with callers waiting, that is a
    reconnect storm.
    """
    state = channel.get_state()
    while state is not _READY:
        if state is _SHUTDOWN:
            raise RuntimeError("the channel was closed")
        if state is _IDLE:
            channel.get_state(try_to_connect=True)
        await channel.wait_for_state_change(state)
        state = channel.get_state()
