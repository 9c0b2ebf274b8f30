"""HC-1, HC-2 and DV-1: health checks tell the truth and take no permit; values are what the backend
served.

HC-1: `health_check()` reports unhealthy while the backend is cut off (right after the cut, and once
the gateway noticed) and healthy again after the restore; it reports, it never raises. HC-2: a
health check takes no permit: it answers at once with every category's budget spent. DV-1: every
method returns what the backend served, by its record (harness protocol 2, `served_values`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from broker_plugins import (
    BrokerError,
    Capability,
    ConnectionState,
    HealthStatus,
    IBrokerGateway,
    Interval,
    OrderStatus,
    RateLimit,
)
from conformance_tests._backdoor import member
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import ConformanceHarness, ServedValue
from conformance_tests._outage import FAIL_FAST, NOTICE, RECOVERY, broken
from conformance_tests._streams_common import OrderUpdateReader
from conformance_tests._support import (
    CALL_BOUND,
    bounded,
    eventually,
    expect,
    first_item,
    open_gateway,
    resting_order,
    violated,
)

__all__ = ["HealthClauses"]

_SPENT = {"*": RateLimit(1, 30.0)}
"""One call spends every category's budget for 30 s."""


async def _health(
    gateway: IBrokerGateway, clause_id: str, when: str, seconds: float = FAIL_FAST
) -> HealthStatus:
    __tracebackhide__ = True
    try:
        status = await bounded(clause_id, gateway.health_check(), seconds, f"health_check() {when}")
    except BrokerError as exc:
        violated(
            clause_id, f"health_check() {when} raised {exc!r}; it reports an unhealthy broker, never raises"
        )
    expect(
        isinstance(status, HealthStatus),
        clause_id,
        f"health_check() {when} returned {status!r}, not a HealthStatus",
    )
    return status


class HealthClauses(SuiteBase):
    """HC-1, HC-2 and DV-1."""

    @clause("HC-1")
    async def test_hc1_health_follows_the_backend(self, started_broker_harness: ConformanceHarness) -> None:
        """HC-1: health_check() is healthy when connected, unhealthy within 2 s while the backend
        is cut off (at once, and once the gateway noticed), and healthy again within 5 s of the
        restore; it never raises."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "HC-1") as gateway:
            status = await _health(gateway, "HC-1", "against a healthy backend", CALL_BOUND)
            expect(status.healthy, "HC-1", f"health_check() against a healthy backend reported {status!r}")
            async with broken(harness):
                for when in ("right after the cut", "once the gateway noticed the cut"):
                    status = await _health(gateway, "HC-1", when)
                    expect(
                        not status.healthy,
                        "HC-1",
                        f"health_check() {when} reported healthy ({status!r}); with the backend cut off a "
                        "probe cannot succeed",
                    )
                    await eventually(lambda: gateway.state is not ConnectionState.CONNECTED, NOTICE)
            deadline = time.monotonic() + RECOVERY
            while not (status := await _health(gateway, "HC-1", "after the restore", CALL_BOUND)).healthy:
                if time.monotonic() > deadline:
                    violated(
                        "HC-1",
                        f"health_check() still reported unhealthy {RECOVERY:g} s after the restore: "
                        f"{status!r}",
                    )
                await asyncio.sleep(0.05)

    @clause("HC-2")
    async def test_hc2_a_health_check_takes_no_permit(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """HC-2: with every category's budget spent for 30 s (one call under "*" 1 per 30 s),
        health_check() still answers healthy within 2 s, and the backend records no request for it."""
        harness = started_broker_harness
        async with open_gateway(harness, _SPENT, "HC-2") as gateway:
            await bounded("HC-2", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            harness.reset_backend_records()
            started = time.monotonic()
            status = await _health(gateway, "HC-2", "with every budget spent")
            elapsed = time.monotonic() - started
            requests = list(harness.backend_requests())
        expect(
            status.healthy,
            "HC-2",
            f"health_check() with every budget spent reported {status!r} after {elapsed:.3f} s; a health "
            "probe takes no permit",
        )
        expect(
            not requests,
            "HC-2",
            "a health check reached the backend as broker-API requests "
            f"({', '.join(r.method for r in requests)}); a probe is not a rate-limited request, and the "
            "harness does not record probes",
        )

    @clause("DV-1")
    async def test_dv1_values_are_what_the_backend_served(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """DV-1: what each method returns (quotes, candles, instruments, orders placed, cancelled,
        modified and looked up, positions, balance, and the items of both streams) equals what the
        backend's record says it served for that call."""
        harness = started_broker_harness
        served_values = member(harness, "served_values", "to compare returned values with served ones")
        async with open_gateway(harness, GENEROUS, "DV-1") as gateway:
            await _each_method_against_the_record(gateway, harness, served_values)


