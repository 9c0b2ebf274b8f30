"""The harness protocol: what a gateway's author provides so the suite can drive and observe a backend.

The suite never trusts a gateway's own account of what it did. A harness runs the backend the gateway
talks to and answers, through a backdoor, what that backend received: when each request arrived and
which orders it created. Everything the suite asserts about rate limits and orders is read from there.

Version 1 (`ConformanceHarness`) is what every harness has. Version 2 adds optional members
(`HARNESS_V2_MEMBERS`): failure injection, a forced page size, connection records, what the backend
served, a backend that does not de-duplicate orders, orders changed from the backend's side, and what
the backend heard. A harness offers those its backend can do; a clause that needs one it lacks skips,
naming the member. Actions (`start`, `break_connection`, `fail_next_requests`, ...) are coroutines;
records (`backend_requests`, `backend_connections`, ...) are plain methods.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

from broker_plugins import CATEGORIES, IBrokerGateway, RateLimitsSpec

__all__ = [
    "HARNESS_V2_MEMBERS",
    "HARNESS_VERSION",
    "BackendConnection",
    "BackendRequest",
    "BreakMode",
    "ConformanceHarness",
    "Failure",
    "ServedValue",
]

HARNESS_VERSION = 2
"""The newest harness protocol version this suite speaks; it speaks every version from 1 up to it."""

HARNESS_V2_MEMBERS = (
    "fail_next_requests",
    "injectable_failures",
    "force_page_size",
    "backend_connections",
    "served_values",
    "disable_deduplication",
    "cancel_order_at_backend",
    "backend_heard",
)
"""The optional members of harness protocol version 2, each described in the README's harness table."""


class BreakMode(str, enum.Enum):
    """How the harness breaks the connection between a gateway and its backend."""

    CUT = "cut"
    """Every connection is closed and new ones are refused, as when the backend's host goes down."""
    BLACKHOLE = "blackhole"
    """Connections stay open but nothing gets through, as when a peer vanishes without a word."""

    def __str__(self) -> str:
        return str(self.value)


class Failure(str, enum.Enum):
    """How the backend fails a request on purpose (`fail_next_requests`, harness protocol 2).

    The backend receives and records the request, then answers with the failure without acting on it.
    """

    UNAVAILABLE = "unavailable"
    """A transient refusal: the backend is briefly unable to serve (a gRPC UNAVAILABLE, an HTTP 503)."""
    RATE_LIMITED = "rate_limited"
    """A refusal as over budget, without saying for how long (a RESOURCE_EXHAUSTED, an HTTP 429)."""
    RATE_LIMITED_RETRY_AFTER = "rate_limited_retry_after"
    """A refusal as over budget that asks the caller to wait `retry_after` seconds (a Retry-After)."""

    def __str__(self) -> str:
        return str(self.value)


def _check_category(_instance: object, _attribute: object, value: str) -> None:
    if value not in CATEGORIES:
        raise ValueError(f"BackendRequest category must be one of {', '.join(CATEGORIES)}, got {value!r}")


def _check_time(_instance: object, _attribute: object, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"times must be finite time.monotonic() values, got {value!r}")


def _check_optional_time(instance: object, attribute: object, value: float | None) -> None:
    if value is not None:
        _check_time(instance, attribute, value)


@attrs.frozen
class BackendRequest:
    """One request as the backend received it.

    `method` is the `IBrokerGateway` method the request serves (`get_quote`, `place_order`; opening a
    stream is one request named `stream_quotes` or `stream_order_updates`; a page of a paged read is
    one request), `category` the rate-limit category it counts in, and `time` the `time.monotonic()`
    of its arrival at the backend. A request the backend refused (an injected failure, its own budget)
    is recorded too: it arrived.
    """

    method: str
    category: str = attrs.field(validator=_check_category)
    time: float = attrs.field(validator=_check_time)


@attrs.frozen
class BackendConnection:
    """One connection (or connection attempt) that reached the backend or the proxy in front of it.

    `opened` is the `time.monotonic()` it was accepted; `closed` when it ended, None while it is open.
    An attempt refused during a cut is recorded with `closed` at (or right after) `opened`.
    """

    opened: float = attrs.field(validator=_check_time)
    closed: float | None = attrs.field(default=None, validator=_check_optional_time)


