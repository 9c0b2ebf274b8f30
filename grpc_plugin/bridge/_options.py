"""Channel options shared by the bridge server and its clients (keepalive and message sizes).

The server accepts a client ping every second even on a connection with no call in flight, and
never answers pings with GOAWAY `too_many_pings`; clients should use `CLIENT_KEEPALIVE_OPTIONS`
(a ping every 10 s) so that a dead bridge is noticed within about 15 s.
"""

from __future__ import annotations

__all__ = [
    "CLIENT_KEEPALIVE_OPTIONS",
    "MAX_MESSAGE_BYTES",
    "MAX_REQUEST_BYTES",
    "SERVER_OPTIONS",
]

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # gRPC's own ceiling on a received message (RESOURCE_EXHAUSTED)
MAX_REQUEST_BYTES = 64 * 1024  # the bridge's limit on a request; larger ones get INVALID_ARGUMENT

CLIENT_KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # 0 = no cap on pings sent without data, so keepalive keeps probing an idle connection.
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
)

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    # The server's own pings find dead clients (and keep NAT and proxies from dropping idle ones).
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Accept client pings as often as every second, with or without calls in flight...
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 1_000),
    # ...and never count strikes against a client that pings more often: no GOAWAY too_many_pings.
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # A restarted bridge must fail loudly if another process holds its port, not share it.
    ("grpc.so_reuseport", 0),
)
