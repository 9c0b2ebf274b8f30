"""GrpcBrokerGateway against a real bridge on loopback: every method, end to end."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from broker_plugins import (
    BrokerRegistry,
    Capability,
    ConnectionState,
    IBrokerGateway,
    Interval,
    InvalidRequestError,
    NotFoundError,
    OrderRejectedError,
    OrderRequest,
    OrderStatus,
    OrderType,
    RateLimit,
    RateLimiter,
    Side,
)
from grpc_plugin import GrpcBrokerGateway
from grpc_plugin.bridge import BridgeServer
from tests.bridge.conftest import RICH, StartBridge
from tests.gateway.conftest import MakeGateway
from tests.support.streams import aclose
from tests.support.waiting import state_of


@pytest.fixture
async def bridge(start_bridge: StartBridge) -> BridgeServer:
    return await start_bridge(budget=(), tick_rate=50.0, initial_cash=RICH)


def test_the_registry_builds_the_grpc_gateway_from_its_entry_point() -> None:
    registry = BrokerRegistry(environ={"BROKER_PLUGINS_ALLOW": "grpc"})
    assert "grpc" in registry.names()
    gateway = registry.create("grpc", target="127.0.0.1:50051")
    assert isinstance(gateway, GrpcBrokerGateway)
    assert isinstance(gateway, IBrokerGateway)
    assert gateway.state is ConnectionState.DISCONNECTED
    [info] = [info for info in registry.gateways() if info.name == "grpc"]
    assert info.distribution == "broker-plugins"
    assert Capability.STREAM_RESUME in info.capabilities


async def test_market_data_end_to_end(bridge: BridgeServer, gateways: MakeGateway) -> None:
    async with gateways(bridge.address) as gateway:
        instrument = await gateway.get_instrument("005930")
        assert (instrument.symbol, instrument.currency, instrument.exchange) == ("005930", "KRW", "KRX")
        quote = await gateway.get_quote("005930")
        assert quote.bid < quote.ask
        assert quote.time.tzinfo is not None
        assert quote.bid % instrument.tick_size == 0

        candles = await gateway.get_candles("005930", Interval.M1, limit=50)
        assert len(candles) == 50
        starts = [candle.start for candle in candles]
        assert starts == sorted(starts)
        assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in candles)
        assert candles[-1] == list(candles)[-1]
        assert candles[1:3] == [candles[1], candles[2]]

        start = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
        window = await gateway.get_candles("AAPL", "5m", start=start, end=start + timedelta(hours=1))  # type: ignore[arg-type]
        assert [c.start for c in window] == [start + timedelta(minutes=5 * i) for i in range(12)]
        again = await gateway.get_candles("AAPL", Interval.M5, start=start, end=start + timedelta(hours=1))
        assert list(again) == list(window)  # deterministic

        seen: set[str] = set()
        async for tick in gateway.stream_quotes(["005930", "AAPL"]):
            seen.add(tick.symbol)
            if seen == {"005930", "AAPL"}:
                break

        status = await gateway.health_check()
        assert status.healthy
        assert status.latency is not None
        assert status.latency > 0


async def test_instruments_are_listed_by_exchange_with_a_permit_per_request(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    async with gateways(bridge.address) as gateway:
        limiter = gateway.rate_limiter
        assert isinstance(limiter, RateLimiter)
        before = limiter.stats().category("market_data").permits_granted
        bridge.clear_requests()
        everything = await gateway.list_instruments()
        krx = await gateway.list_instruments("KRX")
        nasdaq = await gateway.list_instruments(exchange="NASDAQ")
        unknown = await gateway.list_instruments("LSE")
        received = [r.method for r in bridge.requests]
        permits = limiter.stats().category("market_data").permits_granted - before
        with pytest.raises(InvalidRequestError, match="exchange must be"):
            await gateway.list_instruments("no spaces")
    symbols = [i.symbol for i in everything]
    assert symbols == sorted(symbols)
    assert len(symbols) == 12
    assert {i.exchange for i in krx} == {"KRX"}
    assert len(krx) == 6
    assert [i.symbol for i in nasdaq] == ["AAPL", "AMZN", "GOOGL", "MSFT", "NVDA", "TSLA"]
    assert unknown == []  # an exchange the bridge does not list lists nothing
    assert sorted([*krx, *nasdaq], key=lambda i: i.symbol) == list(everything)
    assert received == ["ListInstruments"] * 4  # and the malformed one never left
    assert permits == 4


async def test_trading_and_account_end_to_end(bridge: BridgeServer, gateways: MakeGateway) -> None:
    async with gateways(bridge.address) as gateway:
        updates = gateway.stream_order_updates()
        first_update = asyncio.ensure_future(updates.__anext__())
        await asyncio.sleep(0.1)  # the subscription is live before the order goes in

        request = OrderRequest.market("005930", Side.BUY, 3)
        order = await gateway.place_order(request)
        assert order.client_order_id == request.client_order_id
        assert order.side is Side.BUY
        assert order.order_type is OrderType.MARKET
        update = await asyncio.wait_for(first_update, 5)
        assert update.order.client_order_id == request.client_order_id
        assert update.sequence >= 1
        await aclose(updates)

        again = await gateway.place_order(request)  # same client_order_id: the bridge de-duplicates
        assert again.order_id == order.order_id
        assert (
            len([o for o in await gateway.get_orders() if o.client_order_id == request.client_order_id]) == 1
        )

        quote = await gateway.get_quote("AAPL")
        resting = await gateway.place_order(
            OrderRequest.limit("AAPL", "buy", 2, (quote.bid / 2).quantize(Decimal("0.01")))
        )
        assert resting.status is OrderStatus.NEW
        assert resting.price is not None
        assert [o.order_id for o in await gateway.get_orders(open_only=True, symbol="AAPL")] == [
            resting.order_id
        ]
        modified = await gateway.modify_order(resting.order_id, price=resting.price - 1, quantity=3)
        assert (modified.price, modified.quantity) == (resting.price - 1, Decimal(3))
        cancelled = await gateway.cancel_order(resting.order_id)
        assert cancelled.status is OrderStatus.CANCELLED
        assert (await gateway.get_order(resting.order_id)).status is OrderStatus.CANCELLED

        for _ in range(100):  # the market order fills against the next ticks
            if (await gateway.get_order(order.order_id)).status is OrderStatus.FILLED:
                break
            await asyncio.sleep(0.05)
        positions = {p.symbol: p for p in await gateway.get_positions()}
        assert positions["005930"].quantity == 3
        balance = await gateway.get_balance()
        assert balance.currency == "KRW"
        assert balance.cash < RICH["KRW"]


async def test_a_rejected_order_raises_with_the_reason(
    start_bridge: StartBridge, gateways: MakeGateway
) -> None:
    bridge = await start_bridge(budget=(), initial_cash={"KRW": Decimal(1000)})
    async with gateways(bridge.address) as gateway:
        request = OrderRequest.market("005930", "buy", 1000)
        with pytest.raises(OrderRejectedError, match="insufficient") as caught:
            await gateway.place_order(request)
        assert caught.value.client_order_id == request.client_order_id
        assert "insufficient" in caught.value.reason


async def test_paging_is_invisible_one_call_returns_100k_candles(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    async with gateways(bridge.address, timeouts=60.0) as gateway:
        candles = await gateway.get_candles("AAPL", Interval.M1, limit=100_000)
        assert len(candles) == 100_000
        gaps = {candles[i + 1].start - candles[i].start for i in range(0, 100_000, 997) if i + 1 < 100_000}
        assert gaps == {timedelta(minutes=1)}
        assert [r.method for r in bridge.requests].count("GetCandles") == 2  # two pages of 50,000


async def test_unknown_symbols_and_orders_are_not_found(bridge: BridgeServer, gateways: MakeGateway) -> None:
    async with gateways(bridge.address) as gateway:
        with pytest.raises(NotFoundError, match=f"GetQuote on {bridge.address} failed"):
            await gateway.get_quote("NOPE")
        with pytest.raises(NotFoundError):
            await gateway.get_order("no-such-order")
        with pytest.raises(NotFoundError):
            await gateway.get_instrument("NOPE")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g: g.get_quote(""), "symbol must not be empty"),
        (lambda g: g.get_quote("bad symbol"), "malformed"),
        (lambda g: g.get_candles("AAPL", Interval.M1, limit=0), "limit must be a whole number from 1"),
        (lambda g: g.get_candles("AAPL", "2m"), "interval must be one of"),
        (lambda g: g.get_candles("AAPL", Interval.M1, start=datetime(2026, 1, 1)), "has no timezone"),
        (
            lambda g: g.get_candles(
                "AAPL",
                Interval.M1,
                start=datetime(2026, 1, 2, tzinfo=timezone.utc),
                end=datetime(2026, 1, 1, tzinfo=timezone.utc),
            ),
            "must be after start",
        ),
        (lambda g: g.modify_order("1"), "needs a new quantity or a new price"),
        (lambda g: g.modify_order("1", quantity=-1), "quantity must be greater than zero"),
        (lambda g: g.cancel_order(""), "order_id must be 1-128 printable ASCII characters"),
        (lambda g: g.place_order({"symbol": "AAPL"}), "takes an OrderRequest"),
    ],
)
async def test_bad_input_is_refused_before_it_reaches_the_bridge(
    bridge: BridgeServer, gateways: MakeGateway, call: object, message: str
) -> None:
    async with gateways(bridge.address) as gateway:
        bridge.clear_requests()
        with pytest.raises(InvalidRequestError, match=message):
            await call(gateway)  # type: ignore[operator]
        assert bridge.requests == []


async def test_stream_quotes_needs_symbols(bridge: BridgeServer, gateways: MakeGateway) -> None:
    gateway = gateways(bridge.address)
    with pytest.raises(InvalidRequestError, match="at least one symbol"):
        gateway.stream_quotes([])
    with pytest.raises(InvalidRequestError, match="malformed"):
        gateway.stream_quotes(["AAPL", "not a symbol"])
    assert gateway.stream_quotes("AAPL") is not None  # one symbol may be given as a string


async def test_calls_before_connect_fail_clearly(bridge: BridgeServer, gateways: MakeGateway) -> None:
    gateway = gateways(bridge.address)
    with pytest.raises(Exception, match="call connect\\(\\) first"):
        await gateway.get_quote("AAPL")
    status = await gateway.health_check()
    assert (status.healthy, status.error) == (False, "not connected (disconnected)")


async def test_connect_and_disconnect_are_idempotent(bridge: BridgeServer, gateways: MakeGateway) -> None:
    gateway = gateways(bridge.address)
    await gateway.disconnect()  # never connected: nothing to do
    assert gateway.state is ConnectionState.DISCONNECTED
    await gateway.connect()
    await gateway.connect()
    assert state_of(gateway) is ConnectionState.CONNECTED
    await gateway.disconnect()
    await gateway.disconnect()
    assert state_of(gateway) is ConnectionState.CLOSED
    await gateway.connect()  # a closed gateway may be connected again
    assert (await gateway.get_quote("AAPL")).symbol == "AAPL"
    assert repr(gateway) == f"<GrpcBrokerGateway {bridge.address} connected>"


async def test_every_call_takes_a_permit_and_the_bridge_never_sees_more(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    limit = RateLimit(5, 0.3)
    async with gateways(bridge.address, rate_limits=limit) as gateway:
        bridge.clear_requests()
        await asyncio.gather(*(gateway.get_quote("AAPL") for _ in range(17)))
        times = sorted(r.arrived for r in bridge.requests)
    assert len(times) == 17
    for i in range(len(times) - limit.max_calls):
        # any six consecutive arrivals span at least one window (2 ms of loopback jitter allowed)
        assert times[i + limit.max_calls] - times[i] >= limit.period - 0.002
