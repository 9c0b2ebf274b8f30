"""Entities: exact numbers, validation of what a caller builds, and the enums' unknown values."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import attrs
import pytest

from broker_plugins import (
    Interval,
    InvalidRequestError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)


def test_order_request_keeps_numbers_exact() -> None:
    request = OrderRequest("AAPL", "buy", "10", price=0.1)
    assert request.quantity == Decimal(10)
    assert request.price == Decimal("0.1")  # what was typed, not 0.1000000000000000055...
    assert request.order_type is OrderType.LIMIT
    assert request.side is Side.BUY
    assert request.time_in_force is TimeInForce.DAY


def test_order_request_without_price_is_a_market_order() -> None:
    request = OrderRequest("005930", Side.SELL, 3)
    assert request.order_type is OrderType.MARKET
    assert request.price is None


def test_every_request_gets_a_unique_client_order_id() -> None:
    ids = {OrderRequest("005930", "buy", 1).client_order_id for _ in range(1000)}
    assert len(ids) == 1000


def test_caller_supplied_client_order_id_is_kept() -> None:
    assert (
        OrderRequest.market("005930", "buy", 1, client_order_id="strat-1:42").client_order_id == "strat-1:42"
    )


def test_constructors_for_market_and_limit_orders() -> None:
    limit = OrderRequest.limit("MSFT", "sell", 2, "412.35", time_in_force="gtc")
    assert (limit.order_type, limit.price, limit.time_in_force) == (
        OrderType.LIMIT,
        Decimal("412.35"),
        TimeInForce.GTC,
    )
    assert OrderRequest.market("MSFT", "sell", 2).order_type is OrderType.MARKET


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbol": ""}, "symbol must not be empty"),
        ({"symbol": "SAM SUNG"}, "malformed"),
        ({"symbol": "-005930"}, "malformed"),
        ({"symbol": "X" * 33}, "malformed"),
        ({"symbol": 5930}, "symbol must be a string"),
        ({"quantity": 0}, "quantity must be greater than zero"),
        ({"quantity": -5}, "quantity must be greater than zero"),
        ({"quantity": math.nan}, "quantity must be a finite number"),
        ({"quantity": "inf"}, "quantity must be a finite number"),
        ({"quantity": Decimal("NaN")}, "quantity must be a finite number"),
        ({"quantity": "ten"}, "quantity must be a number"),
        ({"quantity": True}, "quantity must be a number, got a bool"),
        ({"quantity": [1]}, "quantity must be a number, got list"),
        ({"price": math.inf}, "price must be a finite number"),
        ({"price": "-1"}, "price must be greater than zero"),
        ({"side": "hold"}, "side must be one of buy, sell"),
        ({"side": "unknown"}, "side must be a known value"),
        ({"order_type": OrderType.LIMIT}, "a limit order needs a price"),
        ({"order_type": OrderType.MARKET, "price": 100}, "a market order takes no price"),
        ({"time_in_force": "forever"}, "time_in_force must be one of day, gtc, ioc, fok"),
        ({"client_order_id": ""}, "client_order_id must be"),
        ({"client_order_id": "has space"}, "client_order_id must be"),
        ({"client_order_id": "x" * 65}, "client_order_id must be"),
    ],
)
def test_bad_order_requests_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"symbol": "005930", "side": "buy", "quantity": 1, **kwargs}
    with pytest.raises(InvalidRequestError, match=message):
        OrderRequest(**fields)  # type: ignore[arg-type]


def test_invalid_request_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="quantity"):
        OrderRequest("005930", "buy", -1)


def test_entities_are_frozen_and_slotted() -> None:
    request = OrderRequest("005930", "buy", 1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.quantity = Decimal(2)  # type: ignore[misc]
    assert not hasattr(request, "__dict__")


def test_interval_spelling_and_duration() -> None:
    assert Interval("15m") is Interval.M15
    assert Interval.H1.duration == timedelta(hours=1)
    assert f"{Interval.D1}" == "1d"


def test_order_status_knows_which_orders_are_open() -> None:
    assert {status for status in OrderStatus if status.is_open} == {
        OrderStatus.PENDING_NEW,
        OrderStatus.NEW,
        OrderStatus.PARTIALLY_FILLED,
    }


def test_position_unrealized_pnl() -> None:
    position = Position(symbol="AAPL", quantity=Decimal(-2), average_price=Decimal(100))
    assert position.unrealized_pnl is None
    marked = attrs.evolve(position, market_price=Decimal("90.5"))
    assert marked.unrealized_pnl == Decimal(19)
