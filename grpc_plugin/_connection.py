"""`Connection`: one grpc.aio channel, its stubs, and the tasks that keep it alive and observed.

gRPC reconnects a channel's transport by itself (with the backoff set from the config), but a
channel whose connection dropped while idle stays IDLE until something asks it to connect. The
watcher task asks. The health task probes the bridge at an interval, so a bridge that stops serving
is noticed even when no call is made; keepalive pings find a peer that vanished without a word.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker_plugins import BrokerError, BrokerUnavailableError, ConnectionState, ConnectionStateTracker
from broker_plugins._aio import wait_for  # same distribution: shared, not public
from grpc_plugin._config import GatewayConfig
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2_grpc, trading_pb2_grpc

__all__ = ["Connection"]

_log = logging.getLogger("grpc_plugin")
_READY = grpc.ChannelConnectivity.READY
_IDLE = grpc.ChannelConnectivity.IDLE
_SHUTDOWN = grpc.ChannelConnectivity.SHUTDOWN


def channel_options(config: GatewayConfig) -> list[tuple[str, Any]]:
    """Channel arguments: keepalive that finds half-open peers, fast reconnects, message sizes."""
    backoff = config.reconnect_backoff
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", int(config.keepalive_time * 1000)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
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
    """The channel of one gateway and the state it is in."""

    def __init__(self, config: GatewayConfig, tracker: ConnectionStateTracker) -> None:
        self._config = config
        self._tracker = tracker
        self._channel: grpc.aio.Channel | None = None
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self.market: market_data_pb2_grpc.MarketDataServiceStub | None = None
        self.trading: trading_pb2_grpc.TradingServiceStub | None = None
        # grpcio-health-checking ships no type information for its stub.
        self._health: Any = None
        token = config.token.reveal() if config.token else None
        # None rather than an empty tuple: gRPC does measurably more work per call for an empty one.
        self.metadata: tuple[tuple[str, str], ...] | None = (
            (("authorization", f"Bearer {token}"),) if token else None
        )
        self.last_latency: float | None = None
        self.last_error: BrokerError | None = None

    @property
    def state(self) -> ConnectionState:
        return self._tracker.state

    @property
    def open(self) -> bool:
        """Whether `start` succeeded and neither `close` nor `begin_close` has run since."""
        return self._channel is not None and not self._closing

    def begin_close(self) -> None:
        """From now on nothing is sent: a call that gets its permit while streams wind down fails."""
        self._closing = True

    async def start(self) -> None:
        """Open the channel and wait until it is ready; raises `BrokerUnavailableError` otherwise."""
        if self._channel is not None:
            return
        self._closing = False
        self._tracker.set(ConnectionState.CONNECTING)
        channel = self._new_channel()
        try:
            await wait_for(channel.channel_ready(), self._config.connect_timeout)
        except (asyncio.TimeoutError, grpc.RpcError) as exc:
            await channel.close(None)
            error = BrokerUnavailableError(
                f"cannot connect to {self._config.target} within {self._config.connect_timeout:g} s"
            )
            self.last_error = error
            self._tracker.set(ConnectionState.DISCONNECTED, error)
            raise error from exc
        except asyncio.CancelledError:
            await channel.close(None)
            self._tracker.set(ConnectionState.DISCONNECTED)
            raise
        self._channel = channel
        self.market = market_data_pb2_grpc.MarketDataServiceStub(channel)
        self.trading = trading_pb2_grpc.TradingServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._tracker.set(ConnectionState.CONNECTED)
        self._tasks = [
            asyncio.create_task(self._watch(channel), name=f"grpc-watch {self._config.target}"),
            asyncio.create_task(self._probe(), name=f"grpc-health {self._config.target}"),
        ]

    async def close(self) -> None:
        """Stop the background tasks, then close the channel (its calls end as CANCELLED)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        channel, self._channel = self._channel, None
        self.market = self.trading = self._health = None
        if channel is not None:
            await channel.close(None)
        self._tracker.set(ConnectionState.CLOSED)

    async def wait_ready(self, timeout: float) -> None:
        """Return once the channel is ready, asking it to connect; else `BrokerUnavailableError`.

        Called before a permit is taken, so nothing waits here holding a permit and nothing is
        queued to be sent late: a call either goes now or fails within `timeout`.
        """
        channel = self._channel
        if channel is None or self._closing:
            raise BrokerUnavailableError(f"not connected to {self._config.target}: call connect() first")
        if channel.get_state(try_to_connect=True) is _READY:
            return
        try:
            await wait_for(channel.channel_ready(), timeout)
        except asyncio.TimeoutError:
            reason = f": {self.last_error}" if self.last_error else ""
            raise BrokerUnavailableError(
                f"bridge {self._config.target} is unreachable (waited {timeout:g} s){reason}"
            ) from None

    def note_failure(self, error: BrokerError) -> None:
        """A call found the bridge unreachable: say so now rather than at the next probe."""
        self.last_error = error
        if self._channel is not None and self._tracker.state is ConnectionState.CONNECTED:
            self._tracker.set(ConnectionState.RECONNECTING, error)
            self._channel.get_state(try_to_connect=True)

    async def check_health(self, timeout: float) -> bool:
        """One Health.Check round trip; records its latency. False when the bridge is not serving."""
        health = self._health
        if health is None:
            return False
        started = time.perf_counter()
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            self.last_error = BrokerUnavailableError(
                f"health check of {self._config.target} failed: {exc.details() or exc.code().name}"
            )
            return False
        self.last_latency = time.perf_counter() - started
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            self.last_error = BrokerUnavailableError(f"bridge {self._config.target} is not serving")
            return False
        return True

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

    async def _watch(self, channel: grpc.aio.Channel) -> None:
        """Follow the channel's connectivity into `ConnectionState`, kicking it when it idles."""
        state = channel.get_state()
        while state is not _SHUTDOWN:
            if state is _READY:
                if self._tracker.state is ConnectionState.RECONNECTING:
                    self._tracker.set(ConnectionState.CONNECTED)
            else:
                if self._tracker.state is ConnectionState.CONNECTED:
                    error = BrokerUnavailableError(f"connection to {self._config.target} lost ({state.name})")
                    self.last_error = error
                    self._tracker.set(ConnectionState.RECONNECTING, error)
                if state is _IDLE:
                    channel.get_state(try_to_connect=True)
            await channel.wait_for_state_change(state)
            state = channel.get_state()

    async def _probe(self) -> None:
        """Health-check at the configured interval; an unhealthy bridge means reconnecting."""
        interval = self._config.health_check_interval
        while True:
            await asyncio.sleep(interval)
            healthy = await self.check_health(timeout=max(interval, self._config.unavailable_timeout))
            if not healthy and self._tracker.state is ConnectionState.CONNECTED:
                self._tracker.set(ConnectionState.RECONNECTING, self.last_error)
            elif healthy and self._tracker.state is ConnectionState.RECONNECTING:
                assert self._channel is not None
                if self._channel.get_state() is _READY:
                    self._tracker.set(ConnectionState.CONNECTED)
