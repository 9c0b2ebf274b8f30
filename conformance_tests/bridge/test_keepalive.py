"""BK-KA: a connection with the client keepalive the contract asks for stays up, busy or idle.

The client pings at most once per 5 minutes and never on an idle connection (keepalive_time 300 s,
keepalive_permit_without_calls 0): what a bridge with gRPC's stock enforcement accepts. The
connection carries a health check every PROBE_EVERY seconds for BUSY seconds (the way the gateway
notices a half-open peer), then nothing for IDLE seconds; it must stay READY throughout: no GOAWAY,
no reconnect.
"""

from __future__ import annotations

import threading
import time

import grpc

from conformance_tests.bridge._check import Check

PROBE_EVERY = 0.25
BUSY = 1.5
IDLE = 1.5
READY = grpc.ChannelConnectivity.READY


def test_bk_ka1_a_connection_with_the_contracts_keepalive_stays_up_busy_or_idle(check: Check) -> None:
    stubs = check.wire.connect()
    grpc.channel_ready_future(stubs.channel).result(timeout=10)
    states: list[grpc.ChannelConnectivity] = []
    lock = threading.Lock()
    sent = (
        f"a health check every {PROBE_EVERY:g} s for {BUSY:g} s, then {IDLE:g} s idle, on one connection "
        "with keepalive_time 300 s and keepalive_permit_without_calls 0"
    )

    def seen(state: grpc.ChannelConnectivity) -> None:
        with lock:
            states.append(state)

    def still_up() -> None:
        with lock:
            since = states[states.index(READY) :] if READY in states else list(states)
        if any(state is not READY for state in since):
            went = " -> ".join(state.name for state in since)
            check.fail(sent, f"the connection went {went}", note="the bridge closed it (GOAWAY?)")

    stubs.channel.subscribe(seen, try_to_connect=True)
    try:
        for probe in range(int(BUSY / PROBE_EVERY)):
            check.count()
            outcome = check.wire.health_check(stubs)
            if not outcome.ok:
                check.fail(f"Health.Check number {probe + 1}, one every {PROBE_EVERY:g} s", outcome)
            still_up()
            time.sleep(PROBE_EVERY)
        time.sleep(IDLE)
        still_up()
        check.healthy_afterwards(stubs)
        still_up()
    finally:
        stubs.channel.unsubscribe(seen)
