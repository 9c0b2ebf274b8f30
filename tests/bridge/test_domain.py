"""The bridge's plain objects without gRPC: market, candles, budgets, broker, journal, update log."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpc_plugin.bridge._broker import PaperBroker
from grpc_plugin.bridge._budget import CallBudget, Window
from grpc_plugin.bridge._candles import BLOCK_BARS, CandleSource, Interval
from grpc_plugin.bridge._convert import decimal_message
from grpc_plugin.bridge._errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    NotFoundError,
    ShuttingDownError,
    SubscriberOverflowError,
)
from grpc_plugin.bridge._instruments import INSTRUMENTS
from grpc_plugin.bridge._journal import Journal, MemoryJournal, SqliteJournal
from grpc_plugin.bridge._market import Market
from grpc_plugin.bridge._orders import NewOrder, OrderStatus, OrderType, Side, TimeInForce
from grpc_plugin.bridge._updates import UpdateLog

DAY = 86_400.0
CASH = {"KRW": Decimal(10**10), "USD": Decimal(10**7)}


class Clock:
    """A settable wall clock (seconds), for the market and the broker alike."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def ns(self) -> int:
        return int(self.now * 1e9)


def _broker(clock: Clock, journal: Journal | None = None) -> tuple[Market, PaperBroker]:
    market = Market(seed=1, tick_rate=10.0, clock=clock)
    broker = PaperBroker(market, journal or MemoryJournal(), initial_cash=CASH, clock_ns=clock.ns)
    return market, broker


def _order(
    coid: str,
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    quantity: int = 1,
    limit: str | None = None,
    tif: TimeInForce = TimeInForce.DAY,
) -> NewOrder:
    return NewOrder(
        client_order_id=coid,
        symbol=symbol,
        side=side,
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        quantity=Decimal(quantity),
        limit_price=Decimal(limit) if limit else None,
        time_in_force=tif,
    )


# -- market and candles ----------------------------------------------------------------------------


@settings(max_examples=8, deadline=None)  # each example computes ~6 blocks of 4,096 bars
@given(
    seed=st.integers(0, 2**32),
    symbol=st.sampled_from([spec.symbol for spec in INSTRUMENTS]),
    interval=st.sampled_from(list(Interval)),
    first=st.integers(20_000, 25_000_000),
    cut=st.integers(1, BLOCK_BARS + 6),
)
def test_candles_do_not_depend_on_how_a_range_is_split(
    seed: int, symbol: str, interval: Interval, first: int, cut: int
) -> None:
    spec = next(s for s in INSTRUMENTS if s.symbol == symbol)
    stop = first + BLOCK_BARS + 7  # always crosses a block boundary
    whole = CandleSource(seed).candles(spec, interval, first, stop)
    split = CandleSource(seed, cached_blocks=1)  # evicts and recomputes: the result must not change
    left = split.candles(spec, interval, first, first + cut)
    right = split.candles(spec, interval, first + cut, stop)
    for column in ("open", "high", "low", "close", "volume"):
        assert list(getattr(whole, column)) == list(getattr(left, column)) + list(getattr(right, column))
    for open_, high, low, close in zip(whole.open, whole.high, whole.low, whole.close, strict=True):
        assert 0 < low <= min(open_, close) <= max(open_, close) <= high
        # On the tick of each price's band (KRX stocks cross band edges).
        assert all(spec.floor_units(price) == price for price in (open_, high, low, close))


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    symbol=st.sampled_from([spec.symbol for spec in INSTRUMENTS]),
    interval=st.sampled_from(list(Interval)),
    first=st.integers(0, 25_000_000),
)
def test_one_bars_close_is_the_close_its_block_holds(
    seed: int, symbol: str, interval: Interval, first: int
) -> None:
    spec = next(s for s in INSTRUMENTS if s.symbol == symbol)
    source = CandleSource(seed)
    closes = source.candles(spec, interval, first, first + 5).close
    assert [source.close(spec, interval, index) for index in range(first, first + 5)] == list(closes)


def test_quotes_are_a_function_of_seed_symbol_and_tick() -> None:
    clock = Clock(1_700_000_000.0)
    one, other = Market(seed=5, clock=clock), Market(seed=5, clock=clock)
    assert one.quote("AAPL") == other.quote_at("AAPL", other.current_tick())
    assert one.quote_at("AAPL", 1) != Market(seed=6).quote_at("AAPL", 1)
    with pytest.raises(NotFoundError):
        one.quote("NOPE")
    with pytest.raises(ValueError, match="tick_rate"):
        Market(tick_rate=0)


