"""The window's three tables: connection states, the watchlist, and the orders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from broker_plugins import ConnectionState, ConnectionStatus, Order, Quote

__all__ = ["ConnectionsTable", "OrdersTable", "WatchlistTable", "format_price", "places_of"]

_STATE_COLOURS = {
    ConnectionState.CONNECTED: "#c8efc8",
    ConnectionState.CONNECTING: "#fbe7a9",
    ConnectionState.RECONNECTING: "#fbe7a9",
    ConnectionState.DISCONNECTED: "#e4e4e4",
    ConnectionState.CLOSED: "#e4e4e4",
}


def format_price(value: Decimal | None, places: int | None = None) -> str:
    """`value` with thousands grouped, or empty for none.

    With `places`, trailing zeros go but at least `places` decimals stay (an average fill price
    computed to four decimals reads like the quotes of its symbol); without, it is shown as given
    (quotes come at the instrument's own precision).
    """
    if value is None:
        return ""
    if places is None:
        return f"{value:,f}"
    exponent = value.normalize().as_tuple().exponent
    decimals = max(places, -exponent if isinstance(exponent, int) else 0)
    return f"{value:,.{decimals}f}"


def places_of(value: Decimal) -> int:
    """How many decimals `value` is given with (0 for a whole number)."""
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]


class _Table(QTableWidget):
    """A read-only table of text cells, one row per key, updated in place."""

    def __init__(self, name: str, headers: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(0, len(headers), parent)
        self.setObjectName(name)
        self.setHorizontalHeaderLabels(list(headers))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self._headers = tuple(headers)

    def _add_row(self, cells: Sequence[str]) -> int:
        row = self.rowCount()
        self.insertRow(row)
        for column, text in enumerate(cells):
            self.setItem(row, column, QTableWidgetItem(text))
        return row

    def _cell(self, row: int, column: int) -> QTableWidgetItem:
        item = self.item(row, column)
        assert item is not None, f"{self.objectName()} has no cell at {row}, {column}"  # _add_row fills all
        return item

    def _set(self, row: int, cells: Sequence[str]) -> None:
        for column, text in enumerate(cells):
            item = self._cell(row, column)
            if item.text() != text:
                item.setText(text)

    def cell_text(self, row: int, header: str) -> str:
        """The text shown in `row` under `header`."""
        return self._cell(row, self._headers.index(header)).text()


class ConnectionsTable(_Table):
    """One row per named connection: its state and what the manager knows of its health."""

    HEADERS = ("Connection", "State", "Round trip", "Since", "Last error")

    def __init__(self, names: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__("connections", self.HEADERS, parent)
        self._rows = {name: self._add_row((name, "starting", "", "", "")) for name in names}

    def row_of(self, name: str) -> int:
        """The row that shows connection `name`."""
        return self._rows[name]

    def show_status(self, status: ConnectionStatus) -> None:
        """Show `status` in its connection's row."""
        row = self._rows[status.name]
        latency = "" if status.latency is None else f"{status.latency * 1000:.1f} ms"
        healthy = status.state is ConnectionState.CONNECTED and status.attempts == 0
        self._set(
            row,
            (
                status.name,
                str(status.state),
                latency,
                _clock(status.since),
                "" if healthy or status.last_error is None else status.last_error,
            ),
        )
        self._cell(row, 1).setBackground(QColor(_STATE_COLOURS[status.state]))


class WatchlistTable(_Table):
    """One row per watched symbol of each connection, with its latest quote."""

    HEADERS = ("Connection", "Symbol", "Bid", "Ask", "Last", "Time")

    def __init__(self, watched: Sequence[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__("watchlist", self.HEADERS, parent)
        self._rows = {key: self._add_row((*key, "", "", "", "")) for key in watched}

    def row_of(self, connection: str, symbol: str) -> int:
        """The row that shows `symbol` of `connection`."""
        return self._rows[connection, symbol]

    def key_of(self, row: int) -> tuple[str, str]:
        """The (connection, symbol) that `row` shows."""
        return self._cell(row, 0).text(), self._cell(row, 1).text()

    def show_quote(self, connection: str, quote: Quote) -> None:
        """Show `quote` in its row (quotes for symbols not on the list are ignored)."""
        row = self._rows.get((connection, quote.symbol))
        if row is not None:
            self._set(
                row,
                (
                    connection,
                    quote.symbol,
                    format_price(quote.bid),
                    format_price(quote.ask),
                    format_price(quote.last),
                    _clock(quote.time),
                ),
            )


class OrdersTable(_Table):
    """Every order placed or reported in this session, newest state first come, by connection and id."""

    HEADERS = ("Connection", "Order id", "Symbol", "Side", "Quantity", "Filled", "Avg price", "Status")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("orders", self.HEADERS, parent)
        self._rows: dict[tuple[str, str], tuple[int, Order]] = {}

    def row_of(self, connection: str, order_id: str) -> int | None:
        """The row of order `order_id` on `connection`, or None if it has not been shown."""
        known = self._rows.get((connection, order_id))
        return None if known is None else known[0]

    def show_order(self, connection: str, order: Order, places: int = 0) -> None:
        """Show `order`, unless its row already shows a later state of it (replies and updates race).

        `places`: the decimals its symbol is quoted with, for the average fill price.
        """
        key = (connection, order.order_id)
        cells = (
            connection,
            order.order_id,
            order.symbol,
            str(order.side),
            format_price(order.quantity, 0),
            format_price(order.filled_quantity, 0),
            format_price(order.average_fill_price, places),
            str(order.status),
        )
        known = self._rows.get(key)
        if known is None:
            self._rows[key] = (self._add_row(cells), order)
            self.scrollToBottom()
        elif order.updated_at >= known[1].updated_at:
            self._rows[key] = (known[0], order)
            self._set(known[0], cells)
