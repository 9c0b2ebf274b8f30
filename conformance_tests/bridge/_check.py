"""`Check`: one clause being judged. It sends the clause's requests (counted against the bound the
clause states), and words a failure as the kit promises: what was sent, what came back, and which
sentence of the contract it breaks."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import grpc
import pytest

from conformance_tests.bridge._clauses import CONTRACT, MAX_RETRIES, Clause, Needs
from conformance_tests.bridge._wire import AUTH, Outcome, Stream, Stubs, Wire, describe

__all__ = ["RETRY_AFTER", "Check", "KitError", "retry_after_seconds"]

RETRY_AFTER = "retry-after-ms"
_RETRY_FORMAT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_RETRY_CAP = 10.0  # seconds the kit waits at most on one advice before it retries anyway
_REFUSAL_WAIT = 1.0  # a refused stream says so at once; a quiet one is left alone after this
CALL_TIMEOUT = 10.0

_SKIPS = {
    Needs.TOKEN: "the kit has no token: run with --bridge-token-env NAME (or --bridge-token) to check "
    "authentication; a bridge without tokens has nothing to check here",
    Needs.PAPER: "places and cancels orders: run with --bridge-paper, against a paper account only",
    Needs.BUDGET: "exhausts the account's call budget: run with --bridge-budget CALLS/SECONDS (the account's "
    "tightest window)",
}


class KitError(RuntimeError):
    """A bug of the kit itself (never a verdict on the bridge)."""


def retry_after_seconds(outcome: Outcome) -> float | None:
    """The advice of a RESOURCE_EXHAUSTED outcome, if it carries one in the contract's format."""
    values = outcome.trailer(RETRY_AFTER)
    if len(values) != 1 or _RETRY_FORMAT.fullmatch(values[0]) is None:
        return None
    return float(values[0]) / 1000


class Check:
    """The clause being judged, with the wire it judges over."""

    def __init__(self, clause: Clause, wire: Wire, budget_calls: int) -> None:
        self.clause = clause
        self.wire = wire
        self.sent = 0
        self._bound = clause.bound(budget_calls)
        self._lock = threading.Lock()

    def require(self) -> None:
        """Skip the clause, saying why, when what it needs was not given."""
        settings = self.wire.settings
        given = {
            Needs.NOTHING: True,
            Needs.TOKEN: settings.token is not None,
            Needs.PAPER: settings.paper,
            Needs.BUDGET: settings.budget is not None,
        }
        if not given[self.clause.needs]:
            pytest.skip(f"[{self.clause.id}] {_SKIPS[self.clause.needs]}")

    def count(self, requests: int = 1) -> None:
        """Count requests about to be sent; the kit never sends more than the clause states."""
        with self._lock:
            if self.sent + requests > self._bound:
                raise KitError(f"{self.clause.id} would send more than the {self._bound} requests it states")
            self.sent += requests

    # -- calls -----------------------------------------------------------------------------------

    def call(
        self,
        method: Callable[..., Any],
        request: object,
        *,
        auth: str = AUTH,
        timeout: float = CALL_TIMEOUT,
        retry: bool = True,
    ) -> Outcome:
        """One unary call; with `retry`, a RESOURCE_EXHAUSTED refusal with advice is retried after it."""
        self.count()
        metadata = self.wire.metadata(auth)

        def attempt() -> Outcome:
            return self.wire.unary(method, request, metadata, timeout)

        return self.retried(attempt) if retry else attempt()

    @staticmethod
    def retried(attempt: Callable[[], Outcome]) -> Outcome:
        """`attempt()`, made again (at most `MAX_RETRIES` times) after the wait a RESOURCE_EXHAUSTED
        refusal advises: the kit's own pacing cannot see other clients of the same budget."""
        outcome = attempt()
        for _ in range(MAX_RETRIES):
            if outcome.code is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                break
            advice = retry_after_seconds(outcome)
            if advice is None:
                break  # not a budget refusal (or one the budget clauses will judge)
            time.sleep(min(advice, _RETRY_CAP) + 0.01)
            outcome = attempt()
        return outcome

    def stream(self, method: Callable[..., Any], request: object, *, auth: str = AUTH) -> Stream:
        """Open a server stream (no deadline: the kit cancels it); an opening refused with
        RESOURCE_EXHAUSTED and advice is retried after it, like a unary call."""
        metadata = self.wire.metadata(auth)
        self.count()
        stream = Stream(method(request, metadata=metadata))
        for _ in range(MAX_RETRIES):
            first = stream.peek(_REFUSAL_WAIT)
            if not isinstance(first, Outcome) or first.code is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                break
            advice = retry_after_seconds(first)
            if advice is None:
                break
            stream.cancel()
            time.sleep(min(advice, _RETRY_CAP) + 0.01)
            stream = Stream(method(request, metadata=metadata))
        return stream

    def healthy_afterwards(self, stubs: Stubs | None = None) -> None:
        """The bridge answers a health check (after bad input, say)."""
        self.count()
        outcome = self.wire.health_check(stubs)
        if not outcome.ok:
            self.fail(
                "Health.Check(service='') after the requests above",
                outcome,
                note="the bridge no longer answers on this connection",
            )

    # -- verdicts --------------------------------------------------------------------------------

    def fail(self, sent: str, got: object, *, rule: int = 0, note: str = "") -> NoReturn:
        """Fail the clause: `[ID] sent ...; got ...; breaks "sentence" (contract, section)`."""
        chosen = self.clause.rules[min(rule, len(self.clause.rules) - 1)]
        got_text = str(got) if isinstance(got, Outcome | str) else describe(got)
        extra = f" ({note})" if note else ""
        pytest.fail(
            f"[{self.clause.id}] sent {sent}; got {got_text}{extra}; this breaks: "
            f'"{chosen.text}" ({CONTRACT}, {chosen.section})',
            pytrace=False,
        )

    def expect(
        self,
        outcome: Outcome,
        codes: grpc.StatusCode | tuple[grpc.StatusCode, ...],
        sent: str,
        *,
        rule: int = 0,
    ) -> Outcome:
        """Fail unless `outcome` has one of `codes`; returns it."""
        wanted = codes if isinstance(codes, tuple) else (codes,)
        if outcome.code not in wanted:
            names = " or ".join(code.name for code in wanted)
            self.fail(sent, outcome, rule=rule, note=f"expected {names}")
        return outcome

    def skip(self, why: str) -> NoReturn:
        """Skip the clause for a reason found on the wire (a closed market, say)."""
        pytest.skip(f"[{self.clause.id}] {why}")