@attrs.frozen
class ServedValue:
    """One answer the backend sent, as the value the gateway must hand to its caller.

    `method` names the request as in `BackendRequest`; `value` is the domain value the answer
    carries: a `Quote`, an `Order`, a `Balance`, a list of `Candle` for one page, a list of `Order`
    or of `Position`, and for streams one record per pushed `Quote` or `OrderUpdate`. `time` is the
    `time.monotonic()` it was sent.
    """

    method: str
    value: object
    time: float = attrs.field(validator=_check_time)


@runtime_checkable
class ConformanceHarness(Protocol):
    """A backend for one gateway, which the suite starts, breaks, restores and questions (version 1).

    The suite requests a harness per test (the `broker_harness` fixture), awaits `start()`, runs the
    test, then awaits `stop()`, which releases everything the harness holds.

    The backdoor (`backend_requests`, `backend_orders`, `reset_backend_records`) reports requests of
    the broker API only: connection handshakes, keepalives and health probes are not recorded.
    """

    @property
    def version(self) -> int:
        """The harness protocol version implemented: 1, or 2 with some of `HARNESS_V2_MEMBERS`."""
        ...

    @property
    def gateway_name(self) -> str:
        """The name the gateway is registered under; `gateway.name` must equal it."""
        ...

    @property
    def symbol(self) -> str:
        """An instrument the backend knows and quotes, used for every market-data call and order."""
        ...

    @property
    def break_modes(self) -> frozenset[BreakMode]:
        """The ways `break_connection` can break the link; `CUT` is mandatory, `BLACKHOLE` optional."""
        ...

    @property
    def half_open_bound(self) -> float | None:
        """Seconds within which the gateway detects a black-holed connection, when it claims to."""
        ...

    async def start(self) -> None:
        """Start the backend (and any fault proxy in front of it)."""
        ...

    async def stop(self) -> None:
        """Stop the backend and release every task, socket and file it holds."""
        ...

    def create_gateway(self, rate_limits: RateLimitsSpec) -> IBrokerGateway:
        """A new, unconnected gateway pointed at the backend, limited by exactly `rate_limits`."""
        ...

    async def break_connection(self, mode: BreakMode) -> None:
        """Break the link between every gateway and the backend, in `mode`; the backend keeps running."""
        ...

    async def restore_connection(self) -> None:
        """Let gateways reach the backend again (connections black-holed before are dropped)."""
        ...

    async def set_latency(self, seconds: float) -> None:
        """Delay everything between gateways and the backend by `seconds`, each way (0 for none)."""
        ...

    def backend_requests(self) -> Sequence[BackendRequest]:
        """Every request the backend received since the last reset, in order of arrival."""
        ...

    def backend_orders(self) -> Mapping[str, int]:
        """How many orders the backend created under each client_order_id since the last reset."""
        ...

    def reset_backend_records(self) -> None:
        """Forget every record (requests, orders created, and the version-2 records); the book stays."""
        ...


class HarnessV2(ConformanceHarness, Protocol):
    """The optional members of harness protocol version 2; a harness has those its backend can do.

    Typing only: the suite looks each member up on its own (`getattr`), never checks the whole.
    """

    @property
    def injectable_failures(self) -> frozenset[Failure]:
        """The failures `fail_next_requests` can inject."""
        ...

    async def fail_next_requests(
        self, count: int, failure: Failure, retry_after: float | None = None
    ) -> None:
        """Make the backend fail the next `count` requests it receives (any method), as `failure`
        says; `retry_after` (seconds) comes with `Failure.RATE_LIMITED_RETRY_AFTER`."""
        ...

    async def force_page_size(self, size: int) -> int:
        """Serve at most `size` candles per request from now on; returns the page size in force (a
        backend that cannot go that low keeps its smallest and says which)."""
        ...

    def backend_connections(self) -> Sequence[BackendConnection]:
        """Every connection (and refused attempt) that reached the backend since the last reset."""
        ...

    def served_values(self) -> Sequence[ServedValue]:
        """Every answer the backend sent since the last reset, in order."""
        ...

    async def disable_deduplication(self) -> None:
        """From now on the backend creates an order for every place_order request it receives, even
        under a client_order_id it has seen (a broker without idempotent order entry)."""
        ...

    async def cancel_order_at_backend(self, order_id: str) -> None:
        """Cancel a working order from the backend's side (as a broker's desk or an expiry does),
        producing an order update; works while the link is broken."""
        ...

    def backend_heard(self) -> Sequence[float]:
        """The `time.monotonic()` of everything from a gateway that reached the backend since the last
        reset: requests, and also the probes, pings and keepalives `backend_requests` leaves out."""
        ...
