"""Exit codes of `brokerctl`, and the errors the command line itself raises.

Each `BrokerError` leaf has its own code, so a script can tell "the bridge is down" from "the order
was refused" without parsing a message:

```
0   success
1   failure: a conformance clause failed, or an unexpected error (rerun with --debug)
2   usage: bad arguments, a bad config file, or an invalid request (negative quantity, bad symbol)
3   not found: unknown symbol or order
4   unavailable: the broker cannot be reached, or a call timed out; `health` found one unhealthy
5   authentication failed
6   order rejected
7   order outcome unknown: look the order up by its client order id before placing it again
8   rate limited by the broker
9   plugin problem: unknown gateway, a plugin failed to load, no embedded backend or harness
130 interrupted (Ctrl-C)
```
"""

from __future__ import annotations

import enum

from broker_plugins._errors import (
    AuthenticationError,
    BrokerTimeoutError,
    BrokerUnavailableError,
    InvalidRequestError,
    NotFoundError,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    PluginError,
    RateLimitExceededError,
)

__all__ = ["CliError", "ExitCode", "UsageError", "exit_code_for"]


class ExitCode(enum.IntEnum):
    """What `brokerctl` returns to the shell."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    NOT_FOUND = 3
    UNAVAILABLE = 4
    AUTHENTICATION = 5
    ORDER_REJECTED = 6
    ORDER_OUTCOME_UNKNOWN = 7
    RATE_LIMITED = 8
    PLUGIN = 9
    INTERRUPTED = 130


class CliError(Exception):
    """A failure `brokerctl` reports as one line on stderr and exits with `code`."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILURE) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    """The command line or the config file is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


# Most specific first: a class listed later never shadows one listed earlier.
_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (InvalidRequestError, ExitCode.USAGE),
    (NotFoundError, ExitCode.NOT_FOUND),
    (BrokerUnavailableError, ExitCode.UNAVAILABLE),
    (BrokerTimeoutError, ExitCode.UNAVAILABLE),
    (AuthenticationError, ExitCode.AUTHENTICATION),
    (OrderRejectedError, ExitCode.ORDER_REJECTED),
    (OrderOutcomeUnknownError, ExitCode.ORDER_OUTCOME_UNKNOWN),
    (RateLimitExceededError, ExitCode.RATE_LIMITED),
    (PluginError, ExitCode.PLUGIN),
)


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code that reports `error`."""
    if isinstance(error, CliError):
        return error.code
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return ExitCode.FAILURE
