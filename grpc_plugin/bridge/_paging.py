"""Which bars a GetCandles call serves: range resolution, limits, page sizes and page tokens.

A first request is resolved against the clock once: its range becomes bar indices [first, stop).
The page token carries the next index and the frozen stop, plus a fingerprint of the request, so
later pages neither move as time passes nor mix with another request's range. Bars themselves are a
pure function of their index, so pages always join up without gaps or overlaps.
"""

from __future__ import annotations

import base64
import binascii
import struct

import attrs

from grpc_plugin.bridge._candles import Interval
from grpc_plugin.bridge._errors import InvalidArgumentError

__all__ = [
    "DEFAULT_LIMIT",
    "HISTORY_START_MS",
    "MAX_LIMIT",
    "MAX_PAGE_SIZE",
    "CandlePage",
    "CandleRange",
    "resolve_page",
]

HISTORY_START_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: the simulated history starts here
MAX_PAGE_SIZE = 50_000  # about 1.5 MB of packed columns, well under the 4 MB default message limit
MAX_LIMIT = 1_000_000
DEFAULT_LIMIT = 1_000  # candles served when neither start_time nor limit is given

_TOKEN = struct.Struct(">BIqq")  # version, request fingerprint, next index, stop index
_TOKEN_VERSION = 1
_NS_PER_MS = 1_000_000


@attrs.frozen
class CandleRange:
    """What a GetCandles request asks for, in domain terms (times in ns since the Unix epoch)."""

    interval: Interval
    start_ns: int | None
    end_ns: int | None
    limit: int | None
    page_size: int
    page_token: str
    fingerprint: int  # identifies the request apart from page_size and page_token


@attrs.frozen
class CandlePage:
    """The bars [first, stop) of this page, and the token of the next page ("" if none)."""

    first: int
    stop: int
    next_page_token: str


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def resolve_page(query: CandleRange, now_ms: int) -> CandlePage:
    """Resolve `query` against the time `now_ms`; `InvalidArgumentError` explains a bad request."""
    bar_ns = query.interval.ms * _NS_PER_MS
    complete = now_ms // query.interval.ms  # bars before this index have closed
    history = _ceil_div(HISTORY_START_MS, query.interval.ms)
    if query.page_token:
        first, stop = _decode_token(query.page_token, query.fingerprint, history, complete)
    else:
        first, stop = _resolve_range(query, bar_ns, history, complete)
    size = MAX_PAGE_SIZE if query.page_size == 0 else min(query.page_size, MAX_PAGE_SIZE)
    page_stop = min(stop, first + size)
    token = _encode_token(query.fingerprint, page_stop, stop) if page_stop < stop else ""
    return CandlePage(first, page_stop, token)


def _resolve_range(query: CandleRange, bar_ns: int, history: int, complete: int) -> tuple[int, int]:
    if query.limit is not None and not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidArgumentError(f"limit must be between 1 and {MAX_LIMIT:,}, got {query.limit:,}")
    if query.start_ns is not None and query.end_ns is not None and query.end_ns < query.start_ns:
        raise InvalidArgumentError("end_time is before start_time")
    stop = complete if query.end_ns is None else min(complete, _ceil_div(query.end_ns, bar_ns))
    if query.start_ns is None:
        first = stop - (DEFAULT_LIMIT if query.limit is None else query.limit)
    else:
        first = _ceil_div(query.start_ns, bar_ns)
        if query.limit is not None:
            stop = min(stop, first + query.limit)
    first = max(first, history)
    return first, max(first, stop)


def _encode_token(fingerprint: int, next_index: int, stop: int) -> str:
    raw = _TOKEN.pack(_TOKEN_VERSION, fingerprint, next_index, stop)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_token(token: str, fingerprint: int, history: int, complete: int) -> tuple[int, int]:
    try:
        padded = token + "=" * (-len(token) % 4)
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        version, token_fingerprint, next_index, stop = _TOKEN.unpack(raw)
    except (binascii.Error, struct.error, UnicodeEncodeError, ValueError):
        raise InvalidArgumentError("page_token is malformed") from None
    if version != _TOKEN_VERSION or not history <= next_index < stop <= complete:
        raise InvalidArgumentError("page_token is malformed")
    if token_fingerprint != fingerprint:
        raise InvalidArgumentError(
            "page_token belongs to a different request: keep every field but page_size unchanged"
        )
    return next_index, stop
