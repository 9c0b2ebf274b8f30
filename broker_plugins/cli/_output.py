"""How `brokerctl` prints: aligned tables for people, JSON for machines, progress on a terminal.

Numbers are printed exactly as the broker sent them: a `Decimal` is written in plain notation
(`72000`, never `7.2E+4`), and JSON carries it as a string so that no reader turns it into a float.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO, TypeVar, cast

import attrs

from broker_plugins._entities import Balance, Instrument, Order, Position

__all__ = [
    "Column",
    "Progress",
    "Ticks",
    "balance_rows",
    "candle_columns",
    "dumps",
    "instrument_rows",
    "is_terminal",
    "jsonable",
    "key_values",
    "number",
    "order_columns",
    "order_rows",
    "position_columns",
    "position_json",
    "quote_columns",
    "table",
    "timestamp",
]

_T = TypeVar("_T")


def number(value: Decimal | None, tick: Decimal | None = None) -> str:
    """A decimal in plain notation, exactly; `-` for none.

    With the instrument's `tick`, a price shows as many decimals as the tick has (`77700` and
    `190.50` beside `190.25`), whatever exponent the broker sent it with; a value off the tick
    grid keeps its own digits rather than being rounded.
    """
    if value is None:
        return "-"
    if tick is not None and value.is_finite() and tick.is_finite() and tick > 0:
        exponent = tick.normalize().as_tuple().exponent
        if isinstance(exponent, int):
            step = Decimal(1).scaleb(min(exponent, 0))
            shown = value.quantize(step)
            if shown == value:
                return format(shown, "f")
    return format(value.normalize() if value.is_finite() and value == value.to_integral() else value, "f")


Ticks = Mapping[str, Decimal]
"""Tick size by symbol: how many decimals each instrument's prices show."""


def timestamp(value: datetime | None, *, precise: bool = False) -> str:
    """A UTC time for a table: seconds, or milliseconds when `precise`."""
    if value is None:
        return "-"
    utc = value.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{utc.microsecond // 1000:03d}Z" if precise else f"{text}Z"


def _utc_text(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


_SCALARS: tuple[tuple[type[Any], Callable[[Any], object]], ...] = (
    (Decimal, lambda value: format(value, "f")),
    (enum.Enum, lambda value: value.value),
    (datetime, _utc_text),
    (Path, str),
)


def jsonable(value: object) -> object:
    """`value` as plain JSON data: attrs classes become objects, decimals strings, times ISO 8601."""
    for kind, convert in _SCALARS:
        if isinstance(value, kind):
            return convert(value)
    if attrs.has(type(value)):
        fields = attrs.fields(cast("type[attrs.AttrsInstance]", type(value)))
        return {field.name: jsonable(getattr(value, field.name)) for field in fields}
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(item) for item in items]
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def dumps(value: object, *, lines: bool = False) -> str:
    """One JSON document (indented), or one compact line when `lines` (JSON lines)."""
    if lines:
        return json.dumps(jsonable(value), separators=(",", ":"), ensure_ascii=False)
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False)


@attrs.frozen
class Column:
    """One column of a table: its header, how a row shows in it, and whether it is numeric."""

    header: str
    cell: Callable[[Any], str]
    right: bool = False


