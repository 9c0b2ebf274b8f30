"""RC-5 and RC-6 (mandatory): an order caught in an outage exists once; outages leak nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from broker_plugins import ConnectionState, Order, OrderOutcomeUnknownError
from conformance_tests._backdoor import on_harness
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import BreakMode, ConformanceHarness
from conformance_tests._outage import FAIL_FAST, RECOVERY, broken, recovered, run_into_outage
from conformance_tests._support import (
    CALL_BOUND,
    bounded,
    describe_tasks,
    ending,
    eventually,
    expect,
    open_fd_count,
    open_gateway,
    outcome_of,
    quiet,
    resting_order,
    running_tasks,
)

__all__ = ["OutageClauses"]

ORDER_LATENCY = 0.15
"""Seconds the harness delays traffic each way while an order is in flight, so that the suite can
cut the link after the backend took the order and before its reply is back."""
_CYCLES = 10
_SETTLED = frozenset({ConnectionState.CONNECTED, ConnectionState.DISCONNECTED, ConnectionState.CLOSED})
_SETTLE = 2.0
_FD_SLACK = 2


class OutageClauses(SuiteBase):
    """RC-5 and RC-6."""

    @clause("RC-5")
    async def test_rc5_an_order_caught_in_an_outage_exists_once(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RC-5: the link is cut after the backend took an order and before its reply arrived.
        place_order returns that order or raises OrderOutcomeUnknownError (BrokerUnavailableError
        would say it did not take effect), and the backend holds exactly one order for it, under
        the request's client_order_id."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "RC-5") as gateway:
            quote = await bounded("RC-5", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            instrument = await bounded(
                "RC-5", gateway.get_instrument(harness.symbol), CALL_BOUND, "get_instrument"
            )
            client_order_id = f"rc5-{uuid.uuid4().hex[:16]}"
            request = resting_order(quote, instrument, client_order_id=client_order_id)
            harness.reset_backend_records()
            await on_harness(harness.set_latency(ORDER_LATENCY))
            placing = asyncio.ensure_future(gateway.place_order(request))
            try:
                await eventually(
                    lambda: (
                        placing.done() or any(r.method == "place_order" for r in harness.backend_requests())
                    ),
                    CALL_BOUND,
                )
                expect(
                    any(r.method == "place_order" for r in harness.backend_requests()),
                    "RC-5",
                    f"the backend did not receive the order within {CALL_BOUND:g} s"
                    + (f"; place_order ended with {ending(placing)}" if placing.done() else ""),
                )
                expect(
                    not placing.done(),
                    "RC-5",
                    f"place_order returned before its reply could arrive ({ending(placing)}); the harness's "
                    "set_latency() must delay replies",
                )
                async with broken(harness, BreakMode.CUT):
                    await on_harness(harness.set_latency(0))
                    await eventually(
                        lambda: placing.done() or gateway.state is not ConnectionState.CONNECTED, FAIL_FAST
                    )
                outcome = await outcome_of(placing, RECOVERY + FAIL_FAST)
            finally:
                placing.cancel()
                await on_harness(harness.set_latency(0))
            expect(
                outcome.finished,
                "RC-5",
                f"place_order caught in an outage had not returned {RECOVERY + FAIL_FAST:g} s after "
                "the restore",
            )
            _check_order_outcome(outcome.value, outcome.error, client_order_id)
            # Whatever the gateway sends on its own once reconnected reaches the backend by now.
            await eventually(lambda: gateway.state in _SETTLED, RECOVERY)
            await asyncio.sleep(0.2)
        orders = dict(harness.backend_orders())
        created = orders.pop(client_order_id, 0)
        expect(
            not orders,
            "RC-5",
            f"the backend created orders under client_order_ids the request never had: {orders}; an order "
            "whose outcome is unknown must never be sent again under a new id",
        )
        expect(
            created == 1,
            "RC-5",
            f"the backend created {created} orders under {client_order_id!r}, which it received once "
            "before the cut; exactly one must exist",
        )

    @clause("RC-6")
    async def test_rc6_ten_outages_leak_nothing(self, started_broker_harness: ConformanceHarness) -> None:
        """RC-6: after 10 cut-and-restore cycles, each recovered from within 5 s, no more tasks run
        and (on Linux) no more file descriptors are open than after the first cycle."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "RC-6") as gateway:

            async def outage(number: int) -> None:
                async with broken(harness):
                    await run_into_outage(gateway, symbol=harness.symbol)
                ok, last = await recovered(gateway, harness.symbol, RECOVERY)
                expect(
                    ok,
                    "RC-6",
                    f"outage {number} of {_CYCLES}: no call succeeded after the restore (waited up to "
                    f"{RECOVERY:g} s; state {gateway.state}, last error {last!r})",
                )

            await outage(0)  # one-time allocations happen here, not in the count
            await quiet(lambda: len(running_tasks()))
            tasks_before = running_tasks()
            fds_before = await quiet(open_fd_count)
            for number in range(1, _CYCLES + 1):
                await outage(number)
            grown: set[asyncio.Task[Any]] = set()

            def tasks_settled() -> bool:
                now = running_tasks()
                grown.clear()
                grown.update(now - tasks_before)
                return len(now) <= len(tasks_before)

            expect(
                await eventually(tasks_settled, _SETTLE),
                "RC-6",
                f"{len(running_tasks()) - len(tasks_before)} more tasks run after {_CYCLES} outages than "
                f"before them; started since: {describe_tasks(grown)}",
            )
            if fds_before is not None:
                expect(
                    await eventually(lambda: (open_fd_count() or 0) <= fds_before + _FD_SLACK, _SETTLE),
                    "RC-6",
                    f"{(open_fd_count() or 0) - fds_before} more file descriptors are open after {_CYCLES} "
                    f"outages than before them (up to {_FD_SLACK} allowed)",
                )


def _check_order_outcome(value: object, error: BaseException | None, client_order_id: str) -> None:
    __tracebackhide__ = True
    if error is None:
        expect(isinstance(value, Order), "RC-5", f"place_order returned {value!r}, not an Order")
        assert isinstance(value, Order)
        expect(
            value.client_order_id == client_order_id,
            "RC-5",
            f"place_order returned an order under client_order_id {value.client_order_id!r}, not the "
            f"request's {client_order_id!r}",
        )
        return
    expect(
        isinstance(error, OrderOutcomeUnknownError),
        "RC-5",
        f"place_order caught in an outage raised {error!r}; the backend took the order, so expected the "
        "order or OrderOutcomeUnknownError (an error such as BrokerUnavailableError says it did not "
        "take effect)",
    )
    if isinstance(error, OrderOutcomeUnknownError):
        expect(
            error.client_order_id == client_order_id,
            "RC-5",
            f"OrderOutcomeUnknownError names client_order_id {error.client_order_id!r}, "
            f"not {client_order_id!r}",
        )
