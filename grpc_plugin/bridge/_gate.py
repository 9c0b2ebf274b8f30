"""The call gate every bridge RPC passes first: record, inject faults, authenticate, budget, size.

Servicers wrap their body in `async with gate.unary(...) as account:` (or `gate.stream(...)`): the
gate admits the call and yields the account; on the way out it maps the domain's errors to gRPC
statuses and applies an injected reply delay. A request whose bytes do not parse never reaches a
servicer: `refuse_malformed` admits it the same way (token first, then budget) and refuses it with
INVALID_ARGUMENT. Health and reflection do not go through the gate, so they are neither budgeted
nor recorded.

The checks run in the contract's order: authentication, budget, well-formedness, then the state
(the servicers). Status details are cut to `MAX_DETAILS` characters, whatever raised them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import attrs
import grpc
import grpc.aio
from google.protobuf.message import Message

from grpc_plugin.bridge._auth import DEFAULT_ACCOUNT, TokenCheck
from grpc_plugin.bridge._budget import CallBudget
from grpc_plugin.bridge._errors import (
    AlreadyExistsError,
    BridgeError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    ShuttingDownError,
    SubscriberOverflowError,
)
from grpc_plugin.bridge._faults import Faults

__all__ = ["DEFAULT_ACCOUNT", "MAX_DETAILS", "RETRY_AFTER_KEY", "CallGate", "RequestRecord"]

RETRY_AFTER_KEY = "retry-after-ms"
MAX_DETAILS = 400  # characters of status details, at most: far below gRPC's 8 KiB metadata limit

_STATUS: tuple[tuple[type[BridgeError], grpc.StatusCode], ...] = (
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (OutOfRangeError, grpc.StatusCode.OUT_OF_RANGE),
    (SubscriberOverflowError, grpc.StatusCode.ABORTED),
    (ShuttingDownError, grpc.StatusCode.UNAVAILABLE),
)
_UNAUTHENTICATED = "missing or unknown bearer token: send 'authorization: Bearer <token>' metadata"

Context = grpc.aio.ServicerContext[Any, Any]


@attrs.frozen
class RequestRecord:
    """One call as the bridge received it: `arrived` is `time.monotonic()` at arrival.

    `account` is None when the call was not authenticated; `rejected` is the status the gate
    refused it with (None when it was admitted to the servicer); `client` is the connection it
    came on (gRPC's peer address), the unit budgets share themselves among.
    """

    method: str
    account: str | None
    arrived: float
    rejected: grpc.StatusCode | None = None
    client: str = ""


class CallGate:
    """Admission of bridge calls, and the record of every call received."""

    def __init__(
        self,
        *,
        tokens: Mapping[str, str],
        budget: CallBudget,
        faults: Faults,
        max_request_bytes: int,
        record_limit: int = 100_000,
    ) -> None:
        self.tokens = TokenCheck(tokens)
        self._budget = budget
        self._faults = faults
        self._max_request_bytes = max_request_bytes
        self.records: deque[RequestRecord] = deque(maxlen=record_limit)

    @asynccontextmanager
    async def unary(self, method: str, request: Message, context: Context) -> AsyncIterator[str]:
        """Admit a unary call; yields the account. The reply is delayed after the work is done."""
        account = await self._admit(method, request.ByteSize(), context)
        async with self._statuses(context):
            yield account
        if self._faults.reply_delay:
            await asyncio.sleep(self._faults.reply_delay)

    @asynccontextmanager
    async def stream(self, method: str, request: Message, context: Context) -> AsyncIterator[str]:
        """Admit a server-streaming call; yields the account. A reply delay holds the first message."""
        account = await self._admit(method, request.ByteSize(), context)
        if self._faults.reply_delay:
            await asyncio.sleep(self._faults.reply_delay)
        async with self._statuses(context):
            yield account

    async def refuse_malformed(self, method: str, size: int, problem: str, context: Context) -> NoReturn:
        """Refuse a request whose bytes are not a valid message (after the token and budget checks)."""
        await self._admit(method, size, context, malformed=problem)
        raise AssertionError("unreachable: a malformed request is always refused")  # pragma: no cover

    @asynccontextmanager
    async def _statuses(self, context: Context) -> AsyncIterator[None]:
        try:
            yield
        except BridgeError as error:
            code = next(code for kind, code in _STATUS if isinstance(error, kind))
            await context.abort(code, _bounded(str(error)))

    async def _admit(self, method: str, size: int, context: Context, *, malformed: str = "") -> str:
        arrived = time.monotonic()
        client = context.peer() or ""
        account = self.tokens.account(context.invocation_metadata())
        outcome = self._check(account, client, size, malformed, context)
        if isinstance(outcome, tuple):
            self.records.append(RequestRecord(method, account, arrived, outcome[0], client))
            await context.abort(outcome[0], _bounded(outcome[1]))
        self.records.append(RequestRecord(method, account, arrived, None, client))
        return outcome

    def _check(
        self, account: str | None, client: str, size: int, malformed: str, context: Context
    ) -> str | tuple[grpc.StatusCode, str]:
        """The account if the call may proceed, else the status and message to refuse it with."""
        failure = self._faults.take_failure()
        if failure is not None:
            if failure.retry_after is not None:
                injected_ms = f"{failure.retry_after * 1000:g}"
                context.set_trailing_metadata(((RETRY_AFTER_KEY, injected_ms),))
            return failure.code, failure.message
        if account is None:
            return grpc.StatusCode.UNAUTHENTICATED, _UNAUTHENTICATED
        wait = self._budget.admit(account, client)
        if wait is not None:
            retry_ms = max(1, math.ceil(wait * 1000))
            context.set_trailing_metadata(((RETRY_AFTER_KEY, str(retry_ms)),))
            windows = ", ".join(str(window) for window in self._budget.windows)
            return (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"call budget of account {account!r} exhausted ({windows}); retry in {retry_ms} ms",
            )
        if size > self._max_request_bytes:
            return (
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request is {size} bytes; the limit is {self._max_request_bytes}",
            )
        if malformed:
            return grpc.StatusCode.INVALID_ARGUMENT, f"the request does not parse: {malformed}"
        return account


def _bounded(details: str) -> str:
    return details if len(details) <= MAX_DETAILS else details[: MAX_DETAILS - 3] + "..."
