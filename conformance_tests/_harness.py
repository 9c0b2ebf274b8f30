"""The harness protocol: what a gateway's author provides so the suite can drive and observe a backend.

The suite never trusts a gateway's own account of what it did. A harness runs the backend the gateway
talks to and answers, through a backdoor, what that backend received: when each request arrived and
which orders it created. Everything the suite asserts about rate limits and orders is read from there.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

from broker_plugins import CATEGORIES, IBrokerGateway, RateLimitsSpec

__all__ = ["HARNESS_VERSION", "BackendRequest", "BreakMode", "ConformanceHarness"]

HARNESS_VERSION = 1
"""The version of the harness protocol this suite speaks; a harness declares it in `version`."""


class BreakMode(str, enum.Enum):
    """How the harness breaks the connection between a gateway and its backend."""

    CUT = "cut"
    """Every connection is closed and new ones are refused, as when the backend's host goes down."""
    BLACKHOLE = "blackhole"
    """Connections stay open but nothing gets through, as when a peer vanishes without a word."""

    def __str__(self) -> str:
        return str(self.value)


def _check_category(_instance: object, _attribute: object, value: str) -> None:
    if value not in CATEGORIES:
        raise ValueError(f"BackendRequest category must be one of {', '.join(CATEGORIES)}, got {value!r}")


def _check_time(_instance: object, _attribute: object, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"BackendRequest time must be a finite time.monotonic() value, got {value!r}")


@attrs.frozen
class BackendRequest:
    """One request as the backend received it.

    `method` is the `IBrokerGateway` method the request serves (`get_quote`, `place_order`; opening a
    stream is one request named `stream_quotes`), `category` the rate-limit category it counts in, and
    `time` the `time.monotonic()` of its arrival at the backend.
    """

    method: str
    category: str = attrs.field(validator=_check_category)
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
        """The harness protocol version implemented: `HARNESS_VERSION`."""
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
        """Forget the recorded requests and order counts (orders on the book stay where they are)."""
        ...
