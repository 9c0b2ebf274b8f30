"""Real faults: lost replies, cut connections, a bridge killed with SIGKILL and restarted.

Every test proves its claim from the bridge's side (its request log and its orders), not from what
the gateway says it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from broker_plugins import (
    BrokerUnavailableError,
    ConnectionState,
    OrderOutcomeUnknownError,
    OrderRequest,
    OrderUpdate,
    Quote,
    StateChange,
)
from grpc_plugin import OrderStreamGap
from grpc_plugin.bridge import BridgeServer
from grpc_plugin.bridge._orders import NewOrder, OrderType, Side, TimeInForce
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2, trading_pb2_grpc
from tests.bridge.conftest import RICH, BridgeProcess, StartBridge
from tests.gateway.conftest import MakeGateway
from tests.support.waiting import until


@pytest.fixture
async def bridge(start_bridge: StartBridge) -> BridgeServer:
    return await start_bridge(budget=(), tick_rate=20.0, initial_cash=RICH)


def orders_of(bridge: BridgeServer, client_order_id: str) -> int:
    return sum(1 for key in bridge.orders_by_client_order_id() if key == client_order_id)


# -- orders across failures -------------------------------------------------------------------------


async def test_an_order_whose_reply_is_lost_is_found_by_its_id_not_placed_again(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    async with gateways(bridge.address, timeouts={"trading": 1.0}) as gateway:
        request = OrderRequest.market("AAPL", "buy", 1)
        bridge.delay(1.5)  # the bridge places the order, then holds its reply past our deadline
        asyncio.get_running_loop().call_later(1.2, bridge.clear_faults)
        order = await gateway.place_order(request)
    assert order.client_order_id == request.client_order_id
    assert orders_of(bridge, request.client_order_id) == 1
    assert [r.method for r in bridge.requests].count("PlaceOrder") == 1
    assert "GetOrder" in [r.method for r in bridge.requests]


async def test_an_order_lost_in_a_cut_reports_an_unknown_outcome_with_its_id(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    async with gateways(bridge.address, timeouts={"trading": 0.6}) as gateway:
        request = OrderRequest.market("AAPL", "buy", 1)
        bridge.delay(5.0)
        placing = asyncio.ensure_future(gateway.place_order(request))
        await until(lambda: "PlaceOrder" in [r.method for r in bridge.requests])
        await bridge.cut()
        with pytest.raises(OrderOutcomeUnknownError) as caught:
            await asyncio.wait_for(placing, 5)
        assert caught.value.client_order_id == request.client_order_id
        bridge.clear_faults()
        await bridge.restore()
    assert orders_of(bridge, request.client_order_id) == 1  # it did reach the bridge, once
    assert len(bridge.orders_by_client_order_id()) == 1  # and nothing under another id


async def test_an_order_refused_while_the_bridge_is_down_is_not_sent_later(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    async with gateways(bridge.address) as gateway:
        await bridge.cut()
        # Once the gateway knows; a request racing the cut may have left, and is looked up instead.
        await until(lambda: gateway.state is not ConnectionState.CONNECTED)
        with pytest.raises(BrokerUnavailableError):
            await gateway.place_order(OrderRequest.market("AAPL", "buy", 1))
        await bridge.restore()
        await until(lambda: gateway.state is ConnectionState.CONNECTED)
        await asyncio.sleep(0.3)
    assert bridge.orders_by_client_order_id() == {}  # a stale order is worse than a failed one


async def test_a_bridge_killed_mid_order_and_restarted_holds_the_order_exactly_once(
    bridge_processes: Callable[..., BridgeProcess], gateways: MakeGateway, tmp_path: Path
) -> None:
    state = str(tmp_path / "bridge.sqlite")
    first = bridge_processes("--state", state, "--no-budget", "--reply-delay", "3")
    port = first.address.rsplit(":", 1)[1]
    async with gateways(first.address, timeouts={"trading": 10.0}) as gateway:
        request = OrderRequest.market("005930", "buy", 1)
        placing = asyncio.ensure_future(gateway.place_order(request))
        # Killed once the bridge's own journal holds the order, while it holds the reply back.
        await until(lambda: _journaled(state, request.client_order_id))
        first.signal(signal.SIGKILL)
        first.wait(5)
        second = bridge_processes("--state", state, "--no-budget", "--port", port)
        assert second.address == first.address
        order = await asyncio.wait_for(placing, 15)
        assert order.client_order_id == request.client_order_id
        again = await gateway.place_order(request)  # de-duplicated by the restarted bridge too
        assert again.order_id == order.order_id

    channel = grpc.aio.insecure_channel(second.address)
    try:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        listed = await stub.ListOrders(trading_pb2.ListOrdersRequest(), timeout=5)
    finally:
        await channel.close()
    assert [o.client_order_id for o in listed.orders] == [request.client_order_id]


# -- reconnects -------------------------------------------------------------------------------------


async def test_a_cut_is_seen_calls_fail_fast_and_the_gateway_comes_back_by_itself(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    changes: list[StateChange] = []
    async with gateways(bridge.address) as gateway:
        gateway.add_state_listener(changes.append)
        await bridge.cut()
        await until(lambda: gateway.state is ConnectionState.RECONNECTING)
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(BrokerUnavailableError):
                await gateway.get_quote("AAPL")
            assert time.monotonic() - started < 1.0 + 0.5  # the bound, plus room for a busy machine
        await bridge.restore()
        restored = time.monotonic()
        await until(lambda: gateway.state is ConnectionState.CONNECTED, within=5)
        assert (await gateway.get_quote("AAPL")).symbol == "AAPL"
        assert time.monotonic() - restored < 5
    states = [c.current for c in changes]
    assert states[:2] == [ConnectionState.RECONNECTING, ConnectionState.CONNECTED]
    assert changes[0].reason is not None


async def test_the_next_call_reconnects_an_idle_channel(bridge: BridgeServer, gateways: MakeGateway) -> None:
    # No health probes: only the call itself can notice that the bridge came back.
    async with gateways(bridge.address, health_check_interval=3600.0) as gateway:
        await bridge.cut()
        await bridge.restore()
        assert (await gateway.get_quote("AAPL")).symbol == "AAPL"


async def test_an_open_quote_stream_resumes_after_a_cut(bridge: BridgeServer, gateways: MakeGateway) -> None:
    async with gateways(bridge.address) as gateway:
        received: list[Quote] = []
        resumed = asyncio.Event()
        cut_at = 0.0

        async def consume() -> None:
            async for quote in gateway.stream_quotes(["AAPL"]):
                received.append(quote)
                if cut_at and quote.time.timestamp() > cut_at:
                    resumed.set()

        consumer = asyncio.ensure_future(consume())
        await until(lambda: len(received) > 2)
        await bridge.cut()
        await asyncio.sleep(0.5)
        cut_at = time.time()
        await bridge.restore()
        await asyncio.wait_for(resumed.wait(), 10)
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        assert [r.method for r in bridge.requests].count("StreamQuotes") >= 2  # re-subscribed by itself


async def test_order_updates_missed_during_a_cut_are_replayed_and_the_gap_reported(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    gaps: list[OrderStreamGap] = []
    async with gateways(bridge.address) as gateway:
        gateway.add_gap_listener(gaps.append)
        updates: list[OrderUpdate] = []

        async def consume() -> None:
            async for update in gateway.stream_order_updates():
                updates.append(update)

        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0.2)
        await gateway.place_order(OrderRequest.limit("AAPL", "buy", 1, "1.00", client_order_id="before"))
        await until(lambda: len(updates) >= 1)
        await bridge.cut()
        # While the gateway cannot see it, the bridge takes an order from elsewhere.
        new = NewOrder(
            "during", "AAPL", Side.BUY, OrderType.LIMIT, Decimal(1), Decimal("1.00"), TimeInForce.GTC
        )
        bridge.broker.place("paper", new)
        await bridge.restore()
        await until(lambda: any(u.order.client_order_id == "during" for u in updates))
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
    sequences = [u.sequence for u in updates]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == len(sequences)  # nothing twice
    assert [g.resynchronised for g in gaps] == [False]
    assert gaps[0].start <= gaps[0].end


async def test_breaking_out_of_a_stream_ends_its_call(bridge: BridgeServer, gateways: MakeGateway) -> None:
    async with gateways(bridge.address) as gateway:
        async for _ in gateway.stream_quotes(["AAPL"]):
            break
        await until(lambda: not gateway._connection.in_flight, within=2)


async def test_disconnect_ends_a_stream_that_another_task_reads(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    gateway = gateways(bridge.address)
    await gateway.connect()
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in gateway.stream_quotes(["AAPL"]):
            started.set()

    consumer = asyncio.ensure_future(consume())
    await asyncio.wait_for(started.wait(), 5)
    await gateway.disconnect()
    with pytest.raises(BrokerUnavailableError, match="disconnected"):
        await asyncio.wait_for(consumer, 5)
    assert not gateway._connection.in_flight


def _journaled(path: str, client_order_id: str) -> bool:
    """Whether the bridge's journal (its SQLite file, read on the side) holds that order."""
    if not Path(path).exists():
        return False
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            rows = db.execute("SELECT body FROM orders").fetchall()
        except sqlite3.OperationalError:  # the schema is not written yet
            return False
    return any(client_order_id in body for (body,) in rows)