def table(columns: Sequence[Column], rows: Iterable[_T]) -> str:
    """Rows under headers, each column as wide as its widest cell; numbers aligned right."""
    cells = [[column.cell(row) for column in columns] for row in rows]
    widths = [
        max([len(column.header), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if column.right else value.ljust(width)
            for value, width, column in zip(values, widths, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line([c.header for c in columns]), *(line(values) for values in cells)])


def key_values(pairs: Sequence[tuple[str, str]]) -> str:
    """A record shown vertically, one `key  value` per line."""
    width = max((len(key) for key, _ in pairs), default=0)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in pairs)


def instrument_rows(instrument: Instrument) -> list[tuple[str, str]]:
    """An instrument, field by field."""
    return [
        ("symbol", instrument.symbol),
        ("name", instrument.name),
        ("exchange", instrument.exchange),
        ("currency", instrument.currency),
        ("tick size", number(instrument.tick_size)),
        ("lot size", number(instrument.lot_size)),
    ]


def instrument_columns() -> list[Column]:
    """Columns of an instrument table."""
    return [
        Column("SYMBOL", lambda i: i.symbol),
        Column("NAME", lambda i: i.name),
        Column("EXCHANGE", lambda i: i.exchange),
        Column("CURRENCY", lambda i: i.currency),
        Column("TICK", lambda i: number(i.tick_size), right=True),
        Column("LOT", lambda i: number(i.lot_size), right=True),
    ]


def balance_rows(balance: Balance) -> list[tuple[str, str]]:
    """A balance, field by field."""
    return [
        ("currency", balance.currency),
        ("cash", number(balance.cash)),
        ("buying power", number(balance.buying_power)),
        ("equity", number(balance.equity)),
    ]


def order_rows(order: Order, ticks: Ticks | None = None) -> list[tuple[str, str]]:
    """One order, field by field."""
    tick = (ticks or {}).get(order.symbol)
    rows = [
        ("order id", order.order_id),
        ("client order id", order.client_order_id),
        ("symbol", order.symbol),
        ("side", str(order.side)),
        ("type", str(order.order_type)),
        ("quantity", number(order.quantity)),
        ("limit price", number(order.price, tick)),
        ("time in force", str(order.time_in_force)),
        ("status", str(order.status)),
        ("filled", number(order.filled_quantity)),
        ("average fill price", number(order.average_fill_price, tick)),
        ("created", timestamp(order.created_at, precise=True)),
        ("updated", timestamp(order.updated_at, precise=True)),
    ]
    if order.reject_reason:
        rows.append(("reject reason", order.reject_reason))
    return rows


def quote_columns(ticks: Ticks | None = None) -> list[Column]:
    """Columns of a quote table; prices in each instrument's tick."""
    tick = (ticks or {}).get
    return [
        Column("SYMBOL", lambda q: q.symbol),
        Column("BID", lambda q: number(q.bid, tick(q.symbol)), right=True),
        Column("BID SIZE", lambda q: number(q.bid_size), right=True),
        Column("ASK", lambda q: number(q.ask, tick(q.symbol)), right=True),
        Column("ASK SIZE", lambda q: number(q.ask_size), right=True),
        Column("LAST", lambda q: number(q.last, tick(q.symbol)), right=True),
        Column("TIME", lambda q: timestamp(q.time, precise=True)),
    ]


def candle_columns(ticks: Ticks | None = None) -> list[Column]:
    """Columns of a candle table; prices in the instrument's tick."""
    tick = (ticks or {}).get
    return [
        Column("START", lambda c: timestamp(c.start)),
        Column("OPEN", lambda c: number(c.open, tick(c.symbol)), right=True),
        Column("HIGH", lambda c: number(c.high, tick(c.symbol)), right=True),
        Column("LOW", lambda c: number(c.low, tick(c.symbol)), right=True),
        Column("CLOSE", lambda c: number(c.close, tick(c.symbol)), right=True),
        Column("VOLUME", lambda c: number(c.volume), right=True),
    ]


def order_columns(ticks: Ticks | None = None) -> list[Column]:
    """Columns of an order list; prices in each instrument's tick."""
    tick = (ticks or {}).get
    return [
        Column("ORDER ID", lambda o: o.order_id),
        Column("SYMBOL", lambda o: o.symbol),
        Column("SIDE", lambda o: str(o.side)),
        Column("TYPE", lambda o: str(o.order_type)),
        Column("QTY", lambda o: number(o.quantity), right=True),
        Column("PRICE", lambda o: number(o.price, tick(o.symbol)), right=True),
        Column("STATUS", lambda o: str(o.status)),
        Column("FILLED", lambda o: number(o.filled_quantity), right=True),
        Column("AVG PRICE", lambda o: number(o.average_fill_price, tick(o.symbol)), right=True),
        Column("CLIENT ORDER ID", lambda o: o.client_order_id),
        Column("UPDATED", lambda o: timestamp(o.updated_at)),
    ]


def position_columns(ticks: Ticks | None = None) -> list[Column]:
    """Columns of a position table; prices in each instrument's tick."""
    tick = (ticks or {}).get
    return [
        Column("SYMBOL", lambda p: p.symbol),
        Column("QTY", lambda p: number(p.quantity), right=True),
        Column("AVG PRICE", lambda p: number(p.average_price, tick(p.symbol)), right=True),
        Column("MARKET PRICE", lambda p: number(p.market_price, tick(p.symbol)), right=True),
        Column("UNREALIZED P&L", lambda p: number(p.unrealized_pnl), right=True),
    ]


def position_json(position: Position) -> object:
    """A position as JSON, with its unrealized P&L (a property, not a field)."""
    data = jsonable(position)
    assert isinstance(data, dict)
    data["unrealized_pnl"] = jsonable(position.unrealized_pnl)
    return data


class Progress:
    """A one-line progress display on `stream`, drawn only when it is a terminal.

    Output that is piped or captured stays clean: then every method does nothing.
    """

    _REDRAW_EVERY = 0.1

    def __init__(self, stream: TextIO, label: str, total: int | None = None) -> None:
        self._stream = stream
        self._label = label
        self.total = total
        """How many items there will be, when known (a download may learn it late)."""
        self._enabled = is_terminal(stream)
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0

    @property
    def enabled(self) -> bool:
        """Whether anything is drawn."""
        return self._enabled

    def update(self, done: int, *, force: bool = False) -> None:
        """Show `done` of `total` items; redraws at most ten times a second unless `force`."""
        if not self._enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < self._REDRAW_EVERY:
            return
        self._drawn_at = now
        elapsed = now - self._started
        if self.total:
            share = min(done / self.total, 1.0)
            text = f"{self._label}: {done:,} / {self.total:,} ({share:.0%}, {elapsed:.1f} s)"
        else:
            text = f"{self._label}: {done:,} ({elapsed:.1f} s)"
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)

    def finish(self) -> None:
        """Erase the line, so the next output starts clean."""
        if self._enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal a person watches (not a pipe or a file)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream is not a terminal
        return False
