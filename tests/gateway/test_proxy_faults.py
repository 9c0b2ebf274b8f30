"""Faults between gateway and bridge, made by a TCP proxy: a silent peer, a cut link, many outages."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator

import pytest

from broker_plugins import BrokerError, BrokerUnavailableError, ConnectionState, Quote, RateLimit
from conformance_tests import FaultProxy
from grpc_plugin.bridge import BridgeServer
from tests.bridge.conftest import StartBridge
from tests.gateway.conftest import MakeGateway
from tests.support.waiting import until


@pytest.fixture
async def proxied(start_bridge: StartBridge) -> AsyncIterator[tuple[BridgeServer, FaultProxy]]:
    bridge = await start_bridge(budget=(), tick_rate=50.0)
    async with FaultProxy(bridge.port) as proxy:
        yield bridge, proxy


async def test_a_black_holed_bridge_is_detected_within_the_declared_bound(
    proxied: tuple[BridgeServer, FaultProxy], gateways: MakeGateway
) -> None:
    _, proxy = proxied
    async with gateways(proxy.address) as gateway:
        assert (await gateway.get_quote("AAPL")).symbol == "AAPL"
        await proxy.blackhole()
        # The declared bound (a quiet interval, two probes unanswered), plus room for a loaded machine.
        detected = await until(
            lambda: gateway.state is not ConnectionState.CONNECTED, gateway.half_open_bound + 1.5
        )
        assert detected <= gateway.half_open_bound + 1.5
        started = time.monotonic()
        with pytest.raises(BrokerError):
            await gateway.get_quote("AAPL")
        # Within about unavailable_timeout (1 s), far from the call's 5 s deadline.
        assert time.monotonic() - started < 3.0
        await proxy.restore()
        await until(lambda: gateway.state is ConnectionState.CONNECTED, 10)
        assert (await gateway.get_quote("AAPL")).symbol == "AAPL"


async def test_a_stream_on_a_silent_link_resumes_once_the_link_is_back(
    proxied: tuple[BridgeServer, FaultProxy], gateways: MakeGateway
) -> None:
    _, proxy = proxied
    async with gateways(proxy.address, stream_stale_after=0.5) as gateway:
        quotes: list[Quote] = []

        async def consume() -> None:
            async for quote in gateway.stream_quotes(["AAPL"]):
                quotes.append(quote)

        consumer = asyncio.ensure_future(consume())
        await until(lambda: len(quotes) > 3, 5)
        await proxy.blackhole()
        await asyncio.sleep(1.0)
        before = len(quotes)
        await proxy.restore()
        await until(lambda: len(quotes) > before + 3, 10)
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)


async def test_a_cut_link_fails_calls_fast_and_recovers(
    proxied: tuple[BridgeServer, FaultProxy], gateways: MakeGateway
) -> None:
    _, proxy = proxied
    async with gateways(proxy.address) as gateway:
        await proxy.cut()
        await until(lambda: gateway.state is ConnectionState.RECONNECTING, 3)
        started = time.monotonic()
        with pytest.raises(BrokerUnavailableError):
            await gateway.get_quote("AAPL")
        assert time.monotonic() - started < 1.5
        await proxy.restore()
        await until(lambda: gateway.state is ConnectionState.CONNECTED, 10)
        assert (await gateway.get_quote("AAPL")).symbol == "AAPL"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts file descriptors through /proc (Linux)"
)
@pytest.mark.slow
async def test_twenty_outages_in_a_row_leak_nothing(
    proxied: tuple[BridgeServer, FaultProxy], gateways: MakeGateway
) -> None:
    _, proxy = proxied
    async with gateways(proxy.address, unavailable_timeout=0.2) as gateway:

        async def outage() -> None:
            await proxy.cut()
            await until(lambda: gateway.state is ConnectionState.RECONNECTING, 3)
            with pytest.raises(BrokerUnavailableError):
                await gateway.get_quote("AAPL")
            await proxy.restore()
            await until(lambda: gateway.state is ConnectionState.CONNECTED, 10)
            await gateway.get_quote("AAPL")

        for _ in range(3):  # warm up: caches, lazily created gRPC state
            await outage()
        gc.collect()
        tasks, fds, rss = len(asyncio.all_tasks()), _open_fds(), _rss_bytes()
        for _ in range(20):
            await outage()
        gc.collect()
        assert len(asyncio.all_tasks()) == tasks
        assert _open_fds() <= fds + 2, "file descriptors grew across outages"
        assert _rss_bytes() - rss < 20 * 1024 * 1024, "memory grew by more than 20 MB across 20 outages"


async def test_disconnect_releases_the_connection_while_the_callers_keep_stream_errors(
    proxied: tuple[BridgeServer, FaultProxy], gateways: MakeGateway
) -> None:
    # A task's exception keeps its traceback, and so frames; a live gRPC call object keeps its
    # connection open even after the channel is closed (grpc issue 42125). Nothing may hold one.
    _, proxy = proxied
    gateway = gateways(proxy.address)
    await gateway.connect()
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in gateway.stream_quotes(["AAPL"]):
            started.set()

    consumers = [asyncio.ensure_future(consume()) for _ in range(3)]
    await asyncio.wait_for(started.wait(), 5)
    await gateway.disconnect()
    await asyncio.wait(consumers, timeout=5)
    assert all(isinstance(task.exception(), BrokerUnavailableError) for task in consumers)
    await until(lambda: proxy.connections == 0, 3)  # the tasks, and their errors, are still alive


async def test_disconnect_closes_a_paused_stream_and_refuses_a_call_waiting_for_its_permit(
    proxied: tuple[BridgeServer, FaultProxy], gateways: MakeGateway
) -> None:
    _, proxy = proxied
    gateway = gateways(proxy.address, rate_limits={"account": RateLimit(1, 1.0)})
    await gateway.connect()
    stream = gateway.stream_quotes(["AAPL"])
    await asyncio.wait_for(stream.__anext__(), 5)  # then nobody pulls: the stream is paused
    await gateway.get_balance()
    waiting = asyncio.ensure_future(gateway.get_balance())  # in line for the next permit
    await asyncio.sleep(0.05)
    await gateway.disconnect()
    with pytest.raises(BrokerUnavailableError):
        await asyncio.wait_for(waiting, 2)  # it got its permit after disconnect: it must not go out
    await until(lambda: proxy.connections == 0, 3)
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_a_kept_call_error_does_not_hold_the_connection_after_disconnect(
    proxied: tuple[BridgeServer, FaultProxy], gateways: MakeGateway
) -> None:
    _, proxy = proxied
    gateway = gateways(proxy.address)
    await gateway.connect()
    kept: list[BrokerError] = []
    try:
        await gateway.get_quote("NOPE")
    except BrokerError as error:  # a host that logs its errors later keeps them around
        kept.append(error)
    assert kept
    assert kept[0].__context__ is None  # nothing of gRPC's rides along, its call included
    await gateway.disconnect()
    await until(lambda: proxy.connections == 0, 3)


async def test_a_call_in_flight_when_the_link_goes_silent_fails_as_unavailable_not_at_its_deadline(
    proxied: tuple[BridgeServer, FaultProxy], gateways: MakeGateway
) -> None:
    bridge, proxy = proxied
    async with gateways(proxy.address, timeouts=30.0) as gateway:
        bridge.delay(20.0)  # the reply would come long after the link is found silent
        call = asyncio.ensure_future(gateway.get_instrument("AAPL"))
        await until(lambda: any(r.method == "GetInstrument" for r in bridge.requests))
        await proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailableError):
            await call
        # Found by the probes that a waiting call brings on (every health_check_timeout), long before
        # the 30 s deadline.
        assert time.monotonic() - started < 10
        bridge.delay(0)
        await proxy.restore()
        await until(lambda: gateway.state is ConnectionState.CONNECTED)


async def test_concurrent_connects_open_one_channel_and_a_disconnect_during_connect_wins(
    proxied: tuple[BridgeServer, FaultProxy], gateways: MakeGateway
) -> None:
    _, proxy = proxied
    gateway = gateways(proxy.address)
    await asyncio.gather(gateway.connect(), gateway.connect())
    channel = gateway._connection._channel
    await gateway.connect()
    assert gateway._connection._channel is channel  # connected already: nothing reopened
    await gateway.disconnect()
    await proxy.blackhole()  # the first contact of the next connect() goes unanswered
    connecting = asyncio.ensure_future(gateway.connect())
    await until(lambda: gateway.state is ConnectionState.CONNECTING)
    await gateway.disconnect()
    with pytest.raises(BrokerUnavailableError, match=r"disconnect\(\) was called"):
        await connecting
    assert gateway.state is ConnectionState.CLOSED
    assert gateway._connection._channel is None
