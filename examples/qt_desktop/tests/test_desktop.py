"""The desktop host driven as a person would: a real window (Qt's offscreen platform unless
QT_QPA_PLATFORM says otherwise), real embedded bridges on loopback, clicks and typing through QTest.

Set QT_DESKTOP_SCREENSHOT=PATH to keep the screenshot taken after the outage (docs/ has one).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest

INSTALL = "pip install './examples/qt_desktop[test]'"
QtWidgets = pytest.importorskip("PySide6.QtWidgets", reason=f"the desktop example needs PySide6: {INSTALL}")
qasync = pytest.importorskip("qasync", reason=f"the desktop example needs qasync: {INSTALL}")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QWidget,
)
from qt_desktop import MainWindow, RunningBackend, run_desktop  # noqa: E402

from broker_plugins import ConnectionState  # noqa: E402
from grpc_plugin.bridge import BridgeServer  # noqa: E402
from grpc_plugin.embedded import RunningBridge  # noqa: E402

T = TypeVar("T")
W = TypeVar("W", bound=QWidget)
WAIT = 15.0
"""Longest wait for anything a person would wait for; generous, the machine is shared."""


@pytest.fixture(scope="module")
def qapp() -> QApplication:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication(["qt-desktop-test"])
    assert isinstance(app, QApplication)
    return app


async def until(condition: Callable[[], T | bool | None], what: str, timeout: float = WAIT) -> T:
    """Wait (the loop, and so the window, keep running) until `condition()` gives neither None nor
    False; return what it gave (a row number may be 0)."""
    deadline = time.monotonic() + timeout
    while (result := condition()) is None or result is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:g} s")
        await asyncio.sleep(0.02)
    return result  # type: ignore[return-value]


def the_window() -> MainWindow | None:
    found = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    return found[0] if len(found) == 1 else None


def child(window: QWidget, kind: type[W], name: str) -> W:
    found = window.findChild(kind, name)
    assert isinstance(found, kind), f"the window has no {kind.__name__} named {name!r}"
    return found


def text(table: QTableWidget, row: int, column: int) -> str:
    item = table.item(row, column)
    assert item is not None, f"{table.objectName()} has no cell at {row}, {column}"
    return item.text()


def headers(table: QTableWidget) -> list[str]:
    labels = (table.horizontalHeaderItem(column) for column in range(table.columnCount()))
    return [label.text() if label is not None else "" for label in labels]


def row_where(table: QTableWidget, **cells: str) -> int | None:
    """The first row whose cells under the given headers (spaces as underscores) read as given."""
    columns = [header.replace(" ", "_") for header in headers(table)]
    for row in range(table.rowCount()):
        if all(text(table, row, columns.index(h)) == shown for h, shown in cells.items()):
            return row
    return None


def cell(table: QTableWidget, row: int, header: str) -> str:
    return text(table, row, headers(table).index(header))


def state_of(window: QWidget, connection: str) -> str:
    table = child(window, QTableWidget, "connections")
    row = row_where(table, Connection=connection)
    assert row is not None, f"no row for connection {connection}"
    return cell(table, row, "State")


def click(widget: QWidget, at: QPoint | None = None) -> None:
    point = at or widget.rect().center()
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)


def type_into(field: QLineEdit, text: str) -> None:
    click(field)
    field.selectAll()
    QTest.keyClick(field, Qt.Key.Key_Delete)
    QTest.keyClicks(field, text)


def run(scenario: Callable[[MainWindow, asyncio.Task[None]], Awaitable[None]]) -> None:
    """Run the host on a fresh qasync loop, as `qt-desktop` does, and `scenario` on its window.

    Whatever the scenario does, the window is closed and the host awaited before the loop ends,
    so a failing test reports its failure rather than tearing Qt down under a running session.
    """

    async def main() -> None:
        host = asyncio.create_task(run_desktop(), name="the desktop host")
        try:
            await scenario(await until(the_window, "the trading window"), host)
        finally:
            if not host.done():
                for widget in QApplication.topLevelWidgets():
                    widget.close()
                await asyncio.wait({host}, timeout=WAIT)

    qasync.run(main())


class Trader:
    """What a person at the window sees and does: reads cells, clicks rows and buttons, types."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.connections = child(window, QTableWidget, "connections")
        self.watchlist = child(window, QTableWidget, "watchlist")
        self.orders = child(window, QTableWidget, "orders")
        self.quantity = child(window, QLineEdit, "ticket-quantity")
        self.result = child(window, QLabel, "ticket-result")

    def state(self, connection: str) -> str:
        return state_of(self.window, connection)

    async def sees_state(self, connection: str, state: str) -> None:
        await until(lambda: self.state(connection) == state, f"{connection} {state}")

    def connection_cell(self, connection: str, header: str) -> str:
        row = row_where(self.connections, Connection=connection)
        assert row is not None
        return cell(self.connections, row, header)

    def quote_time(self, connection: str, symbol: str) -> str:
        row = row_where(self.watchlist, Connection=connection, Symbol=symbol)
        assert row is not None, f"{symbol} of {connection} is not on the watchlist"
        return cell(self.watchlist, row, "Time")

    async def sees_fresh_quote(self, connection: str, symbol: str) -> None:
        shown = self.quote_time(connection, symbol)
        await until(lambda: self.quote_time(connection, symbol) != shown, f"a newer {symbol} quote")

    def picks(self, connection: str, symbol: str) -> None:
        row = row_where(self.watchlist, Connection=connection, Symbol=symbol)
        assert row is not None
        item = self.watchlist.item(row, 1)
        assert item is not None
        click(self.watchlist.viewport(), self.watchlist.visualItemRect(item).center())

    def orders_on_ticket(self, quantity: str, button: str) -> None:
        type_into(self.quantity, quantity)
        click(child(self.window, QPushButton, button))


