"""Where the paper broker's state lives: nowhere but memory, or a SQLite file that survives kill -9.

The broker computes each change, `record`s it here in one transaction, and only then applies it in
memory and answers the client, so a PlaceOrder that returned is on disk (WAL, synchronous=FULL).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import attrs

from grpc_plugin.bridge._orders import (
    Account,
    Holding,
    OrderEvent,
    OrderStatus,
    OrderType,
    OrderUpdateRecord,
    PaperOrder,
    Side,
    TimeInForce,
)

__all__ = ["Journal", "MemoryJournal", "Snapshot", "SqliteJournal"]


@attrs.frozen
class Snapshot:
    """Everything a broker needs to resume."""

    orders: Sequence[PaperOrder] = ()
    updates: Sequence[OrderUpdateRecord] = ()  # the most recent ones per account, ascending
    last_sequences: dict[str, int] = attrs.field(factory=dict)
    accounts: Sequence[Account] = ()


class Journal(Protocol):
    """Durable storage of the broker's changes."""

    def load(self, retain: int) -> Snapshot:
        """Everything stored, with at most `retain` recent updates per account."""
        ...

    def record(
        self,
        orders: Sequence[PaperOrder],
        updates: Sequence[OrderUpdateRecord],
        accounts: Sequence[Account],
    ) -> None:
        """Store one change atomically: new or changed orders, new updates, changed accounts."""
        ...

    def close(self) -> None:
        """Release the storage."""
        ...


class MemoryJournal:
    """Keeps nothing: the broker's memory is the only copy (the default without `--state`)."""

    def load(self, retain: int) -> Snapshot:
        """An empty state."""
        return Snapshot()

    def record(
        self,
        orders: Sequence[PaperOrder],
        updates: Sequence[OrderUpdateRecord],
        accounts: Sequence[Account],
    ) -> None:
        """Nothing to do."""

    def close(self) -> None:
        """Nothing to do."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (account, client_order_id)
);
CREATE TABLE IF NOT EXISTS updates (
    account TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (account, sequence)
);
CREATE TABLE IF NOT EXISTS accounts (account TEXT PRIMARY KEY, body TEXT NOT NULL);
"""


class SqliteJournal:
    """State in one SQLite file; every `record` is a committed transaction, fsynced unless `fsync`
    is off (then a crash of the process still loses nothing, a power loss may lose the last ones)."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL with WAL: the commit is in the OS before the reply goes, without waiting for the disk.
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.executescript(_SCHEMA)

    def load(self, retain: int) -> Snapshot:
        """Read the whole state back."""
        orders = [_order_from(json.loads(body)) for (body,) in self._db.execute("SELECT body FROM orders")]
        last = dict(self._db.execute("SELECT account, MAX(sequence) FROM updates GROUP BY account"))
        updates: list[OrderUpdateRecord] = []
        for account in sorted(last):
            rows = self._db.execute(
                "SELECT body FROM updates WHERE account = ? ORDER BY sequence DESC LIMIT ?", (account, retain)
            ).fetchall()
            updates.extend(_update_from(json.loads(body)) for (body,) in reversed(rows))
        accounts = [
            _account_from(json.loads(body)) for (body,) in self._db.execute("SELECT body FROM accounts")
        ]
        return Snapshot(orders=orders, updates=updates, last_sequences=last, accounts=accounts)

    def record(
        self,
        orders: Sequence[PaperOrder],
        updates: Sequence[OrderUpdateRecord],
        accounts: Sequence[Account],
    ) -> None:
        """Write one change in one transaction."""
        with _transaction(self._db):
            self._db.executemany(
                "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?)",
                [(o.order_id, o.account, o.client_order_id, json.dumps(_order_to(o))) for o in orders],
            )
            self._db.executemany(
                "INSERT INTO updates VALUES (?, ?, ?)",
                [(u.account, u.sequence, json.dumps(_update_to(u))) for u in updates],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO accounts VALUES (?, ?)",
                [(a.name, json.dumps(_account_to(a))) for a in accounts],
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (the connection runs in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _undec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _order_to(order: PaperOrder) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "account": order.account,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "quantity": str(order.quantity),
        "limit_price": _dec(order.limit_price),
        "time_in_force": order.time_in_force.value,
        "status": order.status.value,
        "filled_quantity": str(order.filled_quantity),
        "average_fill_price": _dec(order.average_fill_price),
        "reject_reason": order.reject_reason,
        "create_ns": order.create_ns,
        "update_ns": order.update_ns,
        "reserve_price": str(order.reserve_price),
        "filled_value": str(order.filled_value),
        "placed": None if order.placed is None else [str(order.placed[0]), _dec(order.placed[1])],
        "stop_price": _dec(order.stop_price),
        "stop_triggered": order.stop_triggered,
    }


def _order_from(data: dict[str, Any]) -> PaperOrder:
    return PaperOrder(
        order_id=data["order_id"],
        account=data["account"],
        client_order_id=data["client_order_id"],
        symbol=data["symbol"],
        side=Side(data["side"]),
        order_type=OrderType(data["order_type"]),
        quantity=Decimal(data["quantity"]),
        limit_price=_undec(data["limit_price"]),
        time_in_force=TimeInForce(data["time_in_force"]),
        status=OrderStatus(data["status"]),
        filled_quantity=Decimal(data["filled_quantity"]),
        average_fill_price=_undec(data["average_fill_price"]),
        reject_reason=data["reject_reason"],
        create_ns=data["create_ns"],
        update_ns=data["update_ns"],
        reserve_price=Decimal(data["reserve_price"]),
        filled_value=Decimal(data["filled_value"]),
        # State files written before modifications were tracked have no "placed".
        placed=_placed_from(data.get("placed")),
        # State files written before stop orders existed have neither.
        stop_price=_undec(data.get("stop_price")),
        stop_triggered=bool(data.get("stop_triggered", False)),
    )


def _placed_from(value: Any) -> tuple[Decimal, Decimal | None] | None:
    return None if value is None else (Decimal(value[0]), _undec(value[1]))


def _update_to(update: OrderUpdateRecord) -> dict[str, Any]:
    return {
        "account": update.account,
        "sequence": update.sequence,
        "event": update.event.value,
        "order": _order_to(update.order),
        "time_ns": update.time_ns,
        "fill_quantity": _dec(update.fill_quantity),
        "fill_price": _dec(update.fill_price),
    }


def _update_from(data: dict[str, Any]) -> OrderUpdateRecord:
    return OrderUpdateRecord(
        account=data["account"],
        sequence=data["sequence"],
        event=OrderEvent(data["event"]),
        order=_order_from(data["order"]),
        time_ns=data["time_ns"],
        fill_quantity=_undec(data["fill_quantity"]),
        fill_price=_undec(data["fill_price"]),
    )


def _account_to(account: Account) -> dict[str, Any]:
    return {
        "name": account.name,
        "cash": {currency: str(amount) for currency, amount in account.cash.items()},
        "holdings": {symbol: [str(h.quantity), str(h.cost)] for symbol, h in account.holdings.items()},
    }


def _account_from(data: dict[str, Any]) -> Account:
    return Account(
        name=data["name"],
        cash={currency: Decimal(amount) for currency, amount in data["cash"].items()},
        holdings={
            symbol: Holding(Decimal(quantity), Decimal(cost))
            for symbol, (quantity, cost) in data["holdings"].items()
        },
    )
