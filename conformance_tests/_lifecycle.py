"""LC clauses: connect and disconnect, `async with`, state changes, and nothing left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from broker_plugins import (
    BrokerUnavailableError,
    Capability,
    ConnectionState,
    IBrokerGateway,
    Quote,
    RateLimit,
)
from conformance_tests._backdoor import gateway_tasks
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import ConformanceHarness
from conformance_tests._outage import check_chain
from conformance_tests._support import (
    CALL_BOUND,
    FD_UNAVAILABLE,
    Outcome,
    StateLog,
    attempt,
    bounded,
    close_stream,
    describe_tasks,
    disconnect_quietly,
    ending,
    eventually,
    expect,
    first_item,
    open_fd_count,
    open_gateway,
    outcome_of,
    quiet,
    running_tasks,
    violated,
)

__all__ = ["LifecycleClauses"]

_END_BOUND = 2.0
"""Seconds after disconnect() returns within which its calls and streams must have ended."""
_SETTLE = 2.0
"""Seconds allowed for closed sockets and finished tasks of the backend side to wind down."""
_CYCLES = 5
_FD_SLACK = 2


class _Probe(Exception):
    """Raised inside `async with` to see that the gateway closes and lets it through."""


async def _consume(stream: AsyncIterator[Quote], received: list[Quote]) -> None:
    try:
        async for quote in stream:
            received.append(quote)
    finally:
        await close_stream(stream)


async def _use_once(gateway: IBrokerGateway, symbol: str) -> None:
    """One call, and one stream item when the gateway streams: what a connection is there for."""
    await bounded("LC-5", gateway.get_quote(symbol), CALL_BOUND, "get_quote")
    if Capability.QUOTE_STREAM in gateway.capabilities:
        await bounded("LC-5", first_item(gateway.stream_quotes([symbol])), CALL_BOUND, "a quote stream")


class LifecycleClauses(SuiteBase):
    """LC-1 to LC-5."""

    @clause("LC-1")
    async def test_lc1_connect_and_disconnect_are_idempotent(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """LC-1: connect() twice connects once, disconnect() twice closes once (also before any
        connect), and a closed gateway connects again."""
        harness = started_broker_harness
        gateway = harness.create_gateway(GENEROUS)
        error = await attempt("LC-1", gateway.disconnect(), CALL_BOUND, "disconnect() before connect()")
        expect(error is None, "LC-1", f"disconnect() before any connect() raised {error!r}")
        log = StateLog(gateway)
        for round_ in ("first", "second"):
            for _ in range(2):
                await bounded("LC-1", gateway.connect(), CALL_BOUND, "connect()")
                expect(
                    gateway.state is ConnectionState.CONNECTED,
                    "LC-1",
                    f"after connect() the state is {gateway.state}",
                )
            await bounded("LC-1", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            for _ in range(2):
                await bounded("LC-1", gateway.disconnect(), CALL_BOUND, "disconnect()")
                expect(
                    gateway.state is ConnectionState.CLOSED,
                    "LC-1",
                    f"after disconnect() the state is {gateway.state}",
                )
            states = log.states()
            expect(
                states.count(ConnectionState.CONNECTED) == states.count(ConnectionState.CLOSED),
                "LC-1",
                f"{round_} connect/disconnect round, twice each: the states went {log.describe()}; "
                "a repeated connect() or disconnect() must not change state again",
            )

    @clause("LC-2")
    async def test_lc2_async_with_connects_and_always_closes(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """LC-2: `async with gateway` yields the gateway connected and closes it on the way out,
        also when the block raises, and lets the exception through."""
        harness = started_broker_harness
        gateway = harness.create_gateway(GENEROUS)

        async def use() -> None:
            async with gateway as entered:
                expect(
                    entered is gateway, "LC-2", f"`async with gateway as g` gave {entered!r}, not the gateway"
                )
                expect(
                    gateway.state is ConnectionState.CONNECTED,
                    "LC-2",
                    f"inside `async with` the state is {gateway.state}",
                )
                await gateway.get_quote(harness.symbol)

        await bounded("LC-2", use(), CALL_BOUND, "an `async with gateway:` block")
        expect(
            gateway.state is ConnectionState.CLOSED,
            "LC-2",
            f"after `async with` the state is {gateway.state}, not closed",
        )

        failing = harness.create_gateway(GENEROUS)

        async def fail_inside() -> None:
            async with failing:
                raise _Probe

        with pytest.raises(_Probe):
            await bounded("LC-2", fail_inside(), CALL_BOUND, "an `async with gateway:` block that raises")
        expect(
            failing.state is ConnectionState.CLOSED,
            "LC-2",
            f"after an `async with` block raised, the state is {failing.state}, not closed",
        )

    @clause("LC-3")
    async def test_lc3_listeners_see_every_state_change_in_order(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """LC-3: every listener sees the same unbroken chain of changes, CONNECTED then CLOSED,
        and hears nothing once removed."""
        harness = started_broker_harness
        gateway = harness.create_gateway(GENEROUS)
        first, second = StateLog(gateway), StateLog(gateway)
        await bounded("LC-3", gateway.connect(), CALL_BOUND, "connect()")
        await bounded("LC-3", gateway.disconnect(), CALL_BOUND, "disconnect()")
        check_chain("LC-3", first.initial, first.changes)
        states = first.states()
        expect(
            ConnectionState.CONNECTED in states and states[-1] is ConnectionState.CLOSED,
            "LC-3",
            f"one connect() and disconnect() went {first.describe()}; expected connected, then closed last",
        )
        expect(
            ConnectionState.RECONNECTING not in states,
            "LC-3",
            f"a session with no failure went {first.describe()}",
        )
        expect(
            second.changes == first.changes,
            "LC-3",
            f"two listeners saw different changes: {first.describe()} and {second.describe()}",
        )
        first.remove()
        seen = len(first.changes)
        await bounded("LC-3", gateway.connect(), CALL_BOUND, "connect() after disconnect()")
        await bounded("LC-3", gateway.disconnect(), CALL_BOUND, "disconnect()")
        expect(
            len(first.changes) == seen,
            "LC-3",
            f"a removed listener was still called: {first.describe()}",
        )

    @clause("LC-4")
    async def test_lc4_disconnect_ends_every_call_stream_and_task(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """LC-4: after disconnect() returns, within 2 s: a call that was waiting for a permit has
        failed (it must not go out), a stream being read and a stream left paused have ended, and
        no more tasks run than before connect()."""
        harness = started_broker_harness
        # One permit a second on account calls, so the second get_balance waits in line.
        limits = {"account": RateLimit(1, 1.0)}
        async with open_gateway(harness, limits, "LC-4") as warm_up:
            # One-time allocations (thread pools, pollers, caches) happen here, not in the count.
            await bounded("LC-4", warm_up.get_quote(harness.symbol), CALL_BOUND, "get_quote")
        await quiet(lambda: len(running_tasks()))
        before = running_tasks()
        gateway = harness.create_gateway(limits)
        await bounded("LC-4", gateway.connect(), CALL_BOUND, "connect()")
        streams = Capability.QUOTE_STREAM in gateway.capabilities
        received: list[Quote] = []
        reading = gateway.stream_quotes([harness.symbol]) if streams else None
        paused = gateway.stream_quotes([harness.symbol]) if streams else None
        tasks: list[asyncio.Future[Any]] = []
        try:
            if reading is not None and paused is not None:
                consumer = asyncio.ensure_future(_consume(reading, received))
                tasks.append(consumer)
                await eventually(lambda: bool(received) or consumer.done(), CALL_BOUND)
                expect(
                    bool(received),
                    "LC-4",
                    f"no quote within {CALL_BOUND:g} s of opening stream_quotes "
                    f"(the stream: {ending(consumer)})",
                )
                # Left suspended between two items, as a consumer that stopped reading leaves it.
                await bounded("LC-4", paused.__anext__(), CALL_BOUND, "the first quote of a stream")
            await bounded("LC-4", gateway.get_balance(), CALL_BOUND, "get_balance")
            waiting = asyncio.ensure_future(gateway.get_balance())
            tasks.append(waiting)
            await asyncio.sleep(0.05)
            # A call that did not wait for its permit is RL's business; this clause looks at one that did.
            was_waiting = not waiting.done()
            await bounded("LC-4", gateway.disconnect(), CALL_BOUND, "disconnect()")
            ended = await outcome_of(waiting, _END_BOUND)
            if was_waiting:
                _check_ended("a get_balance waiting for its permit when disconnect() was called", ended)
            if reading is not None and paused is not None:
                _check_ended("a stream being read", await outcome_of(tasks[0], _END_BOUND), may_finish=True)
                paused_end = await outcome_of(_drain(paused), _END_BOUND)
                _check_ended("a stream left paused, read again", paused_end, may_finish=True)
            await _check_no_more_tasks(before)
        finally:
            for task in tasks:
                task.cancel()
            await disconnect_quietly(gateway)
            for stream in (reading, paused):
                if stream is not None:
                    await _close_quietly(stream)

    @clause("LC-5")
    async def test_lc5_connections_leave_no_open_files(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """LC-5: connect/disconnect cycles do not leave file descriptors open (Linux only)."""
        if open_fd_count() is None:
            pytest.skip(FD_UNAVAILABLE)
        harness = started_broker_harness

        async def cycle() -> None:
            async with open_gateway(harness, GENEROUS, "LC-5") as gateway:
                await _use_once(gateway, harness.symbol)

        await cycle()  # one-time allocations happen here, not in the count
        before = await quiet(open_fd_count) or 0
        for _ in range(_CYCLES):
            await cycle()
        after = before

        def settled() -> bool:
            nonlocal after
            after = open_fd_count() or 0
            return after <= before + _FD_SLACK

        expect(
            await eventually(settled, _SETTLE),
            "LC-5",
            f"{after - before} more file descriptors are open after {_CYCLES} connect/disconnect cycles "
            f"than before them (up to {_FD_SLACK} allowed for lazily opened shared resources)",
        )


async def _drain(stream: AsyncIterator[Quote]) -> None:
    """Read a stream to its end: quotes it had buffered may still come, but it must end."""
    async for _quote in stream:
        pass


async def _close_quietly(stream: AsyncIterator[Quote]) -> None:
    # Cleanup after the verdict: bounded, and how it goes no longer matters.
    await outcome_of(close_stream(stream), _END_BOUND)


async def _check_no_more_tasks(before: set[asyncio.Task[Any]]) -> None:
    __tracebackhide__ = True
    # Counted, not compared by identity: a backend in the same loop may replace its own tasks as
    # it serves calls. What must not grow is how many run.
    started: set[asyncio.Task[Any]] = set()

    def settled() -> bool:
        now = running_tasks()
        started.clear()
        started.update(now - before)
        return len(now) <= len(before)

    if await eventually(settled, _SETTLE):
        return
    extra = len(running_tasks()) - len(before)
    own = gateway_tasks(started)
    if own:
        violated(
            "LC-4",
            f"{extra} more task(s) run {_SETTLE:g} s after disconnect() than before connect(); the "
            f"gateway started these and left them running: {describe_tasks(own)}",
        )
    violated(
        "LC-4",
        f"{extra} more task(s) of the harness (its backend or proxy) run {_SETTLE:g} s after "
        f"disconnect() than before connect(): {describe_tasks(started)}; they serve a connection the "
        "gateway left open",
    )


def _check_ended(what: str, outcome: Outcome, *, may_finish: bool = False) -> None:
    __tracebackhide__ = True
    expect(outcome.finished, "LC-4", f"{what} was still running {_END_BOUND:g} s after disconnect()")
    error = outcome.error
    if error is None:
        expect(
            may_finish,
            "LC-4",
            f"{what} went out and succeeded: disconnect() must stop calls, not let them through",
        )
        return
    expect(
        isinstance(error, BrokerUnavailableError),
        "LC-4",
        f"{what} ended with {error!r} after disconnect(); expected BrokerUnavailableError"
        + (" or, for a stream, its end" if may_finish else ""),
    )
