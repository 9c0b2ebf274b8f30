"""Channel options shared by the bridge server and its clients (message sizes, and the keepalive a
client should use).

The server runs gRPC's stock keepalive enforcement, exactly what a vendor's C-core, Go or Java
server does: a client that pings more often than once per 5 minutes while the server sends no data
(once per 2 hours on a connection with no call in flight) collects strikes, and the third closes the
connection with GOAWAY `too_many_pings`. So nothing here relaxes it, and clients should detect a
silent peer with ordinary calls (health checks), not with frequent HTTP/2 pings:
`CLIENT_KEEPALIVE_OPTIONS` pings at most once per 5 minutes, and only while calls are in flight.
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
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
)

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # A restarted bridge must fail loudly if another process holds its port, not share it.
    ("grpc.so_reuseport", 0),
)
