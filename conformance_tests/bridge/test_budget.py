"""BK-BUD (with --bridge-budget CALLS/SECONDS): refusals and their advice, the budget under concurrent
clients, and each client's share.

BK-BUD-2 and BK-BUD-3 judge one measurement: CLIENTS connections, each pacing GetQuote calls with its
own exact sliding window of CALLS per SECONDS (as a gateway that believes it owns the budget does),
starting 50 ms apart, for MEASURED_PERIODS periods; a refused call is not retried (its caller goes
on at its own pace). The server's arrival times are not visible on the wire, but a call lies between
its sending and its reply: calls sent and answered within less than one period must be no more than
CALLS, whatever the server's clock says.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import attrs
import grpc
import pytest

from conformance_tests.bridge._check import RETRY_AFTER, Check, retry_after_seconds
from conformance_tests.bridge._settings import Budget
from conformance_tests.bridge._wire import Outcome, Wire, monotonic
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md

CLIENTS = 3
MEASURED_PERIODS = 3
_STAGGER = 0.05
_LIMITER_MARGIN = 0.01  # what a gateway adds to every window of its own limiter
_ARRIVAL_SLACK = 0.002  # seconds: a bridge's clock may be this coarse
_LONGEST_PERIOD = 5.0  # the measurement takes MEASURED_PERIODS of these at most
_MEASUREMENT = "budget-measurement"


@attrs.frozen
class Sample:
    """One call of the measurement: which client, sent and answered when, with what status."""

    client: int
    sent: float
    answered: float
    code: grpc.StatusCode


def _budget(check: Check) -> Budget:
    budget = check.wire.settings.budget
    assert budget is not None  # the clause needs it
    if budget.period > _LONGEST_PERIOD:
        check.skip(
            f"a budget period of {budget.period:g} s is too long to measure ({_LONGEST_PERIOD:g} s at most)"
        )
    return budget


def _settle(budget: Budget) -> None:
    """Let the calls of earlier clauses leave the budget's window."""
    time.sleep(budget.period + _LIMITER_MARGIN)


def test_bk_bud1_a_call_over_the_budget_is_refused_with_a_true_retry_after(
    check: Check, instrument: md.Instrument
) -> None:
    budget = _budget(check)
    _settle(budget)
    stubs = check.wire.connect()
    request = md.GetQuoteRequest(symbol=instrument.symbol)
    refused: Outcome | None = None
    limit = 2 * budget.calls + 3
    for sent in range(1, limit + 1):
        outcome = check.call(stubs.market.GetQuote, request, retry=False)
        if outcome.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            refused = outcome
            break
        check.expect(outcome, grpc.StatusCode.OK, f"GetQuote call {sent} in a row")
    burst = f"{limit} GetQuote calls in a row, as fast as they are answered"
    if refused is None:
        check.fail(burst, "every one admitted", note=f"the budget is {budget}")
    values = refused.trailer(RETRY_AFTER)
    advice = retry_after_seconds(refused)
    if advice is None:
        check.fail(f"{burst}, until one was refused", f"{refused}, {RETRY_AFTER} trailer values {values}")
    time.sleep(advice + 0.02)
    retry = check.call(stubs.market.GetQuote, request, retry=False)
    sent_again = f"GetQuote again, {advice * 1000:g} ms (the advice) + 20 ms after the refusal"
    check.expect(retry, grpc.StatusCode.OK, sent_again, rule=1)


@attrs.frozen
class _Plan:
    wire: Wire
    check: Check
    budget: Budget
    request: md.GetQuoteRequest
    start: float
    end: float


def _client(plan: _Plan, index: int, out: list[Sample]) -> None:
    wire, budget, end = plan.wire, plan.budget, plan.end
    stubs = wire.connect()
    grpc.channel_ready_future(stubs.channel).result(timeout=10)
    request = plan.request
    metadata = wire.metadata("auth")
    window = budget.period + _LIMITER_MARGIN
    grants: deque[float] = deque()
    time.sleep(max(0.0, plan.start + index * _STAGGER - monotonic()))
    while monotonic() < end:
        now = monotonic()
        while grants and grants[0] <= now - window:
            grants.popleft()
        if len(grants) >= budget.calls:
            time.sleep(grants[0] + window - now)
            continue
        grants.append(now)
        plan.check.count()
        sent = monotonic()
        outcome = wire.unary(stubs.market.GetQuote, request, metadata, 10.0)
        out.append(Sample(index, sent, monotonic(), outcome.code))


def _measure(check: Check, instrument: md.Instrument) -> list[Sample]:
    """The shared measurement of BK-BUD-2 and BK-BUD-3 (made once per session)."""
    cached: list[Sample] | None = check.wire.cache.get(_MEASUREMENT)
    if cached is not None:
        return cached
    budget = _budget(check)
    _settle(budget)
    wire = Wire(check.wire.settings)
    samples: list[Sample] = []
    start = monotonic() + 0.2
    end = start + MEASURED_PERIODS * budget.period
    plan = _Plan(wire, check, budget, md.GetQuoteRequest(symbol=instrument.symbol), start, end)
    try:
        threads = [
            threading.Thread(
                target=_client, args=(plan, i, samples), name=f"bridge-kit-client-{i}", daemon=True
            )
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(end - monotonic() + 30)
    finally:
        wire.close()
    check.wire.cache[_MEASUREMENT] = samples
    return samples


def _described(budget: Budget) -> str:
    return (
        f"{CLIENTS} connections each calling GetQuote at up to {budget} of their own for "
        f"{MEASURED_PERIODS} periods, starting {_STAGGER * 1000:g} ms apart"
    )


def test_bk_bud2_the_budget_holds_at_the_server_under_concurrent_clients(
    check: Check, instrument: md.Instrument
) -> None:
    budget = _budget(check)
    samples = _measure(check, instrument)
    sent = _described(budget)
    odd = [s for s in samples if s.code not in (grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED)]
    if odd:
        check.fail(sent, f"{odd[0].code.name} on {len(odd)} calls")
    if all(s.code is grpc.StatusCode.OK for s in samples):
        check.fail(
            sent, f"all {len(samples)} calls admitted", note=f"{CLIENTS} times the budget was asked for"
        )
    admitted = sorted((s for s in samples if s.code is grpc.StatusCode.OK), key=lambda s: s.sent)
    for first in admitted:
        horizon = first.sent + budget.period - _ARRIVAL_SLACK
        inside = [s for s in admitted if s.sent >= first.sent and s.answered < horizon]
        if len(inside) > budget.calls:
            span = max(s.answered for s in inside) - first.sent
            check.fail(sent, f"{len(inside)} calls admitted, all sent and answered within {span:.3f} s")


def test_bk_bud3_concurrent_clients_each_get_a_share(check: Check, instrument: md.Instrument) -> None:
    budget = _budget(check)
    samples = _measure(check, instrument)
    if not samples:
        pytest.fail(f"[{check.clause.id}] the measurement made no call", pytrace=False)
    start = min(s.sent for s in samples)
    steady = Counter(
        s.client for s in samples if s.code is grpc.StatusCode.OK and s.sent >= start + budget.period
    )
    total = sum(steady.values())
    shares = {client: steady.get(client, 0) for client in range(CLIENTS)}
    least = min(shares.values())
    if total == 0 or least < total / (2 * CLIENTS):
        check.fail(
            f"{_described(budget)}; counted after the first period",
            f"admitted calls by client {shares}",
            note=f"each should get at least half of an even share, {total / (2 * CLIENTS):.1f}",
        )
