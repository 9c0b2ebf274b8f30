"""RC-9 and RC-10: what streams yield across an outage, checked against the backend's own record.

RC-9: after a restore, an open quote stream yields fresh quotes (produced after the restore, by the
backend's record when the harness keeps one, else by the time the backend stamped on them), and no
quote twice or out of order. RC-10: every order update the backend produced before, during and
after an outage comes once and in order; a gateway without STREAM_RESUME reports the gap by ending
the stream with `BrokerUnavailableError`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest

from broker_plugins import (
    BrokerUnavailableError,
    Capability,
    IBrokerGateway,
    Order,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    Quote,
)
from conformance_tests._backdoor import member, on_harness
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import BreakMode, ConformanceHarness
from conformance_tests._outage import RECOVERY, broken, recovered, run_into_outage
from conformance_tests._streams_common import OrderUpdateReader, QuoteReader
from conformance_tests._support import (
    CALL_BOUND,
    bounded,
    eventually,
    expect,
    open_gateway,
    resting_order,
    violated,
)

__all__ = ["StreamContentClauses"]

_AFTER = 3
"""Quotes read after the restore and checked for freshness."""
_STAMP_SLACK = timedelta(milliseconds=50)
"""How much earlier than the restore a backend may stamp a quote it produced after it (a backend
that stamps quotes with the start of its tick)."""


def _quote_problems(quotes: Sequence[Quote]) -> list[str]:
    problems = []
    seen: set[Quote] = set()
    last: dict[str, datetime] = {}
    for quote in quotes:
        if quote in seen:
            problems.append(f"the quote {quote!r} was yielded twice")
        seen.add(quote)
        if quote.symbol in last and quote.time < last[quote.symbol]:
            problems.append(
                f"a {quote.symbol} quote of {quote.time.isoformat()} came after one of "
                f"{last[quote.symbol].isoformat()}: out of order"
            )
        last[quote.symbol] = max(quote.time, last.get(quote.symbol, quote.time))
    return problems


class StreamContentClauses(SuiteBase):
    """RC-9 and RC-10."""

    @clause("RC-9")
    async def test_rc9_quotes_after_a_restore_are_fresh(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RC-9: the first 3 quotes an open stream yields after a restore were produced after it
        (by the backend's served record, or by the time it stamped on them), and the whole stream
        holds no quote twice and none out of order per symbol (with QUOTE_STREAM and STREAM_RESUME)."""
        harness = started_broker_harness
        served = getattr(harness, "served_values", None)
        async with open_gateway(harness, GENEROUS, "RC-9") as gateway:
            if not {Capability.QUOTE_STREAM, Capability.STREAM_RESUME} <= gateway.capabilities:
                pytest.skip(
                    "a stream that resumes needs QUOTE_STREAM and STREAM_RESUME; RC-4 covers the rest"
                )
            reader = QuoteReader(gateway, harness.symbol)
            try:
                await reader.wait_for("RC-9", 2, CALL_BOUND)
                async with broken(harness):
                    await run_into_outage(gateway, symbol=harness.symbol)
                restored, restored_at = time.monotonic(), datetime.now(timezone.utc)
                await reader.wait_for("RC-9", _AFTER, RECOVERY + CALL_BOUND, after=restored)
            finally:
                await reader.close()
        fresh = reader.items(after=restored)[:_AFTER]
        if served is not None:
            sent_after = [s.value for s in served() if s.method == "stream_quotes" and s.time >= restored]
            stale = [quote for quote in fresh if quote not in sent_after]
            if stale:
                violated(
                    "RC-9",
                    f"after the restore the stream yielded {stale[0]!r}, which the backend did not send "
                    "after the restore (by its served record): a cached or replayed quote, not a fresh one",
                )
        else:
            stale = [quote for quote in fresh if quote.time < restored_at - _STAMP_SLACK]
            if stale:
                violated(
                    "RC-9",
                    f"after a restore at {restored_at.isoformat()} the stream yielded a quote stamped "
                    f"{stale[0].time.isoformat()}: produced before the restore, not fresh",
                )
        problems = _quote_problems(reader.items())
        if problems:
            violated("RC-9", f"{problems[0]} (the stream across an outage)")

    @clause("RC-10")
    async def test_rc10_order_updates_survive_an_outage(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RC-10: an open stream_order_updates delivers, once each and in order, the updates of an
        order placed before an outage, cancelled at the backend during it, and of one placed and
        cancelled after it; without STREAM_RESUME the stream ends with BrokerUnavailableError
        instead (with ORDER_UPDATE_STREAM)."""
        harness = started_broker_harness
        cancel_at_backend = member(
            harness, "cancel_order_at_backend", "to change an order at the backend during an outage"
        )
        async with open_gateway(harness, GENEROUS, "RC-10") as gateway:
            if Capability.ORDER_UPDATE_STREAM not in gateway.capabilities:
                pytest.skip("the gateway does not declare ORDER_UPDATE_STREAM")
            quote = await bounded("RC-10", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            instrument = await bounded(
                "RC-10", gateway.get_instrument(harness.symbol), CALL_BOUND, "get_instrument"
            )
            tag = f"rc10-{uuid.uuid4().hex[:10]}"
            harness.reset_backend_records()
            reader = OrderUpdateReader(gateway)
            try:
                opened = await eventually(
                    lambda: any(r.method == "stream_order_updates" for r in harness.backend_requests()),
                    CALL_BOUND,
                )
                expect(opened, "RC-10", "stream_order_updates did not reach the backend within 10 s")
                before = await _place(gateway, resting_order(quote, instrument, client_order_id=f"{tag}-a"))
                await _wait_for(reader, before.order_id, OrderStatus.NEW)
                resumes = Capability.STREAM_RESUME in gateway.capabilities
                async with broken(harness, BreakMode.CUT):
                    await run_into_outage(gateway, symbol=harness.symbol)
                    await on_harness(cancel_at_backend(before.order_id))
                    if not resumes:
                        await eventually(reader.task.done, RECOVERY)
                if not resumes:
                    _ended_with_unavailable(reader)
                    return
                ok, last = await recovered(gateway, harness.symbol, RECOVERY)
                expect(ok, "RC-10", f"no call succeeded within {RECOVERY:g} s of the restore ({last!r})")
                after = await _place(gateway, resting_order(quote, instrument, client_order_id=f"{tag}-b"))
                await bounded("RC-10", gateway.cancel_order(after.order_id), CALL_BOUND, "cancel_order")
                await _wait_for(reader, after.order_id, OrderStatus.CANCELLED)
                await _wait_for(reader, before.order_id, OrderStatus.CANCELLED, wait=0)
            finally:
                await reader.close()
        _check_updates(reader.items(), [before.order_id, after.order_id])


async def _place(gateway: IBrokerGateway, request: OrderRequest) -> Order:
    return await bounded("RC-10", gateway.place_order(request), CALL_BOUND, "place_order")


async def _wait_for(
    reader: OrderUpdateReader, order_id: str, status: OrderStatus, wait: float = CALL_BOUND
) -> None:
    __tracebackhide__ = True

    def arrived() -> bool:
        return any(u.order.order_id == order_id and u.order.status is status for u in reader.items())

    await eventually(lambda: arrived() or reader.task.done(), wait)
    statuses = [str(u.order.status) for u in reader.items() if u.order.order_id == order_id]
    stream = "ended" if reader.task.done() else "open"
    expect(
        arrived(),
        "RC-10",
        f"the order-update stream did not deliver order {order_id} going {status} (it delivered "
        f"{', '.join(statuses) or 'nothing'} for it; the stream is {stream})",
    )


def _check_updates(updates: Sequence[OrderUpdate], order_ids: Sequence[str]) -> None:
    __tracebackhide__ = True
    ours = [update for update in updates if update.order.order_id in order_ids]
    numbered = [update.sequence for update in ours if update.sequence > 0]
    twice = sorted({number for number in numbered if numbered.count(number) > 1})
    expect(not twice, "RC-10", f"order updates with sequence {twice} were delivered more than once")
    expect(
        numbered == sorted(numbered),
        "RC-10",
        f"order updates came out of order across the outage: sequences {numbered}",
    )
    for order_id in order_ids:
        statuses = [update.order.status for update in ours if update.order.order_id == order_id]
        expect(
            statuses[:1] == [OrderStatus.NEW] and statuses[-1:] == [OrderStatus.CANCELLED],
            "RC-10",
            f"order {order_id} was delivered as {' -> '.join(map(str, statuses))}; expected new first "
            "and cancelled last",
        )


def _ended_with_unavailable(reader: OrderUpdateReader) -> None:
    __tracebackhide__ = True
    task = reader.task
    expect(
        task.done(),
        "RC-10",
        f"without STREAM_RESUME an open order-update stream must end with BrokerUnavailableError when "
        f"the link is lost (reporting the gap); it went silent for {RECOVERY:g} s",
    )
    error = None if task.cancelled() else task.exception()
    expect(
        isinstance(error, BrokerUnavailableError),
        "RC-10",
        f"without STREAM_RESUME the order-update stream ended with {error!r} when the link was lost; "
        "expected BrokerUnavailableError",
    )
