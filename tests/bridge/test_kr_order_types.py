"""The KRX order types on the reference bridge: best limit and conditional limit."""

from __future__ import annotations

from decimal import Decimal

import grpc
import pytest

from broker_plugins import Capability, InvalidRequestError, OrderRequest, OrderType
from grpc_plugin import GrpcBrokerGateway
from grpc_plugin._mapping import order_request_to
from grpc_plugin.bridge import _orders as paper
from grpc_plugin.bridge._broker import PaperBroker
from grpc_plugin.bridge._journal import MemoryJournal
from grpc_plugin.bridge._market import Market
from grpc_plugin.bridge._orders import NewOrder, OrderStatus, Side, TimeInForce
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import CALL_TIMEOUT, RICH, Client, dec, rpc_error
from tests.bridge.test_domain import Clock

SAMSUNG = "005930"
DAY = 86_400.0
START = 1_750_000_000.0  # 13:46:40 UTC: the day ends 10 h later


def _setup() -> tuple[Clock, Market, PaperBroker]:
    clock = Clock(START)
    market = Market(seed=1, tick_rate=10.0, clock=clock)
    return clock, market, PaperBroker(market, MemoryJournal(), initial_cash=RICH, clock_ns=clock.ns)


def _order(coid: str, kind: paper.OrderType, limit: Decimal | None, symbol: str = SAMSUNG) -> NewOrder:
    return NewOrder(coid, symbol, Side.BUY, kind, Decimal(1), limit, TimeInForce.DAY)


def test_a_best_limit_buy_is_priced_at_the_best_ask_and_a_retry_is_the_same_order() -> None:
    _, market, broker = _setup()
    ask = market.instrument(SAMSUNG).price(market.quote(SAMSUNG).ask)
    order, duplicate = broker.place("paper", _order("best-1", paper.OrderType.BEST_LIMIT, None))
    assert (order.limit_price, duplicate) == (ask, False)
    assert order.status is OrderStatus.FILLED  # marketable at the ask it took as its price
    again, duplicate = broker.place("paper", _order("best-1", paper.OrderType.BEST_LIMIT, None))
    assert (again.order_id, duplicate) == (order.order_id, True)


def test_the_kr_order_types_are_for_krx_instruments_only() -> None:
    _, _, broker = _setup()
    for kind, limit in ((paper.OrderType.BEST_LIMIT, None), (paper.OrderType.CONDITIONAL_LIMIT, Decimal(1))):
        order, _ = broker.place("paper", _order(f"us-{kind.value}", kind, limit, symbol="AAPL"))
        assert order.status is OrderStatus.REJECTED
        assert order.reject_reason == f"{kind.value} is a KRX order type; AAPL trades on NASDAQ"


def test_at_the_close_a_conditional_limit_becomes_a_market_order_and_a_limit_expires() -> None:
    clock, market, broker = _setup()
    lower = market.instrument(SAMSUNG).price(market.quote(SAMSUNG).lower_limit)
    conditional, _ = broker.place("paper", _order("cond-1", paper.OrderType.CONDITIONAL_LIMIT, lower))
    plain, _ = broker.place("paper", _order("plain-1", paper.OrderType.LIMIT, lower))
    assert conditional.status is plain.status is OrderStatus.NEW  # far under the market: both rest
    clock.now = (START // DAY + 1) * DAY + 1  # a second into the next day
    broker.on_quotes([market.quote(SAMSUNG)])
    closed = broker.get_order("paper", order_id=conditional.order_id)
    assert closed.status is OrderStatus.FILLED
    assert closed.average_fill_price is not None
    assert closed.average_fill_price > lower
    assert broker.get_order("paper", order_id=plain.order_id).status is OrderStatus.EXPIRED


def test_the_core_and_the_gateway_know_the_kr_order_types() -> None:
    best = OrderRequest(SAMSUNG, "buy", 1, order_type="best_limit")
    assert best.order_type.is_kr_extension
    assert order_request_to(best).order_type == tr.ORDER_TYPE_BEST_LIMIT
    conditional = OrderRequest(SAMSUNG, "buy", 1, price=50_000, order_type="conditional_limit")
    assert order_request_to(conditional).order_type == tr.ORDER_TYPE_CONDITIONAL_LIMIT
    assert Capability.KR_ORDER_TYPES in GrpcBrokerGateway.CAPABILITIES
    with pytest.raises(InvalidRequestError, match="a best_limit order takes no price"):
        OrderRequest(SAMSUNG, "buy", 1, price=50_000, order_type="best_limit")
    with pytest.raises(InvalidRequestError, match="a conditional-limit order needs a price"):
        OrderRequest(SAMSUNG, "buy", 1, order_type=OrderType.CONDITIONAL_LIMIT)
    with pytest.raises(InvalidRequestError, match="time_in_force must be day, not gtc"):
        OrderRequest(SAMSUNG, "buy", 1, price=50_000, order_type="conditional_limit", time_in_force="gtc")


@pytest.mark.parametrize(
    ("kind", "limit", "time_in_force", "message"),
    [
        (tr.ORDER_TYPE_BEST_LIMIT, 70_000, tr.TIME_IN_FORCE_UNSPECIFIED, "limit_price must be absent"),
        (
            tr.ORDER_TYPE_CONDITIONAL_LIMIT,
            None,
            tr.TIME_IN_FORCE_UNSPECIFIED,
            "limit_price is required for a conditional-limit order",
        ),
        (tr.ORDER_TYPE_CONDITIONAL_LIMIT, 70_000, tr.TIME_IN_FORCE_GTC, "time_in_force must be DAY"),
    ],
)
async def test_malformed_kr_orders_are_invalid_arguments(
    client: Client,
    kind: tr.OrderType.ValueType,
    limit: int | None,
    time_in_force: tr.TimeInForce.ValueType,
    message: str,
) -> None:
    request = tr.PlaceOrderRequest(
        client_order_id="kr-bad",
        symbol=SAMSUNG,
        side=tr.SIDE_BUY,
        order_type=kind,
        quantity=dec(1),
        limit_price=None if limit is None else dec(limit),
        time_in_force=time_in_force,
    )
    error = await rpc_error(client.trading.PlaceOrder(request, timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (error.details() or "")
