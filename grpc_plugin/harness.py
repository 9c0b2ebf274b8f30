"""The grpc plugin's conformance harness: the reference bridge, in-process, behind a fault proxy.

Offered through the `provide_conformance_harness` hook, so that
`pytest --pyargs conformance_tests --broker-gateway grpc` needs no test code. This is the one module
of the plugin that uses `conformance_tests`.

It speaks harness protocol version 2 with what the bridge and the proxy offer: failures injected
with `BridgeServer.fail_next` (a budget refusal with its retry-after trailer included), candle pages
of the size asked for (`serve_pages_of`), de-duplication switched off in the bridge's broker,
connections and arrivals counted at the `FaultProxy`, orders cancelled through the broker. The
bridge keeps no record of its replies, so there is no `served_values`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import grpc

from broker_plugins import Backoff, RateLimitsSpec
from conformance_tests import BackendConnection, BackendRequest, BreakMode, Failure, FaultProxy
from grpc_plugin._gateway import GrpcBrokerGateway
from grpc_plugin.bridge import DEFAULT_ACCOUNT, BridgeConfig, BridgeServer

__all__ = ["GrpcHarness"]

# Bridge RPC -> (IBrokerGateway method it serves, rate-limit category)
_METHODS = {
    "GetQuote": ("get_quote", "market_data"),
    "GetCandles": ("get_candles", "market_data"),
    "GetInstrument": ("get_instrument", "market_data"),
    "ListInstruments": ("list_instruments", "market_data"),
    "GetMarketCalendar": ("get_market_calendar", "market_data"),
    "StreamQuotes": ("stream_quotes", "market_data"),
    "PlaceOrder": ("place_order", "trading"),
    "CancelOrder": ("cancel_order", "trading"),
    "ModifyOrder": ("modify_order", "trading"),
    "GetOrder": ("get_order", "trading"),
    "ListOrders": ("get_orders", "trading"),
    "StreamOrderUpdates": ("stream_order_updates", "trading"),
    "GetPositions": ("get_positions", "account"),
    "GetBalance": ("get_balance", "account"),
}
_STATUS = {
    Failure.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Failure.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Failure.RATE_LIMITED_RETRY_AFTER: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

_HEALTH_CHECK_INTERVAL = 0.2
_HEALTH_CHECK_TIMEOUT = 0.5

# Short bounds, so the suite's outages take seconds: a silent link is noticed within 1.2 s (a quiet
# interval, then two probes unanswered), calls fail within 0.5 s while the bridge is unreachable,
# and reconnect attempts come at most 0.3 s apart.
_GATEWAY_SETTINGS = {
    "health_check_interval": _HEALTH_CHECK_INTERVAL,
    "health_check_timeout": _HEALTH_CHECK_TIMEOUT,
    "unavailable_timeout": 0.5,
    "connect_timeout": 5.0,
    "reconnect_backoff": Backoff(initial=0.05, maximum=0.3),
    "timeouts": 5.0,
    # The in-process bridge shares the event loop with the gateway, so a request is observed
    # arriving only when the loop gets to it: tens of milliseconds late when 50 tasks are busy.
    "rate_limit_margin": 0.03,
}


class GrpcHarness:
    """A reference bridge with rich paper accounts and no budget of its own, reached through a proxy."""

    version = 2
    gateway_name = "grpc"
    symbol = "AAPL"
    break_modes = frozenset({BreakMode.CUT, BreakMode.BLACKHOLE})
    half_open_bound: float | None = _HEALTH_CHECK_INTERVAL + 2 * _HEALTH_CHECK_TIMEOUT
    injectable_failures = frozenset(_STATUS)

    def __init__(self) -> None:
        self._bridge = BridgeServer(
            BridgeConfig(
                host="127.0.0.1",
                port=0,
                budget=(),
                tick_rate=50.0,
                initial_cash={"USD": Decimal(10**9), "KRW": Decimal(10**12)},
            )
        )
        self._proxy: FaultProxy | None = None
        self._orders_before: frozenset[str] = frozenset()

    async def start(self) -> None:
        await self._bridge.start()
        self._proxy = FaultProxy(self._bridge.port)
        await self._proxy.start()

    async def stop(self) -> None:
        if self._proxy is not None:
            await self._proxy.close()
            self._proxy = None
        await self._bridge.stop(grace=0)

    def create_gateway(self, rate_limits: RateLimitsSpec) -> GrpcBrokerGateway:
        return GrpcBrokerGateway(
            target=self._live_proxy().address, rate_limits=rate_limits, **_GATEWAY_SETTINGS
        )

    async def break_connection(self, mode: BreakMode) -> None:
        await self._live_proxy().break_connection(mode)

    async def restore_connection(self) -> None:
        await self._live_proxy().restore()

    async def set_latency(self, seconds: float) -> None:
        await self._live_proxy().set_latency(seconds)

    def backend_requests(self) -> Sequence[BackendRequest]:
        return [
            BackendRequest(*_METHODS[record.method], record.arrived)
            for record in self._bridge.requests
            if record.method in _METHODS
        ]

    def backend_orders(self) -> Mapping[str, int]:
        counts = self._bridge.broker.order_counts(DEFAULT_ACCOUNT)
        return {key: count for key, count in counts.items() if key not in self._orders_before}

    async def disable_deduplication(self) -> None:
        self._bridge.broker.deduplicate = False

    def reset_backend_records(self) -> None:
        self._bridge.clear_requests()
        self._orders_before = frozenset(self._bridge.orders_by_client_order_id())
        self._live_proxy().reset_records()

    # -- protocol version 2 --------------------------------------------------------------------------

    async def fail_next_requests(
        self, count: int, failure: Failure, retry_after: float | None = None
    ) -> None:
        hint = retry_after if failure is Failure.RATE_LIMITED_RETRY_AFTER else None
        message = f"injected by the conformance harness: {failure}"
        self._bridge.fail_next(count, _STATUS[failure], message, retry_after=hint)

    async def force_page_size(self, size: int) -> int:
        # The gateway leaves a request's page size unset, so the bridge's own choice decides.
        self._bridge.serve_pages_of(size)
        return size

    def backend_connections(self) -> Sequence[BackendConnection]:
        return self._live_proxy().connection_records()

    async def cancel_order_at_backend(self, order_id: str) -> None:
        self._bridge.broker.cancel(DEFAULT_ACCOUNT, order_id)

    def backend_heard(self) -> Sequence[float]:
        return self._live_proxy().heard()

    def _live_proxy(self) -> FaultProxy:
        if self._proxy is None:
            raise RuntimeError("the harness is not started")
        return self._proxy
