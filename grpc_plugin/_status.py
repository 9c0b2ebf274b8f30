"""gRPC statuses mapped to the `BrokerError` tree; no `grpc.RpcError` reaches a host."""

from __future__ import annotations

import grpc

from broker_plugins import (
    AuthenticationError,
    BrokerError,
    BrokerTimeoutError,
    BrokerUnavailableError,
    InvalidRequestError,
    NotFoundError,
    RateLimitExceededError,
)

__all__ = ["RETRY_AFTER_KEY", "retry_after", "to_broker_error"]

RETRY_AFTER_KEY = "retry-after-ms"

_PLAIN: dict[grpc.StatusCode, type[BrokerError]] = {
    grpc.StatusCode.UNAVAILABLE: BrokerUnavailableError,
    grpc.StatusCode.CANCELLED: BrokerUnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: BrokerTimeoutError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: AuthenticationError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequestError,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
}


def retry_after(error: grpc.aio.AioRpcError) -> float | None:
    """Seconds the bridge asked us to wait (its `retry-after-ms` trailer), if it said."""
    for key, value in error.trailing_metadata() or ():
        if key == RETRY_AFTER_KEY:
            try:
                return max(0.0, int(value) / 1000)
            except (TypeError, ValueError):
                return None
    return None


def to_broker_error(
    error: grpc.aio.AioRpcError, *, method: str, target: str, secret: str | None
) -> BrokerError:
    """The `BrokerError` for a failed call, naming the method and the target, never the secret."""
    code = error.code()
    details = error.details() or code.name
    if secret:
        details = details.replace(secret, "***")
    message = f"{method} on {target} failed: {details} ({code.name})"
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return RateLimitExceededError(message, retry_after=retry_after(error))
    return _PLAIN.get(code, BrokerError)(message)