async def _each_method_against_the_record(
    gateway: IBrokerGateway, harness: ConformanceHarness, served_values: Callable[[], Sequence[ServedValue]]
) -> None:
    __tracebackhide__ = True
    symbol = harness.symbol
    quote = await bounded("DV-1", gateway.get_quote(symbol), CALL_BOUND, "get_quote")
    instrument = await bounded("DV-1", gateway.get_instrument(symbol), CALL_BOUND, "get_instrument")
    tag = f"dv1-{uuid.uuid4().hex[:10]}"
    first = resting_order(quote, instrument, client_order_id=f"{tag}-a")
    resting = await bounded("DV-1", gateway.place_order(first), CALL_BOUND, "place_order")
    caps = gateway.capabilities
    calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("get_quote", lambda: gateway.get_quote(symbol)),
        ("get_candles", lambda: gateway.get_candles(symbol, Interval.M1, limit=7)),
        ("get_instrument", lambda: gateway.get_instrument(symbol)),
        (
            "place_order",
            lambda: gateway.place_order(resting_order(quote, instrument, client_order_id=f"{tag}-b")),
        ),
        ("get_order", lambda: gateway.get_order(resting.order_id)),
        ("get_orders", gateway.get_orders),
        ("get_positions", gateway.get_positions),
        ("get_balance", gateway.get_balance),
    ]
    if Capability.MODIFY_ORDER in caps:
        calls.append(
            ("modify_order", lambda: gateway.modify_order(resting.order_id, quantity=resting.quantity * 2))
        )
    calls.append(("cancel_order", lambda: gateway.cancel_order(resting.order_id)))
    if Capability.QUOTE_STREAM in caps:
        calls.append(("stream_quotes", lambda: first_item(gateway.stream_quotes([symbol]))))
    updates = OrderUpdateReader(gateway) if Capability.ORDER_UPDATE_STREAM in caps else None
    try:
        if updates is not None:
            opened = await eventually(
                lambda: any(r.method == "stream_order_updates" for r in harness.backend_requests()),
                CALL_BOUND,
            )
            expect(opened, "DV-1", "stream_order_updates did not reach the backend within 10 s")
        for method, call in calls:
            since = time.monotonic()
            returned = await bounded("DV-1", call(), CALL_BOUND, method)
            _matches(method, returned, [r for r in served_values() if r.time >= since])
        if updates is not None:
            await eventually(lambda: _cancelled(updates, resting.order_id) or updates.task.done(), CALL_BOUND)
            pushed = [s.value for s in served_values() if s.method == "stream_order_updates"]
            expect(bool(updates.items()), "DV-1", "stream_order_updates yielded nothing for 4 order changes")
            for update in updates.items():
                expect(
                    update in pushed,
                    "DV-1",
                    f"stream_order_updates yielded {update!r}, which the backend did not push "
                    f"(it pushed {pushed[-1:]!r} last)",
                )
    finally:
        if updates is not None:
            await updates.close()


def _cancelled(updates: OrderUpdateReader, order_id: str) -> bool:
    return any(
        u.order.order_id == order_id and u.order.status is OrderStatus.CANCELLED for u in updates.items()
    )


def _matches(method: str, returned: Any, records: Sequence[ServedValue]) -> None:
    """`returned` is what the backend served for `method` in `records` (those of this call)."""
    __tracebackhide__ = True
    sent = [record.value for record in records if record.method == method]
    expect(
        bool(sent),
        "DV-1",
        f"the backend's served record holds no {method} answer; the harness must record every answer",
    )
    if method == "stream_quotes":
        expect(
            returned in sent,
            "DV-1",
            f"stream_quotes yielded {returned!r}, which the backend did not push (it pushed {sent[:1]!r})",
        )
        return
    if method == "get_candles":
        pages: list[Any] = sent
        expected: Any = [candle for page in pages for candle in page]  # every page, in order
    else:
        expected = sent[-1]
    if method in ("get_candles", "get_orders", "get_positions"):
        returned, expected = list(returned), list(expected)
    expect(returned == expected, "DV-1", f"{method} returned {returned!r}; the backend served {expected!r}")
