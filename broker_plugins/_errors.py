"""The error tree every gateway speaks, whatever its transport.

```
BrokerError
├── BrokerUnavailableError        (ConnectionError)  server down, not connected, degraded
│   └── SharedBudgetUnavailableError                 a shared rate budget's store is unreachable
├── BrokerTimeoutError            (TimeoutError)     the call's deadline passed
├── RateLimitExceededError                           the broker refused: over budget
├── AuthenticationError           (PermissionError)  bad or missing credentials
├── InvalidRequestError           (ValueError)       bad input: symbol, quantity, option
├── NotFoundError                 (LookupError)      no such order, instrument, ...
├── OrderRejectedError                               the broker refused the order
├── OrderOutcomeUnknownError                         the order may or may not exist
├── BrokerInternalError                              the broker (or its bridge) failed on its side
└── PluginError
    ├── UnknownGatewayError       (LookupError)      no plugin registered that name
    ├── DuplicateGatewayError     (ValueError)       two plugins registered one name
    └── PluginLoadError           (ImportError)      a plugin failed to import or register
```

Leaves also inherit the fitting builtin, so callers can catch them the ordinary way.
A transport's own exceptions (a gRPC status, a socket error) never reach a host.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BrokerError",
    "BrokerInternalError",
    "BrokerTimeoutError",
    "BrokerUnavailableError",
    "DuplicateGatewayError",
    "InvalidRequestError",
    "NotFoundError",
    "OrderOutcomeUnknownError",
    "OrderRejectedError",
    "PluginError",
    "PluginLoadError",
    "RateLimitExceededError",
    "SharedBudgetUnavailableError",
    "UnknownGatewayError",
]


class BrokerError(Exception):
    """Base of every error a gateway, the registry or the connection layer raises.

    Every error in the tree survives `pickle` and `copy` with its attributes (hosts hand errors
    between processes and threads), whatever keyword-only arguments its constructor takes.
    """

    def __reduce__(self) -> tuple[object, ...]:
        return _rebuild, (type(self), self.args, dict(self.__dict__))


class BrokerUnavailableError(BrokerError, ConnectionError):
    """The broker cannot be reached now; the call did not take effect."""


class SharedBudgetUnavailableError(BrokerUnavailableError):
    """A rate budget shared across processes cannot be reached, so no permit was granted and the
    call was not sent (the budget is never exceeded in its absence)."""


class BrokerTimeoutError(BrokerError, TimeoutError):
    """The call did not complete within its deadline."""


class RateLimitExceededError(BrokerError):
    """The broker refused the call because the account is over its budget."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: Seconds the broker asked us to wait before the next call, when it said.
        self.retry_after = retry_after


class AuthenticationError(BrokerError, PermissionError):
    """The broker rejected the credentials."""


class InvalidRequestError(BrokerError, ValueError):
    """The request is malformed: a bad symbol, quantity, price or option."""


class NotFoundError(BrokerError, LookupError):
    """The order, instrument or other object asked for does not exist."""


class OrderRejectedError(BrokerError):
    """The broker received the order and refused it (cash, limits, market state)."""

    def __init__(self, message: str, *, client_order_id: str, reason: str = "") -> None:
        super().__init__(message)
        self.client_order_id = client_order_id
        self.reason = reason


class OrderOutcomeUnknownError(BrokerError):
    """The order may or may not have reached the broker; look it up by `client_order_id`."""

    def __init__(self, message: str, *, client_order_id: str) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id


class BrokerInternalError(BrokerError):
    """The broker, or the bridge in front of it, failed to serve the call: a fault on its side.

    Repeating the same call is unlikely to help until the broker's side is fixed.
    """


class PluginError(BrokerError):
    """Base of errors about discovering, loading and building gateway plugins."""


class UnknownGatewayError(PluginError, LookupError):
    """No loaded plugin registered a gateway under that name."""


class DuplicateGatewayError(PluginError, ValueError):
    """Two plugins registered a gateway under the same name."""

    def __init__(self, message: str, *, gateway_name: str, plugins: tuple[str, ...]) -> None:
        super().__init__(message)
        self.gateway_name = gateway_name
        self.plugins = plugins


class PluginLoadError(PluginError, ImportError):
    """A plugin failed to import or to register its gateways; the cause is chained."""

    def __init__(self, message: str, *, plugin_name: str, distribution: str | None = None) -> None:
        super().__init__(message)
        self.plugin_name = plugin_name
        self.distribution = distribution


def _rebuild(kind: type[BrokerError], args: tuple[object, ...], state: dict[str, object]) -> BrokerError:
    """An error of `kind` with `args` and attributes `state`, without calling its constructor."""
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error
