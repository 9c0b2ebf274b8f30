"""The reference bridge server: the bridge contract served by a simulated market and paper broker.

Command line (prints `listening on HOST:PORT` once it accepts calls; SIGTERM/SIGINT stop it)::

    python -m grpc_plugin.bridge --host 127.0.0.1 --port 0 [--token T] [--state PATH]
        [--tls-cert C --tls-key K [--client-ca CA]] [--seed N] [--tick-rate R]
        [--budget CALLS/SECONDS ...] [--no-budget]

In-process (tests, benchmarks, the conformance harness)::

    async with BridgeServer(BridgeConfig(port=0, budget=())) as bridge:
        channel = grpc.aio.insecure_channel(bridge.address, options=CLIENT_KEEPALIVE_OPTIONS)
        ...
        bridge.requests                     # every call received: method, account, monotonic arrival
        bridge.orders_by_client_order_id()  # the account's orders as the broker holds them
        await bridge.cut(); await bridge.restore()          # drop connections; same port again
        bridge.delay(0.5); bridge.fail_next(2, grpc.StatusCode.UNAVAILABLE)
        bridge.stall_streams(); bridge.release_streams(); bridge.clear_faults()
"""

from grpc_plugin.bridge._budget import DEFAULT_BUDGET, Window
from grpc_plugin.bridge._gate import DEFAULT_ACCOUNT, RETRY_AFTER_KEY, RequestRecord
from grpc_plugin.bridge._instruments import INSTRUMENTS, InstrumentSpec
from grpc_plugin.bridge._options import (
    CLIENT_KEEPALIVE_OPTIONS,
    MAX_MESSAGE_BYTES,
    MAX_REQUEST_BYTES,
    SERVER_OPTIONS,
)
from grpc_plugin.bridge._orders import OrderStatus, PaperOrder
from grpc_plugin.bridge._paging import MAX_LIMIT, MAX_PAGE_SIZE
from grpc_plugin.bridge._server import BridgeConfig, BridgeServer, TlsConfig

__all__ = [
    "CLIENT_KEEPALIVE_OPTIONS",
    "DEFAULT_ACCOUNT",
    "DEFAULT_BUDGET",
    "INSTRUMENTS",
    "MAX_LIMIT",
    "MAX_MESSAGE_BYTES",
    "MAX_PAGE_SIZE",
    "MAX_REQUEST_BYTES",
    "RETRY_AFTER_KEY",
    "SERVER_OPTIONS",
    "BridgeConfig",
    "BridgeServer",
    "InstrumentSpec",
    "OrderStatus",
    "PaperOrder",
    "RequestRecord",
    "TlsConfig",
    "Window",
]
