"""The kit's side of the wire: channels to the bridge, calls that report exactly what came back.

Plain synchronous grpcio: a kit that judges a server must not depend on an event loop, and every
clause sends few requests. Each channel is its own connection (`grpc.use_local_subchannel_pool`),
so that "several clients" are several connections, as several processes would be.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import attrs
import grpc
from google.protobuf import text_format
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conformance_tests.bridge._settings import BridgeSettings
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2_grpc, trading_pb2_grpc

__all__ = [
    "AUTH",
    "CLIENT_OPTIONS",
    "NO_AUTH",
    "Outcome",
    "Stream",
    "Stubs",
    "Wire",
    "describe",
    "outcome_of_error",
]

# Metadata choices for a call: the kit's own token (or none if it has none), or no metadata.
AUTH = "auth"
NO_AUTH = "none"

# Keepalive the contract asks of clients: no pings on idle connections, at most one per 5 minutes.
CLIENT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)
_SHOWN = 240  # characters of a request or reply shown in a failure message


@attrs.frozen
class Outcome:
    """What one call came back with: a status, the reply (if OK), details and metadata."""

    code: grpc.StatusCode
    reply: Any = None
    details: str = ""
    trailers: tuple[tuple[str, str | bytes], ...] = ()
    initial: tuple[tuple[str, str | bytes], ...] = ()

    @property
    def ok(self) -> bool:
        return self.code is grpc.StatusCode.OK

    def trailer(self, key: str) -> list[str]:
        """The values of trailer `key`, as text."""
        return [v if isinstance(v, str) else v.decode("latin-1") for k, v in self.trailers if k == key]

    def __str__(self) -> str:
        if self.ok:
            return f"OK {describe(self.reply)}"
        shown = (
            self.details
            if len(self.details) <= _SHOWN
            else f"{self.details[:_SHOWN]}... ({len(self.details)} chars)"
        )
        return f"{self.code.name} {shown!r}"


def describe(message: object) -> str:
    """A message (or raw bytes) in one short line, for failure messages."""
    if isinstance(message, bytes):
        return f"{len(message)} raw bytes {message[:24]!r}"
    if not isinstance(message, Message):
        return repr(message)[:_SHOWN]
    text = text_format.MessageToString(message, as_one_line=True)
    if len(text) > _SHOWN:
        text = f"{text[:_SHOWN]}... ({len(text)} chars)"
    return f"{type(message).__name__}({text})"


def _metadata_text(pairs: Sequence[tuple[str, str | bytes]] | None) -> tuple[tuple[str, str | bytes], ...]:
    return tuple((str(key), value) for key, value in (pairs or ()))


def outcome_of_error(error: grpc.RpcError) -> Outcome:
    """The Outcome of a failed call."""
    call = cast(grpc.Call, error)
    return Outcome(
        code=call.code(),
        details=call.details() or "",
        trailers=_metadata_text(call.trailing_metadata()),
        initial=_metadata_text(call.initial_metadata()),
    )


@attrs.frozen
class Stubs:
    """The three services over one channel."""

    channel: grpc.Channel
    market: market_data_pb2_grpc.MarketDataServiceStub
    trading: trading_pb2_grpc.TradingServiceStub
    health: Any  # grpcio-health-checking's stub


class Wire:
    """Channels to the bridge and the kit's way of calling it; `close` closes every channel."""

    def __init__(self, settings: BridgeSettings) -> None:
        self.settings = settings
        self._channels: list[grpc.Channel] = []
        self._lock = threading.Lock()
        # Measurements that several clauses judge, made once per session.
        self.cache: dict[str, Any] = {}
        self.main = self.connect()

    def connect(self, options: Sequence[tuple[str, Any]] = ()) -> Stubs:
        """A new channel (its own connection) and its stubs."""
        settings = self.settings
        merged = [*CLIENT_OPTIONS, *options]
        if settings.tls_server_name:
            merged.append(("grpc.ssl_target_name_override", settings.tls_server_name))
        if settings.tls:
            credentials = grpc.ssl_channel_credentials(settings.tls_ca, settings.tls_key, settings.tls_cert)
            channel = grpc.secure_channel(settings.target, credentials, options=merged)
        else:
            channel = grpc.insecure_channel(settings.target, options=merged)
        with self._lock:
            self._channels.append(channel)
        return Stubs(
            channel,
            market_data_pb2_grpc.MarketDataServiceStub(channel),
            trading_pb2_grpc.TradingServiceStub(channel),
            health_pb2_grpc.HealthStub(channel),
        )

    def metadata(self, auth: str) -> tuple[tuple[str, str], ...]:
        """Request metadata: the kit's token (AUTH), none (NO_AUTH), or an authorization value."""
        if auth == NO_AUTH:
            return ()
        if auth == AUTH:
            return (("authorization", f"Bearer {self.settings.token}"),) if self.settings.token else ()
        return (("authorization", auth),)

    def close(self) -> None:
        with self._lock:
            channels, self._channels = self._channels, []
        for channel in channels:
            channel.close()

    @staticmethod
    def unary(
        method: Callable[..., Any], request: object, metadata: tuple[tuple[str, str], ...], timeout: float
    ) -> Outcome:
        """One unary call, whatever it ends with."""
        try:
            reply, call = method.with_call(request, metadata=metadata, timeout=timeout)  # type: ignore[attr-defined]
        except grpc.RpcError as error:
            return outcome_of_error(error)
        return Outcome(
            code=grpc.StatusCode.OK,
            reply=reply,
            trailers=_metadata_text(call.trailing_metadata()),
            initial=_metadata_text(call.initial_metadata()),
        )

    def health_check(self, stubs: Stubs | None = None, service: str = "") -> Outcome:
        """Health.Check with the kit's token."""
        request = health_pb2.HealthCheckRequest(service=service)
        return self.unary((stubs or self.main).health.Check, request, self.metadata(AUTH), 10.0)


_END = object()


class Stream:
    """A server stream read by a thread of its own, so that the kit can wait for a message with a bound."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._queue: queue.Queue[object] = queue.Queue()
        self._peeked: Any = None
        self.ended: Outcome | None = None
        self._reader = threading.Thread(target=self._read, name="bridge-kit-stream", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for message in self._call:
                self._queue.put(message)
        except grpc.RpcError as error:
            self._queue.put(outcome_of_error(error))
        else:
            self._queue.put(Outcome(code=grpc.StatusCode.OK, details="the stream ended (EOF)"))
        self._queue.put(_END)

    def next(self, timeout: float) -> Any:
        """The next message; an Outcome if the stream ended; None if nothing came within `timeout`."""
        if self._peeked is not None:
            item, self._peeked = self._peeked, None
            return item
        if self.ended is not None:
            return self.ended
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, Outcome):
            self.ended = item
        return item

    def peek(self, timeout: float) -> Any:
        """What `next` would return, left for `next` to return again."""
        if self._peeked is None:
            self._peeked = self.next(timeout)
        return self._peeked

    def cancel(self) -> None:
        """Cancel the call and wait for the reader thread to end."""
        self._call.cancel()
        self._reader.join(10.0)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *_: object) -> None:
        self.cancel()


def monotonic() -> float:
    """The kit's clock for measurements."""
    return time.monotonic()
