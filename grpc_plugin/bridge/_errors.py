"""Errors of the bridge's domain (market, paper broker, paging); the servicers map them to statuses.

BridgeError
├── InvalidArgumentError (ValueError)   -> INVALID_ARGUMENT
├── NotFoundError (LookupError)         -> NOT_FOUND
├── AlreadyExistsError                  -> ALREADY_EXISTS
├── FailedPreconditionError             -> FAILED_PRECONDITION
├── OutOfRangeError (IndexError)        -> OUT_OF_RANGE
├── SubscriberOverflowError             -> ABORTED
└── ShuttingDownError                   -> UNAVAILABLE
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "BridgeError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "ShuttingDownError",
    "SubscriberOverflowError",
]


class BridgeError(Exception):
    """Base of the errors a bridge call can end with; the message is shown to the client."""


class InvalidArgumentError(BridgeError, ValueError):
    """The request is malformed."""


class NotFoundError(BridgeError, LookupError):
    """The symbol, order or currency does not exist (for this account)."""


class AlreadyExistsError(BridgeError):
    """A client_order_id the account already used for an order with other contents."""


class FailedPreconditionError(BridgeError):
    """The request is well-formed but the target is not in a state that allows it."""


class OutOfRangeError(BridgeError, IndexError):
    """A stream position the bridge cannot serve (no longer retained, or not reached yet)."""


class SubscriberOverflowError(BridgeError):
    """A stream reader fell too far behind; it must resume from the last position it received."""


class ShuttingDownError(BridgeError):
    """The bridge is stopping; streams end with this so that clients reconnect elsewhere or later."""
