"""RC-1 to RC-4 (mandatory): failing fast while cut off, recovering alone, in order, streams too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from broker_plugins import (
    BrokerError,
    BrokerUnavailableError,
    Capability,
    ConnectionState,
    IBrokerGateway,
    Quote,
)
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import ConformanceHarness
from conformance_tests._outage import (
    FAIL_FAST,
    NOTICE,
    RECOVERY,
    broken,
    check_chain,
    gave_up,
    recovered,
    run_into_outage,
)
from conformance_tests._support import (
    CALL_BOUND,
    StateLog,
    bounded,
    close_stream,
    connected,
    ending,
    eventually,
    expect,
    open_gateway,
    outcome_of,
    read_calls,
)

__all__ = ["ReconnectClauses"]

# Live data only: a gateway may serve instruments or candles from a cache while cut off.
_LIVE = ("get_quote", "get_orders", "get_positions", "get_balance")
_BETWEEN = frozenset({ConnectionState.RECONNECTING, ConnectionState.CONNECTING})


async def _fail_fast(gateway: IBrokerGateway, symbol: str, when: str) -> None:
    __tracebackhide__ = True
    calls = read_calls(gateway, symbol)
    outcomes = await asyncio.gather(*(outcome_of(calls[name](), FAIL_FAST) for name in _LIVE))
    for name, outcome in zip(_LIVE, outcomes, strict=True):
        expect(
            outcome.finished,
            "RC-1",
            f"{name} {when} did not fail within {FAIL_FAST:g} s: while the backend is unreachable a call "
            "must fail fast with BrokerUnavailableError, not wait for the outage to end",
        )
        expect(outcome.error is not None, "RC-1", f"{name} {when} succeeded, with the backend cut off")
        expect(
            isinstance(outcome.error, BrokerUnavailableError),
            "RC-1",
            f"{name} {when} raised {outcome.error!r}; expected BrokerUnavailableError",
        )


async def _consume(stream: AsyncIterator[Quote], received: list[float]) -> None:
    try:
        async for _quote in stream:
            received.append(time.monotonic())
    finally:
        await close_stream(stream)


class ReconnectClauses(SuiteBase):
    """RC-1 to RC-4."""

    @clause("RC-1")
    async def test_rc1_calls_fail_fast_while_cut_off(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RC-1: while the backend is cut off, get_quote, get_orders, get_positions and
        get_balance fail with BrokerUnavailableError within 2 s: right after the cut, and again
        once the gateway has noticed it."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "RC-1") as gateway:
            await bounded("RC-1", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            async with broken(harness):
                await _fail_fast(gateway, harness.symbol, "right after the cut")
                await eventually(lambda: gateway.state is not ConnectionState.CONNECTED, NOTICE)
                await _fail_fast(gateway, harness.symbol, f"once the state was {gateway.state}")

    @clause("RC-2")
    async def test_rc2_calls_succeed_again_after_restore(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RC-2: once the link is restored, a call succeeds within 5 s, without connect() or any
        other help from the user."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "RC-2") as gateway:
            await bounded("RC-2", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            async with broken(harness):
                await run_into_outage(gateway, symbol=harness.symbol)
            ok, last = await recovered(gateway, harness.symbol, RECOVERY)
            expect(
                ok,
                "RC-2",
                f"no call succeeded after the link was restored (waited up to {RECOVERY:g} s, less if "
                f"the gateway stopped trying; state {gateway.state}, last error {last!r}); a gateway "
                "reconnects by itself",
            )

    @clause("RC-3")
    async def test_rc3_state_changes_come_in_order(self, started_broker_harness: ConformanceHarness) -> None:
        """RC-3: an outage shows as CONNECTED -> RECONNECTING (with the error as its reason) ->
        CONNECTED, and nothing else, before disconnect() closes."""
        harness = started_broker_harness
        gateway = harness.create_gateway(GENEROUS)
        log = StateLog(gateway)
        async with connected(gateway, "RC-3"):
            before = len(log.changes)
            async with broken(harness):
                await run_into_outage(gateway, symbol=harness.symbol)
            leaving = log.changes[before:]
            expect(
                bool(leaving),
                "RC-3",
                f"the state stayed connected for {FAIL_FAST + NOTICE:g} s with the backend cut off",
            )
            expect(
                leaving[0].current is ConnectionState.RECONNECTING,
                "RC-3",
                f"on losing the backend the state went {leaving[0].previous} -> {leaving[0].current}; "
                f"a gateway goes to reconnecting and reconnects by itself ({log.describe()})",
            )
            expect(
                isinstance(leaving[0].reason, BrokerError),
                "RC-3",
                "the change to reconnecting carries no BrokerError saying what failed: "
                f"{leaving[0].reason!r}",
            )
            back = await eventually(lambda: gateway.state is ConnectionState.CONNECTED, RECOVERY)
            expect(
                back, "RC-3", f"not connected {RECOVERY:g} s after the link was restored: {log.describe()}"
            )
        check_chain("RC-3", log.initial, log.changes)
        states = log.states()[before:]
        expect(
            states[-2:] == [ConnectionState.CONNECTED, ConnectionState.CLOSED]
            and all(state in _BETWEEN for state in states[:-2]),
            "RC-3",
            f"one outage went {log.describe()}; expected connected -> reconnecting "
            "(-> connecting -> reconnecting ...) -> connected -> closed",
        )

    @clause("RC-4")
    async def test_rc4_an_open_quote_stream_survives_an_outage(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RC-4: with STREAM_RESUME an open stream_quotes yields again within 5 s of restore;
        without it, it fails with BrokerUnavailableError within 5 s of the cut (mandatory for every
        gateway with QUOTE_STREAM)."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "RC-4") as gateway:
            capabilities = gateway.capabilities
            if Capability.QUOTE_STREAM not in capabilities:
                pytest.skip(
                    "the gateway does not declare Capability.QUOTE_STREAM: there is no stream to resume"
                )
            received: list[float] = []
            consumer = asyncio.ensure_future(_consume(gateway.stream_quotes([harness.symbol]), received))
            try:
                await eventually(lambda: bool(received) or consumer.done(), CALL_BOUND)
                expect(bool(received), "RC-4", f"no quote within {CALL_BOUND:g} s of opening stream_quotes")
                if Capability.STREAM_RESUME in capabilities:
                    await _resumes(harness, gateway, consumer, received)
                else:
                    await _fails_when_cut(harness, consumer)
            finally:
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)


async def _resumes(
    harness: ConformanceHarness,
    gateway: IBrokerGateway,
    consumer: asyncio.Future[None],
    received: list[float],
) -> None:
    __tracebackhide__ = True
    async with broken(harness):
        await eventually(lambda: gateway.state is not ConnectionState.CONNECTED, NOTICE)
        await asyncio.sleep(0.1)
        expect(
            not consumer.done(),
            "RC-4",
            "the gateway declares STREAM_RESUME, but its open stream ended in the outage: "
            f"{ending(consumer)}",
        )
    restored = time.monotonic()
    await eventually(
        lambda: received[-1] > restored or consumer.done() or gave_up(gateway, restored), RECOVERY
    )
    expect(
        not consumer.done(),
        "RC-4",
        f"the gateway declares STREAM_RESUME, but its stream ended after the restore: {ending(consumer)}",
    )
    expect(
        received[-1] > restored,
        "RC-4",
        f"the gateway declares STREAM_RESUME, but its open stream yielded nothing within {RECOVERY:g} s "
        f"of the link being restored (state {gateway.state})",
    )


async def _fails_when_cut(harness: ConformanceHarness, consumer: asyncio.Future[None]) -> None:
    __tracebackhide__ = True
    async with broken(harness):
        ended = await eventually(consumer.done, RECOVERY)
    expect(
        ended,
        "RC-4",
        f"without STREAM_RESUME an open stream must fail with BrokerUnavailableError once the link is lost; "
        f"it went silent for {RECOVERY:g} s",
    )
    error = None if consumer.cancelled() else consumer.exception()
    expect(
        isinstance(error, BrokerUnavailableError),
        "RC-4",
        f"without STREAM_RESUME an open stream must fail with BrokerUnavailableError when the link is lost; "
        f"it ended with {error!r}",
    )
