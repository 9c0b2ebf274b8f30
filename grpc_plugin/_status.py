"""gRPC statuses mapped to the `BrokerError` tree; no `grpc.RpcError` reaches a host.

| status | error |
| --- | --- |
| CANCELLED, UNAVAILABLE, ABORTED | `BrokerUnavailableError` (the call did not complete; try again) |
| DEADLINE_EXCEEDED | `BrokerTimeoutError` |
| INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION, ALREADY_EXISTS | `InvalidRequestError` |
| NOT_FOUND | `NotFoundError` |
| UNAUTHENTICATED, PERMISSION_DENIED | `AuthenticationError` |
| RESOURCE_EXHAUSTED | `RateLimitExceededError`, `retry_after` from the `retry-after-ms` trailer |
| UNKNOWN, INTERNAL, DATA_LOSS, UNIMPLEMENTED | `BrokerInternalError` (UNIMPLEMENTED: `UnimplementedError`) |

The mapping is pure: reporting a failure to the connection or the limiter is the caller's business.
"""

from __future__ import annotations

import math

import grpc

from broker_plugins import (
    AuthenticationError,
    BrokerError,
    BrokerInternalError,
    BrokerTimeoutError,
    BrokerUnavailableError,
    InvalidRequestError,
    NotFoundError,
    RateLimitExceededError,
)

__all__ = [
    "ERRORS",
    "RETRY_AFTER_KEY",
    "TOKEN_HINT",
    "UnimplementedError",
    "connect_failure",
    "definite_failure",
    "retry_after",
    "to_broker_error",
]

RETRY_AFTER_KEY = "retry-after-ms"
TOKEN_HINT = "pass the bridge's token as token=... (brokerctl: --token or BROKERCTL_TOKEN)"  # noqa: S105
_MAX_DETAILS = 300
"""Characters of a bridge's error details shown in a message: a bridge may echo a huge input."""


class UnimplementedError(BrokerInternalError):
    """UNIMPLEMENTED: the bridge does not serve the method (one older than it, for an optional RPC)."""


_S = grpc.StatusCode
ERRORS: dict[grpc.StatusCode, type[BrokerError]] = {
    _S.CANCELLED: BrokerUnavailableError,
    _S.UNAVAILABLE: BrokerUnavailableError,
    _S.ABORTED: BrokerUnavailableError,
    _S.DEADLINE_EXCEEDED: BrokerTimeoutError,
    _S.INVALID_ARGUMENT: InvalidRequestError,
    _S.OUT_OF_RANGE: InvalidRequestError,
    _S.FAILED_PRECONDITION: InvalidRequestError,
    _S.ALREADY_EXISTS: InvalidRequestError,
    _S.NOT_FOUND: NotFoundError,
    _S.UNAUTHENTICATED: AuthenticationError,
    _S.PERMISSION_DENIED: AuthenticationError,
    _S.RESOURCE_EXHAUSTED: RateLimitExceededError,
    _S.UNKNOWN: BrokerInternalError,
    _S.INTERNAL: BrokerInternalError,
    _S.DATA_LOSS: BrokerInternalError,
    _S.UNIMPLEMENTED: UnimplementedError,
}
"""The error each status becomes (every status but OK)."""

# What gRPC's details say about why a connection could not be made, and what to tell a person.
_CAUSES = (
    ("connection refused", "connection refused (is the bridge running, on that port?)"),
    ("dns resolution failed", "the host name cannot be resolved"),
    ("name resolution", "the host name cannot be resolved"),
    ("certificate_verify_failed", "TLS: the bridge's certificate is not trusted (give root_certificates)"),
    ("certificate verify failed", "TLS: the bridge's certificate is not trusted (give root_certificates)"),
    ("peer name", "TLS: the certificate does not name this host (give server_name_override?)"),
    ("hostname mismatch", "TLS: the certificate does not name this host (give server_name_override?)"),
    ("hostname verification", "TLS: the certificate does not name this host (give server_name_override?)"),
    ("certificate required", "TLS: the bridge requires a client certificate (mutual TLS)"),
    ("ssl", "TLS handshake failed"),
    ("tls", "TLS handshake failed"),
    ("settings frame", "the bridge did not complete the HTTP/2 handshake in time"),
    ("connection reset", "the connection was reset"),
    ("timeout", "no answer in time"),
    ("deadline", "no answer in time"),
)


def _details(error: grpc.aio.AioRpcError, secret: str | None) -> str:
    details = error.details() or error.code().name
    if secret:
        details = details.replace(secret, "***")
    return details if len(details) <= _MAX_DETAILS else f"{details[:_MAX_DETAILS]}..."


def retry_after(error: grpc.aio.AioRpcError) -> float | None:
    """Seconds the bridge asked us to wait (its `retry-after-ms` trailer), if it said.

    The contract asks for a non-negative decimal number of milliseconds (`250` or `12.5`); anything
    else is taken as no hint at all.
    """
    for key, value in error.trailing_metadata() or ():
        if key == RETRY_AFTER_KEY:
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
            try:
                milliseconds = float(text.strip()[:32])
            except ValueError:
                return None
            if not math.isfinite(milliseconds) or milliseconds < 0:
                return None
            return min(milliseconds, 86_400_000.0) / 1000
    return None


def to_broker_error(
    error: grpc.aio.AioRpcError, *, method: str, target: str, secret: str | None
) -> BrokerError:
    """The `BrokerError` for a failed call, naming the method and the target, never the secret."""
    code = error.code()
    message = f"{method} on {target} failed: {_details(error, secret)} ({code.name})"
    if code is _S.RESOURCE_EXHAUSTED:
        return RateLimitExceededError(message, retry_after=retry_after(error))
    if code is _S.UNAUTHENTICATED:
        return AuthenticationError(f"{message}; {TOKEN_HINT}")
    return ERRORS.get(code, BrokerInternalError)(message)


_DEFINITE = ("connection refused", "dns resolution failed", "name resolution", "certificate", "hostname")


def definite_failure(error: grpc.aio.AioRpcError) -> bool:
    """Whether a connection attempt failed for a reason trying again will not change (a refused
    port, an unknown host, a certificate), rather than a passing one (a slow handshake, a reset)."""
    details = (error.details() or "").lower()
    return any(clue in details for clue in _DEFINITE)


def connect_failure(error: grpc.aio.AioRpcError, *, target: str, secret: str | None) -> BrokerError:
    """The error for a first contact that failed, saying why in words where gRPC says why."""
    code = error.code()
    details = _details(error, secret)
    if code is _S.UNAUTHENTICATED:
        return AuthenticationError(f"the bridge at {target} refused the credentials: {details}; {TOKEN_HINT}")
    if code is _S.PERMISSION_DENIED:
        return AuthenticationError(f"the bridge at {target} does not let this token in: {details}")
    if code in (_S.UNIMPLEMENTED, _S.NOT_FOUND):
        return BrokerInternalError(
            f"the bridge at {target} serves no gRPC health service (grpc.health.v1.Health, service ''), "
            f"which the bridge contract requires: {details}"
        )
    if code is _S.DEADLINE_EXCEEDED:
        return BrokerUnavailableError(f"cannot connect to {target}: no answer in time ({details})")
    lowered = details.lower()
    cause = next((said for clue, said in _CAUSES if clue in lowered), None)
    reason = cause or details  # gRPC's own words only when they say something the cause does not
    return BrokerUnavailableError(f"cannot connect to {target}: {reason}")