# -- budgets ---------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(0.0, 0.4), min_size=1, max_size=80))
def test_no_window_ever_holds_more_than_its_budget(gaps: list[float]) -> None:
    windows = (Window(3, 0.5), Window(7, 2.0))
    now = [0.0]
    budget = CallBudget(windows, clock=lambda: now[0])
    admitted: list[float] = []
    for gap in gaps:
        now[0] += gap
        wait = budget.admit("acct")
        if wait is None:
            admitted.append(now[0])
        else:
            assert wait > 0
            # A refusal is only ever due to a full window, and says when that window frees a slot.
            assert any(sum(1 for t in admitted if now[0] - w.period < t) >= w.max_calls for w in windows)
    for window in windows:
        for start in admitted:
            inside = [t for t in admitted if start <= t < start + window.period]
            assert len(inside) <= window.max_calls


def test_budget_windows_validate_and_an_empty_budget_admits_everything() -> None:
    with pytest.raises(ValueError, match="max_calls"):
        Window(0, 1.0)
    with pytest.raises(ValueError, match="period"):
        Window(1, 0.0)
    budget = CallBudget(())
    assert all(budget.admit("a") is None for _ in range(1000))
    assert str(Window(20, 1.0)) == "20/1s"


# -- paper broker ----------------------------------------------------------------------------------


