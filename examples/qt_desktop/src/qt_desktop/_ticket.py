"""The order ticket: connection, symbol, quantity, an optional limit price, and Buy / Sell."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from broker_plugins import (
    BrokerError,
    BrokerUnavailableError,
    InvalidRequestError,
    Order,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    OrderRequest,
    RateLimitExceededError,
    Side,
)

__all__ = ["OrderTicket"]

_FAILURES: Sequence[tuple[type[BrokerError], str, bool]] = (
    # (error, what happened to the order, whether the broker's words help the person at the ticket)
    (InvalidRequestError, "Not sent", True),
    (OrderRejectedError, "Rejected", True),
    (OrderOutcomeUnknownError, "Outcome unknown, check the orders list", True),
    (BrokerUnavailableError, "Not placed: the broker is unreachable", False),
    (RateLimitExceededError, "Not placed: too many calls, try again", False),
)


def describe_failure(error: BrokerError) -> str:
    """One line for the ticket: what happened to the order, and the broker's reason where it helps.

    Connection details (addresses, transport errors) stay out of it: the tooltip has them.
    """
    for kind, words, detail in _FAILURES:
        if isinstance(error, kind):
            return f"{words}: {error}" if detail else words
    return f"Not placed: {error}"


_W = TypeVar("_W", bound=QWidget)


def _named(widget: _W, name: str) -> _W:
    widget.setObjectName(name)
    return widget


class OrderTicket(QGroupBox):
    """Builds an `OrderRequest` from what was typed and emits `submitted(connection, request)`.

    An empty limit price means a market order. Input the core refuses (`InvalidRequestError`) is
    shown on the ticket and never sent.
    """

    submitted = Signal(str, object)
    """(connection name, OrderRequest) when Buy or Sell was clicked on valid input."""

    def __init__(self, connections: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__("Order ticket", parent)
        self.setObjectName("ticket")
        self.setMinimumWidth(300)
        # Object names let UI automation (and the test) find each field the way a person would.
        self.connection = _named(QComboBox(), "ticket-connection")
        self.connection.addItems(list(connections))
        self.symbol = _named(QLineEdit(placeholderText="click a watchlist row"), "ticket-symbol")
        self.quantity = _named(QLineEdit(placeholderText="shares"), "ticket-quantity")
        self.price = _named(QLineEdit(placeholderText="empty: market order"), "ticket-price")
        self.buy = _named(QPushButton("Buy"), "ticket-buy")
        self.sell = _named(QPushButton("Sell"), "ticket-sell")
        self.result = _named(QLabel(wordWrap=True), "ticket-result")

        form = QFormLayout()
        form.addRow("Connection", self.connection)
        form.addRow("Symbol", self.symbol)
        form.addRow("Quantity", self.quantity)
        form.addRow("Limit price", self.price)
        buttons = QHBoxLayout()
        buttons.addWidget(self.buy)
        buttons.addWidget(self.sell)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.result)
        layout.addStretch(1)

        self.buy.clicked.connect(lambda: self._submit(Side.BUY))
        self.sell.clicked.connect(lambda: self._submit(Side.SELL))

    def fill(self, connection: str, symbol: str) -> None:
        """Point the ticket at `symbol` of `connection` (a click on the watchlist does this)."""
        self.connection.setCurrentText(connection)
        self.symbol.setText(symbol)

    def follow(self, task: asyncio.Task[Order]) -> None:
        """Show how the order being placed by `task` ends."""
        task.add_done_callback(self._show_outcome)

    def _submit(self, side: Side) -> None:
        price = self.price.text().strip()
        try:
            request = OrderRequest(
                self.symbol.text().strip(), side, self.quantity.text().strip(), price=price or None
            )
        except InvalidRequestError as error:
            self._show(describe_failure(error), ok=False)
            return
        kind = f"limit {price}" if price else "market"
        self._show(f"Sending {side} {request.quantity} {request.symbol} ({kind})...", ok=True)
        self.submitted.emit(self.connection.currentText(), request)

    def _show_outcome(self, task: asyncio.Task[Order]) -> None:
        if task.cancelled():
            self._show("Cancelled: the window is closing", ok=False)
            return
        error = task.exception()
        if isinstance(error, BrokerError):
            self._show(describe_failure(error), ok=False, detail=str(error))
        elif error is not None:
            self._show(f"Failed: {error!r}", ok=False)
        else:
            order = task.result()
            self._show(f"Placed: order {order.order_id} {order.status}", ok=True)

    def _show(self, text: str, *, ok: bool, detail: str = "") -> None:
        self.result.setText(text)
        self.result.setToolTip(detail)
        self.result.setStyleSheet("" if ok else "color: #b00020")
