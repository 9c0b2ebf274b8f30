"""Exchanges: the exchange code a caller names, checked at the boundary."""

from __future__ import annotations

import re

from broker_plugins._errors import InvalidRequestError

__all__ = ["check_exchange"]

_EXCHANGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}")


def check_exchange(exchange: object) -> str:
    """An exchange code such as `KRX` or `NASDAQ` (1 to 16 of A-Z a-z 0-9 . _ -, starting with a
    letter or digit), or `InvalidRequestError`."""
    if not isinstance(exchange, str) or _EXCHANGE.fullmatch(exchange) is None:
        shown = repr(exchange) if len(repr(exchange)) <= 40 else f"{repr(exchange)[:37]}..."
        raise InvalidRequestError(
            f"exchange must be 1-16 of A-Z a-z 0-9 . _ -, starting with a letter or digit; got {shown}"
        )
    return exchange
