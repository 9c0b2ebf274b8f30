"""`MainWindow`: connection states on top, the watchlist and the order ticket, the orders below.

The window is a `SessionListener`: the session calls it on the event loop's thread, which with
qasync is Qt's GUI thread, so it updates its widgets directly. It never awaits anything itself: a
click that needs the broker hands the work to the session (a task the session owns) and shows the
outcome when the task is done, so the window never waits on the network.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QSplitter, QVBoxLayout, QWidget

from broker_plugins import BrokerError, Order, OrderRequest, Quote, StateChange
from qt_desktop._session import TradingSession
from qt_desktop._tables import ConnectionsTable, OrdersTable, WatchlistTable, places_of
from qt_desktop._ticket import OrderTicket

__all__ = ["MainWindow"]

STATUS_REFRESH_MS = 1000
"""How often round trips and ages are re-read from the connection manager."""


class MainWindow(QMainWindow):
    """The trading window of one `TradingSession`; `wait_closed()` returns once a person closed it."""

    def __init__(self, session: TradingSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("broker-plugins desktop")
        self.resize(1000, 640)
        self._session = session
        self._closed = asyncio.Event()
        self._places: dict[str, int] = {}  # decimals each symbol is quoted with, from its quotes
        names = list(session.connections)

        self.connections = ConnectionsTable(names)
        self.watchlist = WatchlistTable(
            [(name, symbol) for name, spec in session.connections.items() for symbol in spec.symbols]
        )
        self.ticket = OrderTicket(names)
        self.orders = OrdersTable()
        self.connections.setMaximumHeight(40 + 30 * len(names))

        middle = QSplitter(Qt.Orientation.Horizontal)
        middle.addWidget(self.watchlist)
        middle.addWidget(self.ticket)
        middle.setStretchFactor(0, 3)
        middle.setStretchFactor(1, 1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(QLabel("Connections"))
        layout.addWidget(self.connections)
        layout.addWidget(middle, 3)
        layout.addWidget(QLabel("Orders"))
        layout.addWidget(self.orders, 2)
        self.setCentralWidget(central)

        self.watchlist.cellClicked.connect(lambda row, _column: self.ticket.fill(*self.watchlist.key_of(row)))
        self.ticket.submitted.connect(self._place)
        self._refresh = QTimer(self, interval=STATUS_REFRESH_MS)
        self._refresh.timeout.connect(self._show_statuses)
        self._refresh.start()
        session.subscribe(self)
        self._show_statuses()

    @property
    def session(self) -> TradingSession:
        """The session this window shows."""
        return self._session

    async def wait_closed(self) -> None:
        """Return once the window has been closed (by a person, `close()`, or a signal)."""
        await self._closed.wait()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Let the window go at once; the host's coroutine, waiting in `wait_closed`, shuts down."""
        self._refresh.stop()
        self._closed.set()
        event.accept()

    # -- SessionListener ---------------------------------------------------------------------------

    def quote_received(self, connection: str, quote: Quote) -> None:
        """Show the quote in the watchlist."""
        self.watchlist.show_quote(connection, quote)
        self._places[quote.symbol] = places_of(quote.bid)

    def order_changed(self, connection: str, order: Order) -> None:
        """Show the order's latest state in the orders table."""
        self.orders.show_order(connection, order, self._places.get(order.symbol, 0))

    def state_changed(self, connection: str, change: StateChange) -> None:
        """Show the new state (and why) in the connections table and the status bar."""
        status = self._session.status(connection)
        if status is not None:
            self.connections.show_status(status)
        reason = f" ({change.reason})" if change.reason is not None else ""
        self.statusBar().showMessage(f"{connection}: {change.previous} -> {change.current}{reason}")

    def stream_failed(self, connection: str, error: BrokerError) -> None:
        """Say that a stream broke; the session opens it again."""
        self.statusBar().showMessage(f"{connection}: stream interrupted ({error}); reopening")

    # -- private -----------------------------------------------------------------------------------

    def _place(self, connection: str, request: OrderRequest) -> None:
        self.ticket.follow(self._session.place_order(connection, request))

    def _show_statuses(self) -> None:
        for name in self._session.connections:
            status = self._session.status(name)
            if status is not None:
                self.connections.show_status(status)
