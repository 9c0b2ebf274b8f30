"""OR-1 to OR-4: what a caller is told about an order, and that an order is sent once.

OR-1: a rejection raises `OrderRejectedError` with the backend's reason. OR-2: an order the backend
took, whose reply was lost on a silent link, is returned or reported as of unknown outcome, never as
"did not take effect" (`BrokerUnavailableError`, `OrderRejectedError`, ...). OR-3: against a backend
that does not de-duplicate, an order whose reply was lost is never sent again before it is looked up.
OR-4: an order type the gateway does not declare (stop orders without `stop_orders`) is refused with
`InvalidRequestError` and never reaches the backend.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from decimal import ROUND_CEILING, Decimal

import pytest

from broker_plugins import (
    Capability,
    ConnectionState,
    IBrokerGateway,
    InvalidRequestError,
    Order,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    OrderRequest,
    OrderStatus,
)
from conformance_tests._backdoor import member, on_harness
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import BreakMode, ConformanceHarness
from conformance_tests._outage import FAIL_FAST, RECOVERY
from conformance_tests._outage_clauses import ORDER_LATENCY
from conformance_tests._support import (
    CALL_BOUND,
    attempt,
    bounded,
    ending,
    eventually,
    expect,
    open_gateway,
    outcome_of,
    resting_order,
)

__all__ = ["OrderClauses"]

_LOOKUPS = frozenset({"get_order", "get_orders"})
_SILENCE = 3.0
"""Seconds OR-2 keeps the link black-holed at most, waiting for the gateway to give its verdict or
to notice the silence."""


async def _order_request(gateway: IBrokerGateway, harness: ConformanceHarness, tag: str) -> OrderRequest:
    quote = await bounded(tag, gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
    instrument = await bounded(tag, gateway.get_instrument(harness.symbol), CALL_BOUND, "get_instrument")
    return resting_order(quote, instrument, client_order_id=f"{tag.lower()}-{uuid.uuid4().hex[:16]}")


async def _sent_then_lost(
    harness: ConformanceHarness,
    gateway: IBrokerGateway,
    request: OrderRequest,
    mode: BreakMode,
    clause_id: str,
) -> tuple[asyncio.Future[Order], bool]:
    """Place `request` with replies delayed; break the link in `mode` once the backend has it.

    Returns the placement (still running, or done) and whether the backend received the order.
    """
    harness.reset_backend_records()
    await on_harness(harness.set_latency(ORDER_LATENCY))
    placing = asyncio.ensure_future(gateway.place_order(request))
    try:
        await eventually(
            lambda: placing.done() or any(r.method == "place_order" for r in harness.backend_requests()),
            CALL_BOUND,
        )
        received = any(r.method == "place_order" for r in harness.backend_requests())
        expect(
            received,
            clause_id,
            f"the backend did not receive the order within {CALL_BOUND:g} s"
            + (f"; place_order ended with {ending(placing)}" if placing.done() else ""),
        )
        expect(
            not placing.done(),
            clause_id,
            f"place_order returned before its reply could arrive ({ending(placing)}); the harness's "
            "set_latency() must delay replies",
        )
        await on_harness(harness.break_connection(mode))
    finally:
        await on_harness(harness.set_latency(0))
    return placing, received


class OrderClauses(SuiteBase):
    """OR-1 to OR-4."""

    @clause("OR-1")
    async def test_or1_a_rejection_raises_with_the_reason(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """OR-1: a buy ten times the account's buying power raises OrderRejectedError under the
        request's client_order_id, with the backend's reason (by its served record, when kept)."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "OR-1") as gateway:
            request = await _too_big(gateway, harness)
            harness.reset_backend_records()
            outcome = await attempt("OR-1", gateway.place_order(request), CALL_BOUND, "place_order")
        if isinstance(outcome, Order):
            expect(
                outcome.status is not OrderStatus.REJECTED,
                "OR-1",
                f"place_order returned the rejected order ({outcome.reject_reason!r}) instead of raising "
                "OrderRejectedError",
            )
            pytest.skip(
                f"the backend accepted a buy of {request.quantity} at {request.price}, ten times the "
                "buying power: no rejection to see"
            )
        expect(
            isinstance(outcome, OrderRejectedError),
            "OR-1",
            f"an order the backend rejects raised {outcome!r}; expected OrderRejectedError",
        )
        assert isinstance(outcome, OrderRejectedError)
        expect(
            outcome.client_order_id == request.client_order_id,
            "OR-1",
            f"OrderRejectedError names client_order_id {outcome.client_order_id!r}, not "
            f"{request.client_order_id!r}",
        )
        expect(bool(outcome.reason), "OR-1", "OrderRejectedError carries no reason")
        served = getattr(harness, "served_values", None)
        if served is not None:
            reasons = [
                s.value.reject_reason
                for s in served()
                if s.method == "place_order" and isinstance(s.value, Order)
            ]
            expect(
                outcome.reason in reasons,
                "OR-1",
                f"OrderRejectedError's reason is {outcome.reason!r}; the backend gave {reasons[:1]!r}",
            )

    @clause("OR-2")
    async def test_or2_a_lost_reply_is_never_reported_as_not_placed(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """OR-2: the link goes silent after the backend took an order and before its reply came back;
        place_order returns the order, or raises OrderOutcomeUnknownError with its client_order_id,
        never an error saying it did not take effect; the backend holds exactly one order for it
        (with BLACKHOLE)."""
        harness = started_broker_harness
        if BreakMode.BLACKHOLE not in harness.break_modes:
            pytest.skip("the harness offers no BreakMode.BLACKHOLE to lose a reply on a silent link")
        async with open_gateway(harness, GENEROUS, "OR-2") as gateway:
            request = await _order_request(gateway, harness, "OR-2")
            placing, _ = await _sent_then_lost(harness, gateway, request, BreakMode.BLACKHOLE, "OR-2")
            try:
                await eventually(
                    lambda: placing.done() or gateway.state is not ConnectionState.CONNECTED, _SILENCE
                )
                await on_harness(harness.restore_connection())
                outcome = await outcome_of(placing, RECOVERY + FAIL_FAST + CALL_BOUND)
            finally:
                placing.cancel()
        expect(
            outcome.finished, "OR-2", "place_order on a silent link had not returned long after the restore"
        )
        if outcome.error is None:
            value = outcome.value
            expect(
                isinstance(value, Order) and value.client_order_id == request.client_order_id,
                "OR-2",
                f"place_order returned {value!r}, not the order under {request.client_order_id!r}",
            )
        else:
            error = outcome.error
            expect(
                isinstance(error, OrderOutcomeUnknownError),
                "OR-2",
                f"the backend took the order, its reply was lost on a silent link, and place_order raised "
                f"{error!r}: that says the order did not take effect; return it, or raise "
                "OrderOutcomeUnknownError",
            )
            assert isinstance(error, OrderOutcomeUnknownError)
            expect(
                error.client_order_id == request.client_order_id,
                "OR-2",
                f"OrderOutcomeUnknownError names {error.client_order_id!r}, not {request.client_order_id!r}",
            )
        _exactly_one(harness, request.client_order_id, "OR-2")

    @clause("OR-3")
    async def test_or3_an_order_is_looked_up_before_it_is_sent_again(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """OR-3: with a backend that does not de-duplicate, an order whose reply was lost in a cut
        is never sent a second time before the gateway looked it up (get_order or get_orders), and the
        backend ends with exactly one order under its client_order_id."""
        harness = started_broker_harness
        disable = member(harness, "disable_deduplication", "to show what a blind resend would do")
        await on_harness(disable())
        async with open_gateway(harness, GENEROUS, "OR-3") as gateway:
            request = await _order_request(gateway, harness, "OR-3")
            placing, _ = await _sent_then_lost(harness, gateway, request, BreakMode.CUT, "OR-3")
            try:
                await eventually(
                    lambda: placing.done() or gateway.state is not ConnectionState.CONNECTED, FAIL_FAST
                )
                await on_harness(harness.restore_connection())
                await outcome_of(placing, RECOVERY + FAIL_FAST + CALL_BOUND)
                # Whatever the gateway sends on its own once reconnected reaches the backend by now.
                await eventually(lambda: gateway.state is ConnectionState.CONNECTED, RECOVERY)
                await asyncio.sleep(0.2)
            finally:
                placing.cancel()
        sequence = [r.method for r in sorted(harness.backend_requests(), key=lambda r: r.time)]
        looked_up = True
        for method in sequence[sequence.index("place_order") + 1 :] if "place_order" in sequence else []:
            if method == "place_order":
                expect(
                    looked_up,
                    "OR-3",
                    f"the gateway sent place_order again without looking the order up first (the backend "
                    f"received {' -> '.join(sequence)}); a backend that does not de-duplicate would place "
                    "it twice",
                )
                looked_up = False
            elif method in _LOOKUPS:
                looked_up = True
        _exactly_one(harness, request.client_order_id, "OR-3")

    @clause("OR-4")
    async def test_or4_a_stop_order_without_the_capability_is_refused_before_it_is_sent(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """OR-4: a gateway that does not declare stop_orders refuses a stop order with
        InvalidRequestError, and the backend receives no place_order."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "OR-4") as gateway:
            if Capability.STOP_ORDERS in gateway.capabilities:
                pytest.skip("the gateway declares stop_orders: it takes stop orders, no refusal to see")
            resting = await _order_request(gateway, harness, "OR-4")
            assert resting.price is not None  # a resting order is a limit order
            request = OrderRequest.stop(
                resting.symbol,
                "buy",
                resting.quantity,
                resting.price,
                client_order_id=resting.client_order_id,
            )
            harness.reset_backend_records()
            outcome = await attempt("OR-4", gateway.place_order(request), CALL_BOUND, "place_order")
        sent = sum(1 for record in harness.backend_requests() if record.method == "place_order")
        expect(
            isinstance(outcome, InvalidRequestError),
            "OR-4",
            f"place_order of a stop order, without the stop_orders capability, ended with {outcome!r}, "
            "not InvalidRequestError",
        )
        expect(
            sent == 0,
            "OR-4",
            f"the backend received {sent} place_order for a stop order the gateway "
            "does not declare; it must be refused before anything is sent",
        )


async def _too_big(gateway: IBrokerGateway, harness: ConformanceHarness) -> OrderRequest:
    """A resting buy ten times the account's buying power."""
    balance = await bounded("OR-1", gateway.get_balance(), CALL_BOUND, "get_balance")
    quote = await bounded("OR-1", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
    instrument = await bounded("OR-1", gateway.get_instrument(harness.symbol), CALL_BOUND, "get_instrument")
    template = resting_order(quote, instrument, client_order_id=f"or1-{uuid.uuid4().hex[:16]}")
    assert template.price is not None
    lot = instrument.lot_size if instrument.lot_size > 0 else Decimal(1)
    lots = (max(balance.buying_power, Decimal(1)) * 10 / template.price / lot).to_integral_value(
        ROUND_CEILING
    )
    return OrderRequest.limit(
        template.symbol, "buy", lots * lot, template.price, client_order_id=template.client_order_id
    )


def _exactly_one(harness: ConformanceHarness, client_order_id: str, clause_id: str) -> None:
    __tracebackhide__ = True
    orders = Counter(dict(harness.backend_orders()))
    created = orders.pop(client_order_id, 0)
    strangers = {key: count for key, count in orders.items() if count}
    expect(
        not strangers,
        clause_id,
        f"the backend created orders under client_order_ids the request never had: {strangers}",
    )
    expect(
        created == 1,
        clause_id,
        f"the backend created {created} orders under {client_order_id!r}, which it received before the "
        "link broke; exactly one must exist",
    )