async def watch_quotes(trader: Trader) -> None:
    # Both named connections come up, each on its own embedded bridge; quotes fill every row, and
    # keep coming.
    await trader.sees_state("paper-krx", "connected")
    await trader.sees_state("paper-us", "connected")
    rows = range(trader.watchlist.rowCount())
    await until(lambda: all(cell(trader.watchlist, r, "Bid") for r in rows), "quotes in every row")
    await trader.sees_fresh_quote("paper-krx", "005930")


async def buy_from_the_ticket(trader: Trader, bridge: BridgeServer) -> None:
    # Click the 005930 row: the ticket points at it. Type a quantity, click Buy.
    trader.picks("paper-krx", "005930")
    assert child(trader.window, QLineEdit, "ticket-symbol").text() == "005930"
    assert child(trader.window, QComboBox, "ticket-connection").currentText() == "paper-krx"
    trader.orders_on_ticket("10", "ticket-buy")
    filled = await until(lambda: row_where(trader.orders, Symbol="005930", Status="filled"), "a fill")
    assert (cell(trader.orders, filled, "Side"), cell(trader.orders, filled, "Quantity")) == ("buy", "10")
    await until(lambda: trader.result.text().startswith("Placed: order"), "the ticket saying placed")
    # What the bridge itself received: exactly that order, once.
    placed = list(bridge.orders_by_client_order_id().values())
    assert [(order.symbol, order.quantity) for order in placed] == [("005930", Decimal(10))]

    # Input the core refuses is shown on the ticket and never sent.
    trader.orders_on_ticket("0", "ticket-buy")
    assert trader.result.text().startswith("Not sent"), trader.result.text()
    assert "quantity" in trader.result.text()
    assert len(bridge.orders_by_client_order_id()) == 1


async def ride_out_an_outage(trader: Trader, backend: RunningBackend, bridge: BridgeServer) -> None:
    # The bridge goes away: its connection reconnects, the other stays up, the window still works.
    await backend.stop()
    await trader.sees_state("paper-krx", "reconnecting")
    assert trader.state("paper-us") == "connected"
    trader.orders_on_ticket("5", "ticket-sell")
    await until(lambda: "unreachable" in trader.result.text(), "the sell refused while the bridge is down")
    assert trader.result.toolTip(), "the ticket keeps the gateway's own words in its tooltip"

    # It comes back: connected again, quotes flow, the refused order was not sent late, and the
    # manager's health checks pass again (a round trip shown, no error).
    await backend.start()
    await trader.sees_state("paper-krx", "connected")
    await trader.sees_fresh_quote("paper-krx", "005930")
    assert len(bridge.orders_by_client_order_id()) == 1
    await until(
        lambda: (
            trader.connection_cell("paper-krx", "Round trip") != ""
            and trader.connection_cell("paper-krx", "Last error") == ""
        ),
        "paper-krx healthy again",
    )


def test_a_trader_watches_quotes_places_an_order_and_rides_out_an_outage(
    qapp: QApplication, tmp_path: Path
) -> None:
    async def scenario(window: MainWindow, host: asyncio.Task[None]) -> None:
        trader = Trader(window)
        session = window.session
        await watch_quotes(trader)
        backend = session.backend("paper-krx")
        assert isinstance(backend, RunningBridge)
        await buy_from_the_ticket(trader, backend.server)
        await ride_out_an_outage(trader, backend, backend.server)

        shot = Path(os.environ.get("QT_DESKTOP_SCREENSHOT") or tmp_path / "qt-desktop.png")
        assert window.grab().save(str(shot), "PNG")
        assert QImage(str(shot)).size() == window.size()

        # A click on the window's X: everything behind it is shut, and the host coroutine returns.
        window.close()
        await asyncio.wait_for(host, WAIT)
        assert not window.isVisible()
        assert session.tasks == frozenset()
        assert {session.gateway(n).state for n in session.connections} == {ConnectionState.CLOSED}
        assert not backend.server.listening
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(scenario)


def test_closing_the_window_while_it_connects_shuts_everything_down(qapp: QApplication) -> None:
    async def scenario(window: MainWindow, host: asyncio.Task[None]) -> None:
        window.close()
        await asyncio.wait_for(host, WAIT)
        assert window.session.tasks == frozenset()
        assert {window.session.gateway(n).state for n in window.session.connections} <= {
            ConnectionState.CLOSED,
            ConnectionState.DISCONNECTED,
        }
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(scenario)
