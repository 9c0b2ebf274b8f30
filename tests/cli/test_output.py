"""Output formatting: exact decimals, JSON shapes, tables, and progress only on a terminal."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from broker_plugins import (
    Balance,
    BrokerUnavailableError,
    ConnectionState,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    StateChange,
    TimeInForce,
)
from broker_plugins.cli._output import (
    Column,
    Progress,
    balance_rows,
    dumps,
    instrument_rows,
    jsonable,
    key_values,
    number,
    order_rows,
    position_json,
    table,
    timestamp,
)
from broker_plugins.cli._watch import quote_event, quote_line, state_event, state_line

T0 = datetime(2026, 1, 5, 9, 30, 1, 250_000, tzinfo=timezone.utc)


def a_quote() -> Quote:
    return Quote(
        symbol="AAPL",
        bid=Decimal("190.10"),
        bid_size=Decimal(300),
        ask=Decimal("190.12"),
        ask_size=Decimal("1E+2"),
        last=None,
        time=T0,
    )


def an_order(**changes: object) -> Order:
    fields: dict[str, object] = {
        "order_id": "PO1",
        "client_order_id": "cid-1",
        "symbol": "005930",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": Decimal(10),
        "price": Decimal("72000"),
        "time_in_force": TimeInForce.DAY,
        "status": OrderStatus.REJECTED,
        "filled_quantity": Decimal(0),
        "average_fill_price": None,
        "created_at": T0,
        "updated_at": T0,
        "reject_reason": "insufficient cash",
    }
    fields.update(changes)
    return Order(**fields)  # type: ignore[arg-type]  # a record of typed fields, overridden by `changes`


def test_decimals_are_printed_exactly_in_plain_notation() -> None:
    assert number(Decimal("7.2E+4")) == "72000"
    assert number(Decimal("0.000001")) == "0.000001"
    assert number(Decimal("190.10")) == "190.10"  # trailing zeros are what the broker sent
    assert number(None) == "-"


def test_json_carries_decimals_as_strings_and_times_in_utc() -> None:
    data = json.loads(dumps(a_quote()))
    assert data == {
        "symbol": "AAPL",
        "bid": "190.10",
        "bid_size": "300",
        "ask": "190.12",
        "ask_size": "100",
        "last": None,
        "time": "2026-01-05T09:30:01.250000Z",
        "upper_limit": None,
        "lower_limit": None,
    }
    seoul = timezone(timedelta(hours=9))
    assert jsonable(T0.astimezone(seoul)) == "2026-01-05T09:30:01.250000Z"


class Thing:
    def __str__(self) -> str:
        return "a thing"


def test_jsonable_handles_containers_enums_paths_and_unknown_objects() -> None:
    assert jsonable({"a": [Side.BUY, (1, 2.5)], "b": frozenset({"y", "x"}), "p": Path("/x")}) == {
        "a": ["buy", [1, 2.5]],
        "b": ["x", "y"],
        "p": "/x",
    }
    assert jsonable(Thing()) == "a thing"
    assert dumps({"n": Decimal("1.50")}, lines=True) == '{"n":"1.50"}'


def test_a_table_aligns_numbers_right_and_text_left() -> None:
    columns = [Column("SYMBOL", lambda r: r[0]), Column("PRICE", lambda r: r[1], right=True)]
    assert table(columns, [("AAPL", "190.1"), ("005930", "72000")]).splitlines() == [
        "SYMBOL  PRICE",
        "AAPL    190.1",
        "005930  72000",
    ]
    assert table(columns, []) == "SYMBOL  PRICE"


def test_records_show_every_field_and_a_reject_reason_only_when_there_is_one() -> None:
    text = key_values(order_rows(an_order()))
    assert "reject reason       insufficient cash" in text
    assert "limit price         72000" in text
    assert "reject reason" not in key_values(order_rows(an_order(reject_reason="")))
    instrument = Instrument("AAPL", "Apple", "NASDAQ", "USD", Decimal("0.01"), Decimal(1))
    assert ("tick size", "0.01") in instrument_rows(instrument)
    balance = Balance(currency="KRW", cash=Decimal(5), buying_power=Decimal(4), equity=Decimal(6))
    assert balance_rows(balance)[1] == ("cash", "5")


def test_a_position_in_json_carries_its_unrealized_pnl() -> None:
    position = Position(
        symbol="AAPL", quantity=Decimal(3), average_price=Decimal("100.10"), market_price=Decimal("100.30")
    )
    assert position_json(position) == {
        "symbol": "AAPL",
        "quantity": "3",
        "average_price": "100.10",
        "market_price": "100.30",
        "unrealized_pnl": "0.60",
    }


def test_times_in_tables_are_utc() -> None:
    assert timestamp(T0) == "2026-01-05 09:30:01Z"
    assert timestamp(T0, precise=True) == "2026-01-05 09:30:01.250Z"
    assert timestamp(None) == "-"


def test_watch_lines_show_the_connection_state() -> None:
    quote = a_quote()
    assert quote_line(quote, "connected").endswith("last            -  [connected]")
    assert quote_event(quote, "reconnecting")["connection"] == "reconnecting"
    change = StateChange(
        previous=ConnectionState.CONNECTED,
        current=ConnectionState.RECONNECTING,
        time=T0,
        reason=BrokerUnavailableError("lost"),
    )
    assert state_line(change) == "2026-01-05 09:30:01.250Z  -- connection reconnecting (lost)"
    assert state_event(change) == {
        "type": "state",
        "time": "2026-01-05T09:30:01.250000Z",
        "previous": "connected",
        "state": "reconnecting",
        "reason": "lost",
    }


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_and_erases_itself() -> None:
    terminal = FakeTerminal()
    progress = Progress(terminal, "AAPL 1m candles", total=200)
    assert progress.enabled
    progress.update(50, force=True)
    progress.update(60)  # within a tenth of a second of the last draw: skipped
    progress.finish()
    drawn = terminal.getvalue()
    assert "AAPL 1m candles: 50 / 200 (25%" in drawn
    assert ": 60 /" not in drawn
    assert drawn.endswith("\r")
    unknown = FakeTerminal()
    Progress(unknown, "download").update(7, force=True)
    assert "download: 7 (" in unknown.getvalue()


def test_progress_stays_silent_when_output_is_not_a_terminal() -> None:
    piped = io.StringIO()
    progress = Progress(piped, "candles", total=10)
    progress.update(5, force=True)
    progress.finish()
    assert not progress.enabled
    assert piped.getvalue() == ""
    closed = io.StringIO()
    closed.close()
    assert not Progress(closed, "x").enabled
