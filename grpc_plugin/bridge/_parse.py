"""Protobuf requests to domain values, with the syntax checks that make a request malformed.

Everything here raises `InvalidArgumentError` with a message naming the field. Business rules
(lot sizes, ticks, cash) are the broker's and end as a REJECTED order instead. A message quotes at
most `SHOWN_CHARACTERS` of any string the client sent (`shown`): an echoed 60,000-character id
would make a trailer that gRPC clients refuse, turning INVALID_ARGUMENT into RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from grpc_plugin.bridge._candles import Interval
from grpc_plugin.bridge._convert import INTERVALS, ORDER_TYPES, SIDES, TIMES_IN_FORCE
from grpc_plugin.bridge._errors import InvalidArgumentError
from grpc_plugin.bridge._orders import NewOrder, OrderType, Side, TimeInForce
from grpc_plugin.generated.broker.bridge.v1 import common_pb2, trading_pb2

__all__ = [
    "INTERVAL_BY_NUMBER",
    "SHOWN_CHARACTERS",
    "client_order_id",
    "currency",
    "decimal",
    "enum_value",
    "new_order",
    "order_id",
    "shown",
    "symbol",
    "timestamp_ns",
]

_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:^=-]{0,31}")
_CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ORDER_ID = re.compile(r"[!-~]{1,64}")  # printable ASCII: the shape of the ids bridges issue
_CURRENCY = re.compile(r"[A-Z]{3}")
_MAX_EXPONENT = 18  # beyond this a Decimal message is a mistake (or an attack), not a price
_MAX_MAGNITUDE = Decimal(10) ** 18  # no price or quantity is this large; arithmetic stays exact
# Timestamp's own range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799
SHOWN_CHARACTERS = 40

_D = TypeVar("_D")
INTERVAL_BY_NUMBER: dict[int, Interval] = {int(number): value for value, number in INTERVALS.items()}
_PRICED = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.CONDITIONAL_LIMIT})
_SIDE_BY_NUMBER: dict[int, Side] = {int(number): side for side, number in SIDES.items()}
_TYPE_BY_NUMBER: dict[int, OrderType] = {int(number): kind for kind, number in ORDER_TYPES.items()}
_TIF_BY_NUMBER: dict[int, TimeInForce] = {int(number): tif for tif, number in TIMES_IN_FORCE.items()}


def shown(value: str) -> str:
    """`value` quoted for an error message: at most `SHOWN_CHARACTERS` of it, and its length."""
    if len(value) <= SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:SHOWN_CHARACTERS]!r}... ({len(value):,} characters)"


def symbol(value: str, field: str = "symbol") -> str:
    """A well-formed instrument code (it may still be unknown to the market)."""
    if not value:
        raise InvalidArgumentError(f"{field} is required")
    if _SYMBOL.fullmatch(value) is None:
        raise InvalidArgumentError(
            f"{field} {shown(value)} is malformed: use 1 to 32 of A-Z a-z 0-9 . _ / : ^ = -, "
            "starting with a letter or digit"
        )
    return value


def client_order_id(value: str) -> str:
    """A well-formed client order id."""
    if not value:
        raise InvalidArgumentError("client_order_id is required")
    if _CLIENT_ORDER_ID.fullmatch(value) is None:
        raise InvalidArgumentError(
            f"client_order_id {shown(value)} is malformed: use 1 to 64 of A-Z a-z 0-9 . _ : -"
        )
    return value


def order_id(value: str) -> str:
    """A well-formed broker order id (it may still be unknown)."""
    if not value:
        raise InvalidArgumentError("order_id is required")
    if _ORDER_ID.fullmatch(value) is None:
        raise InvalidArgumentError(
            f"order_id {shown(value)} is malformed: order ids are 1 to 64 printable ASCII characters"
        )
    return value


def currency(value: str) -> str:
    """A well-formed ISO 4217 currency code (the account may still hold none of it)."""
    if _CURRENCY.fullmatch(value) is None:
        raise InvalidArgumentError(f"currency {shown(value)} is not an ISO 4217 code such as 'KRW'")
    return value


def enum_value(number: int, table: Mapping[int, _D], field: str) -> _D:
    """The domain member for a proto enum number; unspecified and unknown numbers are rejected."""
    member = table.get(number)
    if member is None:
        problem = "is required" if number == 0 else f"has unknown value {number}"
        raise InvalidArgumentError(f"{field} {problem}")
    return member


def decimal(message: common_pb2.Decimal, field: str) -> Decimal:
    """The exact value of a Decimal message: exponent within +-18, magnitude below 10^18."""
    if not -_MAX_EXPONENT <= message.exponent <= _MAX_EXPONENT:
        raise InvalidArgumentError(
            f"{field}.exponent must be between -{_MAX_EXPONENT} and {_MAX_EXPONENT}, got {message.exponent}"
        )
    # A sint64 mantissa has at most 19 digits, within the 28 of the default context: exact.
    value = Decimal(message.mantissa).scaleb(message.exponent)
    if abs(value) >= _MAX_MAGNITUDE:
        raise InvalidArgumentError(f"{field} must be below 10^18 in magnitude, got {value:.3E}")
    return value


def timestamp_ns(message: Timestamp, field: str) -> int:
    """Nanoseconds since the Unix epoch of a Timestamp message."""
    if not 0 <= message.nanos < 1_000_000_000:
        raise InvalidArgumentError(f"{field}.nanos must be in [0, 1e9), got {message.nanos}")
    if not _MIN_SECONDS <= message.seconds <= _MAX_SECONDS:
        raise InvalidArgumentError(f"{field} must lie between 0001-01-01 and 9999-12-31")
    return message.seconds * 1_000_000_000 + message.nanos


def new_order(request: trading_pb2.PlaceOrderRequest) -> NewOrder:
    """The domain order of a PlaceOrder request."""
    order_type = enum_value(request.order_type, _TYPE_BY_NUMBER, "order_type")
    has_price, has_stop = request.HasField("limit_price"), request.HasField("stop_price")
    kind = order_type.value.replace("_", "-")
    if order_type in _PRICED and not has_price:
        raise InvalidArgumentError(f"limit_price is required for a {kind} order")
    if order_type not in _PRICED and has_price:
        raise InvalidArgumentError(f"limit_price must be absent for a {kind} order")
    if order_type.is_stop and not has_stop:
        raise InvalidArgumentError(f"stop_price is required for a {kind} order")
    if not order_type.is_stop and has_stop:
        raise InvalidArgumentError(f"stop_price must be absent for a {kind} order")
    if not request.HasField("quantity"):
        raise InvalidArgumentError("quantity is required")
    tif_number = request.time_in_force
    if order_type.is_stop and tif_number in (trading_pb2.TIME_IN_FORCE_IOC, trading_pb2.TIME_IN_FORCE_FOK):
        raise InvalidArgumentError(
            f"a {kind} order waits for its stop price: time_in_force must be DAY or GTC"
        )
    if order_type is OrderType.CONDITIONAL_LIMIT and tif_number not in (0, trading_pb2.TIME_IN_FORCE_DAY):
        raise InvalidArgumentError("a conditional-limit order works for the day: time_in_force must be DAY")
    return NewOrder(
        client_order_id=client_order_id(request.client_order_id),
        symbol=symbol(request.symbol),
        side=enum_value(request.side, _SIDE_BY_NUMBER, "side"),
        order_type=order_type,
        quantity=decimal(request.quantity, "quantity"),
        limit_price=decimal(request.limit_price, "limit_price") if has_price else None,
        time_in_force=TimeInForce.DAY
        if tif_number == 0
        else enum_value(tif_number, _TIF_BY_NUMBER, "time_in_force"),
        stop_price=decimal(request.stop_price, "stop_price") if has_stop else None,
    )
