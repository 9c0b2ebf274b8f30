"""Stop and stop-limit orders on the reference bridge: triggered deterministically by the last trade."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from grpc_plugin.bridge import _orders as paper
from grpc_plugin.bridge._broker import PaperBroker
from grpc_plugin.bridge._errors import InvalidArgumentError
from grpc_plugin.bridge._journal import MemoryJournal, SqliteJournal
from grpc_plugin.bridge._market import Market
from grpc_plugin.bridge._orders import NewOrder, OrderEvent, OrderUpdateRecord, Side, TimeInForce
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import CALL_TIMEOUT, RICH, Client, dec, rpc_error
from tests.bridge.test_domain import Clock

SYMBOL = "AAPL"
START = 1_750_000_000.0
TICKS = range(int(START * 10) + 1, int(START * 10) + 3_000)  # the next five minutes at 10 ticks/s


class _Recording(MemoryJournal):
    """Keeps nothing, but remembers the events of every update it is handed."""

    def __init__(self) -> None:
        self.events: list[OrderEvent] = []

    def record(self, orders: object, updates: Sequence[OrderUpdateRecord], accounts: object) -> None:
        self.events.extend(update.event for update in updates)


def _setup(journal: object = None) -> tuple[Clock, Market, PaperBroker]:
    clock = Clock(START)
    market = Market(seed=1, tick_rate=10.0, clock=clock)
    broker = PaperBroker(market, journal or MemoryJournal(), initial_cash=RICH, clock_ns=clock.ns)  # type: ignore[arg-type]
    return clock, market, broker


def _stop(coid: str, side: Side, stop: Decimal, limit: Decimal | None = None) -> NewOrder:
    return NewOrder(
        client_order_id=coid,
        symbol=SYMBOL,
        side=side,
        order_type=paper.OrderType.STOP if limit is None else paper.OrderType.STOP_LIMIT,
        quantity=Decimal(1),
        limit_price=limit,
        time_in_force=TimeInForce.GTC,
        stop_price=stop,
    )


def _run(clock: Clock, market: Market, broker: PaperBroker, ticks: range) -> None:
    for tick in ticks:
        clock.now = tick / 10
        broker.on_quotes([market.quote_at(SYMBOL, tick)])


def _first_reaching(market: Market, buy: bool) -> tuple[tuple[int, int], int]:
    """(tick, last) of the first tick whose last trade is the extreme of the coming five minutes."""
    lasts = [(tick, market.quote_at(SYMBOL, tick).last) for tick in TICKS]
    extreme = max(last for _, last in lasts) if buy else min(last for _, last in lasts)
    return next((tick, last) for tick, last in lasts if last == extreme), extreme


@pytest.mark.parametrize("buy", [True, False])
def test_a_stop_triggers_on_the_first_tick_whose_last_trade_reaches_it(buy: bool) -> None:
    journal = _Recording()
    clock, market, broker = _setup(journal)
    spec = market.instrument(SYMBOL)
    if not buy:
        broker.place(
            "paper",
            NewOrder("own", SYMBOL, Side.BUY, paper.OrderType.MARKET, Decimal(1), None, TimeInForce.DAY),
        )
    (hit, last), _ = _first_reaching(market, buy)
    now = market.quote(SYMBOL).last
    assert (last > now) if buy else (last < now)  # the stop is not reached when placed
    order, _ = broker.place("paper", _stop("stop-1", Side.BUY if buy else Side.SELL, spec.price(last)))
    assert (order.status, order.stop_triggered) == (paper.OrderStatus.NEW, False)
    _run(clock, market, broker, range(TICKS.start, hit))
    assert not broker.get_order("paper", order_id=order.order_id).stop_triggered  # one tick short
    _run(clock, market, broker, range(hit, hit + 1))
    done = broker.get_order("paper", order_id=order.order_id)
    assert done.stop_triggered
    assert done.status is paper.OrderStatus.FILLED  # a market order once triggered
    assert journal.events[-3:] == [OrderEvent.ACCEPTED, OrderEvent.TRIGGERED, OrderEvent.FILL]


def test_a_stop_already_reached_triggers_when_placed() -> None:
    _, market, broker = _setup()
    spec = market.instrument(SYMBOL)
    last = spec.price(market.quote(SYMBOL).last)
    order, _ = broker.place("paper", _stop("stop-now", Side.BUY, last))  # at the stop: reached
    assert order.stop_triggered
    assert order.status is paper.OrderStatus.FILLED


def test_a_triggered_stop_limit_works_as_a_limit_order() -> None:
    clock, market, broker = _setup()
    spec = market.instrument(SYMBOL)
    (hit, last), _ = _first_reaching(market, True)
    far = spec.price(last // 2)
    order, _ = broker.place("paper", _stop("stop-limit", Side.BUY, spec.price(last), far))
    _run(clock, market, broker, range(TICKS.start, hit + 1))
    working = broker.get_order("paper", order_id=order.order_id)
    assert working.stop_triggered
    assert (working.status, working.limit_price) == (paper.OrderStatus.NEW, far)  # rests at its limit


def test_an_off_tick_stop_price_is_rejected_with_the_tick() -> None:
    _, _, broker = _setup()
    order, _ = broker.place("paper", _stop("stop-off", Side.BUY, Decimal("500.005")))
    assert order.status is paper.OrderStatus.REJECTED
    assert order.reject_reason.startswith("stop price 500.005 is not a multiple of the tick size 0.01 USD")


def test_the_journal_keeps_the_stop(tmp_path: Path) -> None:
    with contextlib.closing(SqliteJournal(tmp_path / "state.db")) as journal:
        _, market, broker = _setup(journal)
        spec = market.instrument(SYMBOL)
        stop = spec.price(market.quote(SYMBOL).last * 2)
        placed, _ = broker.place("paper", _stop("stop-kept", Side.BUY, stop))
    with contextlib.closing(SqliteJournal(tmp_path / "state.db")) as journal:
        _, _, again = _setup(journal)
        kept = again.get_order("paper", order_id=placed.order_id)
        assert (kept.stop_price, kept.stop_triggered, kept.order_type) == (stop, False, paper.OrderType.STOP)
        assert again.place("paper", _stop("stop-kept", Side.BUY, stop))[1] is True  # the same order
        assert "stop_price" in str(_other_stop(again, stop))


def _other_stop(broker: PaperBroker, stop: Decimal) -> Exception:
    try:
        broker.place("paper", _stop("stop-kept", Side.BUY, stop + 1))
    except Exception as error:  # AlreadyExistsError, naming what differs
        return error
    raise AssertionError("a retry with another stop price was taken for the same order")


# -- on the wire ----------------------------------------------------------------------------------


def _wire_stop(coid: str, **fields: object) -> tr.PlaceOrderRequest:
    values: dict[str, object] = {
        "client_order_id": coid,
        "symbol": SYMBOL,
        "side": tr.SIDE_BUY,
        "order_type": tr.ORDER_TYPE_STOP,
        "quantity": dec(1),
        "stop_price": dec("1000"),
        **fields,
    }
    request = tr.PlaceOrderRequest()
    for name, value in values.items():
        if value is None:
            continue
        if name in ("quantity", "stop_price", "limit_price"):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stop_price": None}, "stop_price is required for a stop order"),
        ({"order_type": tr.ORDER_TYPE_STOP_LIMIT}, "limit_price is required for a stop-limit order"),
        ({"limit_price": dec("999")}, "limit_price must be absent for a stop order"),
        ({"order_type": tr.ORDER_TYPE_LIMIT, "limit_price": dec("999")}, "stop_price must be absent"),
        ({"time_in_force": tr.TIME_IN_FORCE_IOC}, "time_in_force must be DAY or GTC"),
    ],
)
async def test_malformed_stop_orders_are_invalid_arguments(
    client: Client, fields: dict[str, object], message: str
) -> None:
    error = await rpc_error(client.trading.PlaceOrder(_wire_stop("bad-stop", **fields), timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (error.details() or "")


def test_only_a_stop_limit_of_the_stop_orders_takes_a_new_limit_price() -> None:
    _, market, broker = _setup()
    spec = market.instrument(SYMBOL)
    high = spec.price(market.quote(SYMBOL).last * 2)
    stop, _ = broker.place("paper", _stop("stop-mod", Side.BUY, high))
    with pytest.raises(InvalidArgumentError, match="limit or stop-limit order"):
        broker.modify("paper", stop.order_id, quantity=None, limit_price=Decimal(1))
    stop_limit, _ = broker.place("paper", _stop("stop-limit-mod", Side.BUY, high, high))
    changed = broker.modify("paper", stop_limit.order_id, quantity=None, limit_price=high + spec.tick_size)
    assert (changed.limit_price, changed.stop_price) == (high + spec.tick_size, high)
