"""Caller input, checked at the boundary: every argument of every gateway method, once, for every plugin.

Each check returns the value in its canonical form or raises `InvalidRequestError` naming the field,
whatever it is handed: a gateway never passes a malformed value on to its transport.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

from broker_plugins._enums import Interval
from broker_plugins._errors import InvalidRequestError

__all__ = [
    "MAX_CANDLES",
    "check_candle_range",
    "check_interval",
    "check_order_id",
    "check_positive",
    "check_symbol",
    "check_symbols",
    "to_decimal",
]

MAX_CANDLES = 1_000_000
"""The most candles one `get_candles` call may ask for."""
MAX_DIGITS = 18
"""Significant digits a price or quantity may have: every gateway can carry 18 exactly (int64)."""
_MAGNITUDE = 10**MAX_DIGITS
_FINEST_EXPONENT = -MAX_DIGITS
_MAX_TEXT = 64
"""A number given as text longer than this is refused before it is parsed."""

_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:^=-]{0,31}")
_ORDER_ID = re.compile(r"[\x21-\x7e]{1,128}")


def _shown(value: object) -> str:
    """A bounded rendering of a caller's value for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def to_decimal(value: object, *, field: str) -> Decimal:
    """Convert a caller's number to an exact, finite `Decimal` a broker can carry, or raise
    `InvalidRequestError` naming `field`.

    A float is taken as the shortest text that round-trips (`0.1` becomes `Decimal("0.1")`, not the
    binary approximation), which is what the caller typed. The value must have at most 18
    significant digits, be below 10**18 in magnitude and be no finer than 10**-18.
    """
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool):
        raise InvalidRequestError(f"{field} must be a number, got a bool")
    elif isinstance(value, int):
        if abs(value) >= _MAGNITUDE:
            raise InvalidRequestError(f"{field} must be below 10**{MAX_DIGITS} in magnitude")
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequestError(f"{field} must be a finite number, got {value!r}")
        number = Decimal(repr(value))
    elif isinstance(value, str):
        if len(value) > _MAX_TEXT:
            raise InvalidRequestError(f"{field} must be a number of at most {_MAX_TEXT} characters")
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidRequestError(f"{field} must be a number, got {_shown(value)}") from None
    else:
        raise InvalidRequestError(f"{field} must be a number, got {type(value).__name__}")
    if not number.is_finite():
        raise InvalidRequestError(f"{field} must be a finite number, got {_shown(value)}")
    return _carriable(number, field)


def _carriable(number: Decimal, field: str) -> Decimal:
    if number.is_zero():
        return number
    _sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    # Significant digits without the trailing zeros, counted exactly (no context rounding).
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0:
        significant -= 1
        exponent += 1
    if number.adjusted() >= MAX_DIGITS:
        raise InvalidRequestError(
            f"{field} must be below 10**{MAX_DIGITS} in magnitude, got {_shown(number)}"
        )
    if exponent < _FINEST_EXPONENT:
        raise InvalidRequestError(f"{field} must be no finer than 1e-{MAX_DIGITS}, got {_shown(number)}")
    if significant > MAX_DIGITS:
        raise InvalidRequestError(
            f"{field} must have at most {MAX_DIGITS} significant digits, got {_shown(number)}"
        )
    return number


def check_positive(value: object, field: str) -> Decimal:
    """`value` as a `Decimal` greater than zero (see `to_decimal`), or `InvalidRequestError`."""
    number = to_decimal(value, field=field)
    if number <= 0:
        raise InvalidRequestError(f"{field} must be greater than zero, got {number}")
    return number


def check_symbol(symbol: object) -> str:
    """Return `symbol` if it is a well-formed instrument code, or raise `InvalidRequestError`."""
    if not isinstance(symbol, str):
        raise InvalidRequestError(f"symbol must be a string, got {type(symbol).__name__}")
    if not symbol:
        raise InvalidRequestError("symbol must not be empty")
    if _SYMBOL.fullmatch(symbol) is None:
        raise InvalidRequestError(
            f"symbol {_shown(symbol)} is malformed: use 1-32 letters, digits or . _ / : ^ = -, "
            "starting with a letter or digit"
        )
    return symbol


def check_symbols(symbols: object) -> tuple[str, ...]:
    """A non-empty sequence of symbols (a single string counts as one), without repeats, in order."""
    if isinstance(symbols, str):
        return (check_symbol(symbols),)
    if not isinstance(symbols, Sequence) and not isinstance(symbols, set | frozenset):
        raise InvalidRequestError(f"symbols must be a list of strings, got {type(symbols).__name__}")
    wanted = tuple(dict.fromkeys(check_symbol(symbol) for symbol in symbols))
    if not wanted:
        raise InvalidRequestError("at least one symbol is needed")
    if len(wanted) > 1000:
        raise InvalidRequestError(f"at most 1000 symbols per stream, got {len(wanted)}")
    return wanted


def check_order_id(order_id: object) -> str:
    """A broker order id: 1-128 printable ASCII characters, no spaces."""
    if not isinstance(order_id, str):
        raise InvalidRequestError(f"order_id must be a string, got {type(order_id).__name__}")
    if _ORDER_ID.fullmatch(order_id) is None:
        raise InvalidRequestError(
            f"order_id must be 1-128 printable ASCII characters without spaces, got {_shown(order_id)}"
        )
    return order_id


def check_interval(interval: object) -> Interval:
    """A candle `Interval`, given as one or as its spelling (`"5m"`)."""
    try:
        return Interval(interval)
    except ValueError:
        allowed = ", ".join(i.value for i in Interval)
        raise InvalidRequestError(f"interval must be one of {allowed}; got {_shown(interval)}") from None


def _check_time(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidRequestError(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError(f"{field} ({value.isoformat()}) has no timezone; give an aware (UTC) time")
    return value


def check_candle_range(
    start: object, end: object, limit: object
) -> tuple[datetime | None, datetime | None, int | None]:
    """`start` and `end` as aware datetimes (or None), `end` after `start`, `limit` 1 to MAX_CANDLES."""
    checked_start = _check_time(start, "start")
    checked_end = _check_time(end, "end")
    if checked_start is not None and checked_end is not None and checked_end <= checked_start:
        raise InvalidRequestError(
            f"end ({checked_end.isoformat()}) must be after start ({checked_start.isoformat()})"
        )
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CANDLES
    ):
        raise InvalidRequestError(
            f"limit must be a whole number from 1 to {MAX_CANDLES:,}, got {_shown(limit)}"
        )
    return checked_start, checked_end, limit
