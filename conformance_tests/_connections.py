"""LC-6 to LC-11: connecting under pressure, the complete state chain, faulty listeners, and the
connections the backend sees, counted there (harness protocol 2, `backend_connections`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from broker_plugins import BrokerError, ConnectionState, IBrokerGateway, StateChange
from conformance_tests._backdoor import member, on_harness
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import BackendConnection, ConformanceHarness
from conformance_tests._outage import RECOVERY, broken, check_chain, recovered, run_into_outage
from conformance_tests._support import (
    CALL_BOUND,
    StateLog,
    attempt,
    bounded,
    disconnect_quietly,
    ending,
    eventually,
    expect,
    open_gateway,
    outcome_of,
)

__all__ = ["ConnectionClauses"]

_CONNECT_LATENCY = 0.05
"""Seconds of latency each way while connect() calls overlap, so that connecting takes a moment."""
_SLOW_CONNECT = 0.25
"""Seconds of latency each way while LC-7 calls disconnect() in the middle of connect()."""
_STAYS = 0.5
"""Seconds a gateway closed during connect() is watched, to see that nothing reconnects it."""
_SETTLE = 2.0
_OUTAGES = 2

Connections = Callable[[], Sequence[BackendConnection]]


def _connections(harness: ConformanceHarness) -> Connections:
    found: Connections = member(harness, "backend_connections", "to count connections at the backend")
    return found


def _opened_since(connections: Connections, since: float) -> list[BackendConnection]:
    return [c for c in connections() if c.opened >= since]


def _open_now(connections: Connections) -> int:
    return sum(1 for c in connections() if c.closed is None)


async def _settled(count: Callable[[], int], seconds: float = _SETTLE) -> int:
    """`count()` once it has held still for 0.15 s (at most `seconds`)."""
    deadline = time.monotonic() + seconds
    value, still_since = count(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - still_since < 0.15:
        await asyncio.sleep(0.02)
        latest = count()
        if latest != value:
            value, still_since = latest, time.monotonic()
    return value


async def _one_connect(harness: ConformanceHarness, connections: Connections) -> int:
    """How many connections one connect() of a new gateway opens at the backend."""
    gateway = harness.create_gateway(GENEROUS)
    since = time.monotonic()
    try:
        await bounded("LC-6", gateway.connect(), CALL_BOUND, "connect()")
        return len(_opened_since(connections, since))
    finally:
        await disconnect_quietly(gateway)


class ConnectionClauses(SuiteBase):
    """LC-6 to LC-11."""

    @clause("LC-6")
    async def test_lc6_concurrent_connects_open_one_connection(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """LC-6: five connect() calls at once open as many connections at the backend as one does."""
        harness = started_broker_harness
        connections = _connections(harness)
        await on_harness(harness.set_latency(_CONNECT_LATENCY))
        try:
            single = await _one_connect(harness, connections)
            gateway = harness.create_gateway(GENEROUS)
            since = time.monotonic()
            try:
                racing = asyncio.gather(*(gateway.connect() for _ in range(5)), return_exceptions=True)
                results = await bounded("LC-6", racing, CALL_BOUND, "five concurrent connect() calls")
                opened = len(_opened_since(connections, since))
            finally:
                await disconnect_quietly(gateway)
        finally:
            await on_harness(harness.set_latency(0))
        failed = [result for result in results if isinstance(result, BaseException)]
        expect(not failed, "LC-6", f"{len(failed)} of 5 concurrent connect() calls failed: {failed[:1]!r}")
        expect(
            opened == single,
            "LC-6",
            f"five concurrent connect() calls opened {opened} connections at the backend; one connect() "
            f"opens {single}: overlapping calls must share one connection attempt",
        )

    @clause("LC-7")
    async def test_lc7_disconnect_during_connect_ends_closed_and_stays_closed(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """LC-7: disconnect() called while connect() is under way (0.25 s latency each way) ends
        the gateway CLOSED; it stays CLOSED, and (with `backend_connections`) holds no connection."""
        harness = started_broker_harness
        gateway = harness.create_gateway(GENEROUS)
        log = StateLog(gateway)
        await on_harness(harness.set_latency(_SLOW_CONNECT))
        connecting = asyncio.ensure_future(gateway.connect())
        try:
            await eventually(
                lambda: gateway.state is ConnectionState.CONNECTING or connecting.done(), CALL_BOUND
            )
            was_connecting = gateway.state is ConnectionState.CONNECTING and not connecting.done()
            await bounded("LC-7", gateway.disconnect(), CALL_BOUND, "disconnect() during connect()")
            ended = await outcome_of(connecting, CALL_BOUND)
        finally:
            await on_harness(harness.set_latency(0))
            connecting.cancel()
        expect(
            was_connecting,
            "LC-7",
            f"connect() did not show CONNECTING while it was under way ({log.describe()}; connect() "
            f"{ending(connecting)}); with {_SLOW_CONNECT:g} s latency each way it takes a round trip",
        )
        expect(ended.finished, "LC-7", "connect() had not returned 10 s after disconnect() was called")
        expect(
            ended.error is None or isinstance(ended.error, BrokerError),
            "LC-7",
            f"connect() interrupted by disconnect() raised {ended.error!r}; expected a BrokerError "
            "(or nothing)",
        )
        reopened = await eventually(lambda: gateway.state is not ConnectionState.CLOSED, _STAYS)
        expect(
            not reopened,
            "LC-7",
            f"disconnect() during connect() must end CLOSED and stay so; the states went {log.describe()}",
        )
        check_chain("LC-7", log.initial, log.changes)
        connections = getattr(harness, "backend_connections", None)
        if connections is not None:
            still = await _settled(lambda: _open_now(connections))
            expect(
                still == 0,
                "LC-7",
                f"{still} connection(s) stayed open at the backend after disconnect() during connect()",
            )

    @clause("LC-8")
    async def test_lc8_connect_on_a_connected_gateway_reopens_nothing(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """LC-8: connect() on a connected gateway opens and closes no connection at the backend."""
        harness = started_broker_harness
        connections = _connections(harness)
        async with open_gateway(harness, GENEROUS, "LC-8") as gateway:
            await bounded("LC-8", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            open_before = await _settled(lambda: _open_now(connections))
            since = time.monotonic()
            for _ in range(2):
                await bounded("LC-8", gateway.connect(), CALL_BOUND, "connect() when connected")
            await bounded("LC-8", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            opened = len(_opened_since(connections, since))
            open_after = _open_now(connections)
        expect(
            opened == 0 and open_after == open_before,
            "LC-8",
            f"connect() twice on a connected gateway opened {opened} connection(s) at the backend "
            f"({open_before} open before, {open_after} after); it must do nothing",
        )

    @clause("LC-9")
    async def test_lc9_the_state_chain_is_complete(self, started_broker_harness: ConformanceHarness) -> None:
        """LC-9: disconnect() before any connect() changes nothing; a first connect() that fails
        goes CONNECTING -> DISCONNECTED (with the error) and raises a BrokerError; the next goes
        CONNECTING -> CONNECTED; disconnect() -> CLOSED. No state is skipped."""
        harness = started_broker_harness
        gateway = harness.create_gateway(GENEROUS)
        log = StateLog(gateway)
        await bounded("LC-9", gateway.disconnect(), CALL_BOUND, "disconnect() before any connect()")
        expect(
            not log.changes and gateway.state is ConnectionState.DISCONNECTED,
            "LC-9",
            f"disconnect() before any connect() went {log.describe()}; a gateway never connected stays "
            "DISCONNECTED",
        )
        async with broken(harness):
            error = await attempt("LC-9", gateway.connect(), CALL_BOUND, "connect() to a cut-off backend")
        expect(
            isinstance(error, BrokerError),
            "LC-9",
            f"connect() with the backend cut off returned {error!r} instead of raising a BrokerError",
        )
        expect(
            [change.current for change in log.changes]
            == [ConnectionState.CONNECTING, ConnectionState.DISCONNECTED],
            "LC-9",
            f"a first connect() that failed went {log.describe()}; expected connecting -> disconnected",
        )
        expect(
            isinstance(log.changes[-1].reason, BrokerError),
            "LC-9",
            f"the change to DISCONNECTED after a failed connect() carries no BrokerError as its reason: "
            f"{log.changes[-1].reason!r}",
        )
        try:
            await bounded("LC-9", gateway.connect(), CALL_BOUND, "connect() after the restore")
        finally:
            await bounded("LC-9", gateway.disconnect(), CALL_BOUND, "disconnect()")
        check_chain("LC-9", log.initial, log.changes)
        expected = [
            ConnectionState.CONNECTING,
            ConnectionState.DISCONNECTED,
            ConnectionState.CONNECTING,
            ConnectionState.CONNECTED,
            ConnectionState.CLOSED,
        ]
        expect(
            log.states() == expected,
            "LC-9",
            f"a failed connect(), a connect() and a disconnect() went {log.describe()}; expected "
            + " -> ".join(str(state) for state in (log.initial, *expected)),
        )

    @clause("LC-10")
    async def test_lc10_a_raising_listener_breaks_nothing(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """LC-10: with a state listener that raises on every call, connect(), calls, an outage and
        its recovery, and disconnect() all work, and the other listeners hear every change."""
        harness = started_broker_harness
        gateway = harness.create_gateway(GENEROUS)
        raised: list[StateChange] = []

        def faulty(change: StateChange) -> None:
            raised.append(change)
            raise RuntimeError("a host's listener failed")

        gateway.add_state_listener(faulty)
        log = StateLog(gateway)
        try:
            await bounded("LC-10", gateway.connect(), CALL_BOUND, "connect() with a raising listener")
            await bounded("LC-10", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            async with broken(harness):
                await run_into_outage(gateway, symbol=harness.symbol)
            ok, last = await recovered(gateway, harness.symbol, RECOVERY)
            expect(
                ok,
                "LC-10",
                f"with a listener that raises, no call succeeded within {RECOVERY:g} s of the restore "
                f"(state {gateway.state}, last error {last!r}): the raise must not stop reconnecting",
            )
        finally:
            await disconnect_quietly(gateway)
        states = log.states()
        expect(
            ConnectionState.RECONNECTING in states and states[-1] is ConnectionState.CLOSED,
            "LC-10",
            f"beside a listener that raises, another heard {log.describe()}; expected the outage "
            "(reconnecting) and the close",
        )
        check_chain("LC-10", log.initial, log.changes)

    @clause("LC-11")
    async def test_lc11_each_reconnect_replaces_its_connections(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """LC-11: after each of 2 outages, once recovered, the backend holds as many open connections
        from the gateway as before the first: a reconnect replaces connections, it does not add any."""
        harness = started_broker_harness
        connections = _connections(harness)
        async with open_gateway(harness, GENEROUS, "LC-11") as gateway:
            await _use(gateway, harness)
            before = await _settled(lambda: _open_now(connections))
            for number in range(1, _OUTAGES + 1):
                async with broken(harness):
                    await run_into_outage(gateway, symbol=harness.symbol)
                ok, last = await recovered(gateway, harness.symbol, RECOVERY)
                expect(ok, "LC-11", f"outage {number}: no call succeeded after the restore ({last!r})")
                await _use(gateway, harness)
                now = await _settled(lambda: _open_now(connections))
                expect(
                    now == before,
                    "LC-11",
                    f"after outage {number} of {_OUTAGES} the backend holds {now} open connection(s) from "
                    f"the gateway; before the first it held {before}: each reconnect must replace the "
                    "connections it lost, not add new ones beside them",
                )


async def _use(gateway: IBrokerGateway, harness: ConformanceHarness) -> None:
    await bounded("LC-11", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
