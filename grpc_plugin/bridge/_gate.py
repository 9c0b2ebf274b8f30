"""The call gate every bridge RPC passes first: record, inject faults, authenticate, budget, size.

Servicers wrap their body in `async with gate.unary(...) as account:` (or `gate.stream(...)`): the
gate admits the call and yields the account; on the way out it maps the domain's errors to gRPC
statuses and applies an injected reply delay. Health and reflection do not go through the gate, so
they are neither budgeted nor recorded.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import grpc
import grpc.aio
from google.protobuf.message import Message

from grpc_plugin.bridge._budget import CallBudget
from grpc_plugin.bridge._errors import (
    BridgeError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    ShuttingDownError,
    SubscriberOverflowError,
)
from grpc_plugin.bridge._faults import Faults

__all__ = ["DEFAULT_ACCOUNT", "RETRY_AFTER_KEY", "CallGate", "RequestRecord"]

DEFAULT_ACCOUNT = "paper"  # the account of every call when the bridge has no tokens
RETRY_AFTER_KEY = "retry-after-ms"

_STATUS: tuple[tuple[type[BridgeError], grpc.StatusCode], ...] = (
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (OutOfRangeError, grpc.StatusCode.OUT_OF_RANGE),
    (SubscriberOverflowError, grpc.StatusCode.ABORTED),
    (ShuttingDownError, grpc.StatusCode.UNAVAILABLE),
)

Context = grpc.aio.ServicerContext[Any, Any]


@attrs.frozen
class RequestRecord:
    """One call as the bridge received it: `arrived` is `time.monotonic()` at arrival.

    `account` is None when the call was not authenticated; `rejected` is the status the gate
    refused it with (None when it was admitted to the servicer).
    """

    method: str
    account: str | None
    arrived: float
    rejected: grpc.StatusCode | None = None


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
        self._tokens = dict(tokens)
        self._budget = budget
        self._faults = faults
        self._max_request_bytes = max_request_bytes
        self.records: deque[RequestRecord] = deque(maxlen=record_limit)

    @asynccontextmanager
    async def unary(self, method: str, request: Message, context: Context) -> AsyncIterator[str]:
        """Admit a unary call; yields the account. The reply is delayed after the work is done."""
        account = await self._admit(method, request, context)
        async with self._statuses(context):
            yield account
        if self._faults.reply_delay:
            await asyncio.sleep(self._faults.reply_delay)

    @asynccontextmanager
    async def stream(self, method: str, request: Message, context: Context) -> AsyncIterator[str]:
        """Admit a server-streaming call; yields the account. A reply delay holds the first message."""
        account = await self._admit(method, request, context)
        if self._faults.reply_delay:
            await asyncio.sleep(self._faults.reply_delay)
        async with self._statuses(context):
            yield account

    @asynccontextmanager
    async def _statuses(self, context: Context) -> AsyncIterator[None]:
        try:
            yield
        except BridgeError as error:
            code = next(code for kind, code in _STATUS if isinstance(error, kind))
            await context.abort(code, str(error))

    async def _admit(self, method: str, request: Message, context: Context) -> str:
        arrived = time.monotonic()
        account = self._authenticate(context)
        outcome = self._check(account, request, context)
        if isinstance(outcome, tuple):
            self.records.append(RequestRecord(method, account, arrived, outcome[0]))
            await context.abort(*outcome)
        self.records.append(RequestRecord(method, account, arrived))
        return outcome

    def _check(
        self, account: str | None, request: Message, context: Context
    ) -> str | tuple[grpc.StatusCode, str]:
        """The account if the call may proceed, else the status and message to refuse it with."""
        failure = self._faults.take_failure()
        if failure is not None:
            return failure.code, failure.message
        if account is None:
            return (
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or unknown bearer token: send 'authorization: Bearer <token>' metadata",
            )
        wait = self._budget.admit(account)
        if wait is not None:
            retry_ms = max(1, math.ceil(wait * 1000))
            context.set_trailing_metadata(((RETRY_AFTER_KEY, str(retry_ms)),))
            windows = ", ".join(str(window) for window in self._budget.windows)
            return (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"call budget of account {account!r} exhausted ({windows}); retry in {retry_ms} ms",
            )
        size = request.ByteSize()
        if size > self._max_request_bytes:
            return (
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request is {size} bytes; the limit is {self._max_request_bytes}",
            )
        return account

    def _authenticate(self, context: Context) -> str | None:
        if not self._tokens:
            return DEFAULT_ACCOUNT
        header = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value if isinstance(value, str) else value.decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        # Compare against every token in constant time: no timing hint about which prefix matched.
        account = None
        for known, name in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                account = name
        return account
