"""broker_plugins: the host-agnostic core of the broker gateway layer.

A host asks a `BrokerRegistry` for a gateway by name and programs against `IBrokerGateway`;
plugins provide gateways through the `register_broker_gateways` hook.
"""

import logging
from typing import TYPE_CHECKING

from broker_plugins._backoff import Backoff
from broker_plugins._base import GatewayBase
from broker_plugins._calendar import MarketCalendar, SessionKind, TradingSession, check_exchange
from broker_plugins._checks import check_symbol, to_decimal
from broker_plugins._entities import (
    Balance,
    Candle,
    Instrument,
    Number,
    Order,
    OrderRequest,
    OrderUpdate,
    Position,
    Quote,
)
from broker_plugins._enums import (
    Capability,
    ConnectionState,
    Interval,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from broker_plugins._errors import (
    AuthenticationError,
    BrokerError,
    BrokerInternalError,
    BrokerTimeoutError,
    BrokerUnavailableError,
    DuplicateGatewayError,
    InvalidRequestError,
    NotFoundError,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    PluginError,
    PluginLoadError,
    RateLimitExceededError,
    SharedBudgetUnavailableError,
    UnknownGatewayError,
)
from broker_plugins._gateway import HealthStatus, IBrokerGateway, StateChange, StateListener
from broker_plugins._limiter import CategoryStats, Limiter, LimiterStats, ObservableLimiter
from broker_plugins._manager import BrokerConnectionManager, ConnectionStatus
from broker_plugins._options import GatewayOption
from broker_plugins._ratelimit import CATEGORIES, RateLimit, RateLimiter, RateLimitsSpec
from broker_plugins._registry import BrokerRegistry
from broker_plugins._registry_types import GatewayFactory, GatewayInfo, RegisterGateway
from broker_plugins._staleness import StaleListener, StaleStream
from broker_plugins._state import ConnectionStateTracker
from broker_plugins.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from broker_plugins._redis_limiter import RedisRateLimiter


def __getattr__(name: str) -> object:
    # Imported on first use: most hosts never share a budget through Redis.
    if name == "RedisRateLimiter":
        from broker_plugins._redis_limiter import RedisRateLimiter  # noqa: PLC0415

        return RedisRateLimiter
    raise AttributeError(f"module 'broker_plugins' has no attribute {name!r}")


# A library reports through `logging` and leaves the handlers to the host.
logging.getLogger("broker_plugins").addHandler(logging.NullHandler())

__all__ = [
    "CATEGORIES",
    "AuthenticationError",
    "Backoff",
    "Balance",
    "BrokerConnectionManager",
    "BrokerError",
    "BrokerInternalError",
    "BrokerRegistry",
    "BrokerTimeoutError",
    "BrokerUnavailableError",
    "Candle",
    "Capability",
    "CategoryStats",
    "ConnectionState",
    "ConnectionStateTracker",
    "ConnectionStatus",
    "DuplicateGatewayError",
    "GatewayBase",
    "GatewayFactory",
    "GatewayInfo",
    "GatewayOption",
    "HealthStatus",
    "IBrokerGateway",
    "Instrument",
    "Interval",
    "InvalidRequestError",
    "Limiter",
    "LimiterStats",
    "MarketCalendar",
    "NotFoundError",
    "Number",
    "ObservableLimiter",
    "Order",
    "OrderOutcomeUnknownError",
    "OrderRejectedError",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "PluginError",
    "PluginLoadError",
    "Position",
    "Quote",
    "RateLimit",
    "RateLimitExceededError",
    "RateLimiter",
    "RateLimitsSpec",
    "RedisRateLimiter",
    "RegisterGateway",
    "SessionKind",
    "SharedBudgetUnavailableError",
    "Side",
    "StaleListener",
    "StaleStream",
    "StateChange",
    "StateListener",
    "TimeInForce",
    "TradingSession",
    "UnknownGatewayError",
    "check_exchange",
    "check_symbol",
    "hookimpl",
    "hookspec",
    "to_decimal",
]