def test_day_orders_expire_at_midnight_and_gtc_orders_do_not() -> None:
    clock = Clock(1_700_000_000.0 // DAY * DAY + 3600)  # 01:00 UTC
    market, broker = _broker(clock)
    far = str(market.instrument("AAPL").price(market.quote("AAPL").bid // 2))
    day, _ = broker.place("paper", _order("d-1", limit=far))
    gtc, _ = broker.place("paper", _order("g-1", limit=far, tif=TimeInForce.GTC))
    broker.on_quotes([market.quote("AAPL")])
    assert broker.get_order("paper", order_id=day.order_id).status is OrderStatus.NEW
    clock.now += DAY
    broker.on_quotes([market.quote("AAPL")])
    assert broker.get_order("paper", order_id=day.order_id).status is OrderStatus.EXPIRED
    assert broker.get_order("paper", order_id=gtc.order_id).status is OrderStatus.NEW
    assert broker.working_symbols() == {"AAPL"}


def test_working_orders_fill_on_later_ticks_and_share_the_displayed_size() -> None:
    clock = Clock(1_700_000_000.0)
    market, broker = _broker(clock)
    first, _ = broker.place("paper", _order("w-1", quantity=3_000))
    assert first.status is OrderStatus.PARTIALLY_FILLED
    assert first.filled_quantity == market.quote("AAPL").ask_size  # it took the whole display
    second, _ = broker.place("paper", _order("w-2", quantity=10))
    assert second.status is OrderStatus.NEW  # nothing left to take at this tick
    for _ in range(50):
        clock.now += 0.1
        broker.on_quotes([market.quote("AAPL"), market.quote("MSFT")])
    assert broker.get_order("paper", order_id=first.order_id).status is OrderStatus.FILLED
    assert broker.get_order("paper", order_id=second.order_id).status is OrderStatus.FILLED
    assert broker.working_symbols() == set()
    broker.on_quotes([market.quote("AAPL")])  # nothing works: a no-op
    ((symbol, holding),) = broker.positions("paper")
    assert (symbol, holding.quantity) == ("AAPL", Decimal(3_010))


def test_position_rules_on_sells_and_their_modification() -> None:
    clock = Clock(1_700_000_000.0)
    market, broker = _broker(clock)
    broker.place("paper", _order("b-1", symbol="NVDA", quantity=10))
    high = str(market.instrument("NVDA").price(market.quote("NVDA").ask * 2))
    sell, _ = broker.place("paper", _order("s-1", symbol="NVDA", side=Side.SELL, quantity=6, limit=high))
    assert sell.status is OrderStatus.NEW
    too_many, _ = broker.place("paper", _order("s-2", symbol="NVDA", side=Side.SELL, quantity=5))
    assert too_many.status is OrderStatus.REJECTED
    assert "4 available" in too_many.reject_reason
    with pytest.raises(FailedPreconditionError, match="insufficient position"):
        broker.modify("paper", sell.order_id, quantity=Decimal(11), limit_price=None)
    smaller = broker.modify("paper", sell.order_id, quantity=Decimal(8), limit_price=None)
    assert smaller.quantity == 8
    with pytest.raises(NotFoundError):
        broker.get_order("someone-else", order_id=sell.order_id)
    with pytest.raises(NotFoundError):
        broker.order_by_id("PO0")
    (balance,) = broker.balances("paper", "USD")
    holding = dict(broker.positions("paper"))["NVDA"]
    last = market.instrument("NVDA").price(market.quote("NVDA").last)
    assert balance.equity == balance.cash + holding.quantity * last


def test_the_sqlite_journal_brings_everything_back(tmp_path: Path) -> None:
    clock = Clock(1_700_000_000.0)
    path = tmp_path / "state.db"
    market, broker = _broker(clock, SqliteJournal(path))
    broker.place("paper", _order("p-1", symbol="005930", quantity=5))
    far = str(market.instrument("005930").price(market.quote("005930").bid * 8 // 10 // 1000 * 1000))
    resting, _ = broker.place("paper", _order("p-2", symbol="005930", quantity=2, limit=far))
    broker.modify("paper", resting.order_id, quantity=Decimal(3), limit_price=None)
    broker.place("other", _order("p-1", symbol="NOPE"))
    before = (broker.positions("paper"), broker.balances("paper"), broker.list_orders("paper"))
    broker._journal.close()

    _, again = _broker(clock, SqliteJournal(path))
    assert (again.positions("paper"), again.balances("paper"), again.list_orders("paper")) == before
    assert again.place("paper", _order("p-1", symbol="005930", quantity=5))[1] is True
    # A retry of the modified order is still recognised: its contents as placed were kept.
    assert again.place("paper", _order("p-2", symbol="005930", quantity=2, limit=far))[1] is True
    with pytest.raises(AlreadyExistsError, match="quantity 3, not 2"):
        again.place("paper", _order("p-2", symbol="005930", quantity=3, limit=far))
    assert again.last_sequence("paper") == broker.last_sequence("paper")
    assert again.last_sequence("other") == 1
    assert again.working_symbols() == {"005930"}
    new, _ = again.place("paper", _order("p-3", symbol="NOPE"))
    assert new.order_id > resting.order_id
    replay, subscription = again.updates.subscribe("paper", 0)
    assert [u.sequence for u in replay] == list(range(1, again.last_sequence("paper") + 1))
    again.updates.unsubscribe(subscription)
    again._journal.close()


# -- update log, conversions -----------------------------------------------------------------------


async def test_a_subscriber_that_falls_behind_is_told_to_resume() -> None:
    clock = Clock(1_700_000_000.0)
    _, broker = _broker(clock)
    log = UpdateLog(retain=10, max_pending=2)
    _, subscription = log.subscribe("paper", 0)
    for i in range(3):
        broker.place("paper", _order(f"o-{i}", symbol="NOPE"))
    # Re-publish the broker's own records into a log with a tiny queue.
    replay, _ = broker.updates.subscribe("paper", 0)
    log.publish(replay)
    with pytest.raises(SubscriberOverflowError, match="2 order updates behind"):
        await subscription.next_batch()
    _, closing = log.subscribe("paper", 3)
    log.close_all()
    with pytest.raises(ShuttingDownError):
        await closing.next_batch()
    with pytest.raises(AssertionError, match="sequence"):
        log.publish(replay)


def test_decimal_messages_are_exact_and_bounded() -> None:
    assert decimal_message(Decimal("-12.340")) == decimal_message(Decimal("-12.340"))
    message = decimal_message(Decimal("-12.340"))
    assert (message.mantissa, message.exponent) == (-12340, -3)
    big = decimal_message(Decimal("1.000000000000000000000E+5"))  # 22 digits, normalizes to 1E+5
    assert (big.mantissa, big.exponent) == (1, 5)
    with pytest.raises(ValueError, match="significant digits"):
        decimal_message(Decimal("1.23456789012345678901234"))
    with pytest.raises(ValueError, match="non-finite"):
        decimal_message(Decimal("NaN"))
