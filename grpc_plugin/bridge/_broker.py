"""The paper broker: accepts, matches, cancels and modifies orders against the simulated quotes.

A new order is matched at once against the current quote (see `_matching`); what is left works and
is matched on every later tick of its symbol. A stop or stop-limit order waits until the last trade
reaches its stop price (a buy at or above it, a sell at or below), then works as a market or limit
order from that tick on (`_matching`). DAY orders expire at 00:00 UTC, but what is left of a KRX
conditional-limit order is then matched as a market order; a KRX best-limit order gets the best
opposite price as its limit when it arrives. A buy holds back cash (its limit price, or the ask
plus 5% for a market buy) so that working buys cannot overspend; a sell needs the shares (no short
selling). Business rule violations end as REJECTED orders.

Each operation builds an `OrderChange`, journals it, then applies it and publishes its updates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_CEILING, Decimal

import attrs

from grpc_plugin.bridge._accounting import BalanceView, buying_power, equity_by_currency
from grpc_plugin.bridge._errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from grpc_plugin.bridge._instruments import InstrumentSpec
from grpc_plugin.bridge._journal import Journal
from grpc_plugin.bridge._market import Market, MarketQuote
from grpc_plugin.bridge._matching import Matcher, OrderChange, end
from grpc_plugin.bridge._orders import (
    Account,
    Holding,
    NewOrder,
    OrderEvent,
    OrderStatus,
    OrderType,
    PaperOrder,
    Side,
    TimeInForce,
    differences,
)
from grpc_plugin.bridge._price_rules import limit_violation, price_violation
from grpc_plugin.bridge._updates import UpdateLog

__all__ = ["PaperBroker"]

_DAY_NS = 86_400 * 1_000_000_000
_MARKET_BUY_MARGIN = Decimal("1.05")  # cash held back for a market buy, as a multiple of the ask
_ORDER_ID_PREFIX = "PO"
_REPRICEABLE = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.CONDITIONAL_LIMIT})


class PaperBroker:
    """Orders, accounts and order updates of every account, kept in memory and in a `Journal`."""

    def __init__(
        self,
        market: Market,
        journal: Journal,
        *,
        initial_cash: Mapping[str, Decimal],
        retain_updates: int = 10_000,
        clock_ns: Callable[[], int] = time.time_ns,
        on_working: Callable[[], None] | None = None,
    ) -> None:
        self._market = market
        self._journal = journal
        self._initial_cash = dict(initial_cash)
        self._clock_ns = clock_ns
        self._on_working = on_working
        self.updates = UpdateLog(retain=retain_updates)
        snapshot = journal.load(retain_updates)
        self._orders: dict[str, PaperOrder] = {}
        self._by_client: dict[tuple[str, str], str] = {}
        self._working: dict[str, dict[str, None]] = {}  # symbol -> order ids in time priority
        self._apply_orders(sorted(snapshot.orders, key=lambda o: (o.create_ns, o.order_id)))
        self._accounts = {account.name: account for account in snapshot.accounts}
        self.updates.restore(snapshot.updates, snapshot.last_sequences)
        self._next_number = 1 + max((int(o[len(_ORDER_ID_PREFIX) :]) for o in self._orders), default=0)
        self._matcher = Matcher(market)
        self._checked_day = -1
        self.deduplicate = True
        """False only in tests: every PlaceOrder creates an order, as a broker without idempotent
        order entry does (to show what a gateway's blind resend would do)."""

    # -- queries ---------------------------------------------------------------------------------

    def account(self, name: str) -> Account:
        """The account `name`; a new one starts with the initial cash."""
        return self._accounts.get(name) or Account(name, dict(self._initial_cash))

    def last_sequence(self, account: str) -> int:
        """The account's latest order update sequence (0 before the first)."""
        return self.updates.last_sequence(account)

    def order_by_id(self, order_id: str) -> PaperOrder:
        """Any account's order `order_id` (`NotFoundError` if none)."""
        order = self._orders.get(order_id)
        if order is None:
            raise NotFoundError(f"no order {order_id!r}")
        return order

    def get_order(self, account: str, *, order_id: str = "", client_order_id: str = "") -> PaperOrder:
        """The account's order by broker id or client id; `NotFoundError` if it has none."""
        if client_order_id:
            order_id = self._by_client.get((account, client_order_id), "")
            if not order_id:
                raise NotFoundError(f"no order with client_order_id {client_order_id!r}")
        order = self._orders.get(order_id)
        if order is None or order.account != account:
            raise NotFoundError(f"no order {order_id!r}")
        return order

    def list_orders(
        self, account: str, *, open_only: bool = False, symbol: str = "", updated_since_ns: int | None = None
    ) -> list[PaperOrder]:
        """The account's orders, oldest first, filtered."""
        return [
            order
            for order in self._orders.values()
            if order.account == account
            and (not open_only or order.status.is_open)
            and (not symbol or order.symbol == symbol)
            and (updated_since_ns is None or order.update_ns >= updated_since_ns)
        ]

    def order_counts(self, account: str) -> dict[str, int]:
        """How many orders `account` holds under each client_order_id (the tests' backdoor)."""
        counts: dict[str, int] = {}
        for order in self._orders.values():
            if order.account == account:
                counts[order.client_order_id] = counts.get(order.client_order_id, 0) + 1
        return counts

    def orders_by_client_order_id(self, account: str) -> dict[str, PaperOrder]:
        """Every order of `account`, keyed by client_order_id (the tests' backdoor)."""
        return {o.client_order_id: o for o in self._orders.values() if o.account == account}

    def positions(self, account: str) -> list[tuple[str, Holding]]:
        """Non-zero holdings of the account, by symbol."""
        return sorted((s, h) for s, h in self.account(account).holdings.items() if h.quantity != 0)

    def balances(self, account: str, currency: str = "") -> list[BalanceView]:
        """Cash, buying power and equity by currency (the initial cash's first currency first)."""
        state = self.account(account)
        if currency and currency not in state.cash:
            raise NotFoundError(f"the account holds no {currency!r} cash")
        working = self._working_orders(account)
        equity = equity_by_currency(state, self._market)
        return [
            BalanceView(code, cash, buying_power(cash, code, working, self._market), equity[code])
            for code, cash in state.cash.items()
            if not currency or code == currency
        ]

    def working_symbols(self) -> set[str]:
        """Symbols with at least one working order (the quote feed must tick them)."""
        return {symbol for symbol, ids in self._working.items() if ids}

    def _working_orders(self, account: str) -> list[PaperOrder]:
        return [
            self._orders[i]
            for ids in self._working.values()
            for i in ids
            if self._orders[i].account == account
        ]

    # -- commands --------------------------------------------------------------------------------

    def placed(self, account: str, client_order_id: str) -> PaperOrder | None:
        """The account's order placed under `client_order_id`, if any."""
        order_id = self._by_client.get((account, client_order_id))
        return None if order_id is None else self._orders[order_id]

    def place(self, account: str, request: NewOrder) -> tuple[PaperOrder, bool]:
        """Place `request` once; returns (order, duplicate). Business failures give REJECTED orders.

        A client_order_id seen before returns its order if the request is the same order, and
        raises `AlreadyExistsError` if it is another one (nothing is created or changed).
        """
        existing = self.placed(account, request.client_order_id)
        if existing is None or not self.deduplicate:
            return self._create(account, request), False
        differ = differences(existing, request)
        if differ:
            raise AlreadyExistsError(
                f"client_order_id {request.client_order_id!r} is order {existing.order_id}, placed with "
                f"other contents ({'; '.join(differ)}); use a new client_order_id for a new order"
            )
        return existing, True

    def _create(self, account: str, request: NewOrder) -> PaperOrder:
        now = self._clock_ns()
        change = OrderChange(self)
        order = PaperOrder(
            order_id=f"{_ORDER_ID_PREFIX}{self._next_number:09d}",
            account=account,
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            quantity=request.quantity,
            limit_price=request.limit_price,
            time_in_force=request.time_in_force,
            stop_price=request.stop_price,
            status=OrderStatus.NEW,
            filled_quantity=Decimal(0),
            average_fill_price=None,
            reject_reason="",
            create_ns=now,
            update_ns=now,
        )
        if order.order_type is OrderType.BEST_LIMIT and self._market.has(order.symbol):
            # The price is the broker's: the best opposite price now. As placed, the order has none.
            spec = self._market.instrument(order.symbol)
            quote = self._market.quote(order.symbol)
            best = spec.price(quote.ask if order.side is Side.BUY else quote.bid)
            order = attrs.evolve(order, limit_price=best, placed=(order.quantity, None))
        reason, reserve = self._check_new(order)
        if reason:
            order = attrs.evolve(order, status=OrderStatus.REJECTED, reject_reason=reason)
            change.emit(OrderEvent.REJECTED, order, now)
        else:
            order = attrs.evolve(order, reserve_price=reserve)
            change.emit(OrderEvent.ACCEPTED, order, now)
            order = self._matcher.execute(
                change, order, self._market.quote(order.symbol), now, immediate=True
            )
        self._next_number += 1
        self._commit(change)
        return order

    def cancel(self, account: str, order_id: str) -> PaperOrder:
        """Cancel a working order of the account."""
        order = self.get_order(account, order_id=order_id)
        if not order.status.is_open:
            raise FailedPreconditionError(
                f"order {order_id} is {order.status.value} and can no longer be canceled"
            )
        now = self._clock_ns()
        change = OrderChange(self)
        order = attrs.evolve(order, status=OrderStatus.CANCELED, update_ns=now)
        change.emit(OrderEvent.CANCELED, order, now)
        self._commit(change)
        return order

    def modify(
        self, account: str, order_id: str, *, quantity: Decimal | None, limit_price: Decimal | None
    ) -> PaperOrder:
        """Change the total quantity and/or limit price of a working order, keeping its id."""
        order = self.get_order(account, order_id=order_id)
        if not order.status.is_open:
            raise FailedPreconditionError(
                f"order {order_id} is {order.status.value} and can no longer be modified"
            )
        spec = self._market.instrument(order.symbol)
        if limit_price is not None and order.order_type not in _REPRICEABLE:
            raise InvalidArgumentError("limit_price can only be changed on a limit or stop-limit order")
        new_quantity = order.quantity if quantity is None else quantity
        if new_quantity <= order.filled_quantity or new_quantity % spec.lot != 0:
            raise InvalidArgumentError(
                f"quantity must be a multiple of the lot size {spec.lot} and more than the "
                f"{order.filled_quantity} already filled, got {new_quantity}"
            )
        new_price = order.limit_price if limit_price is None else limit_price
        reason = "" if limit_price is None else price_violation("limit_price", limit_price, spec)
        if reason:
            raise InvalidArgumentError(reason)
        outside = (
            "" if limit_price is None else self._outside_limits("limit_price", limit_price, order.symbol)
        )
        if outside:
            raise FailedPreconditionError(outside)
        now = self._clock_ns()
        updated = attrs.evolve(
            order,
            quantity=new_quantity,
            limit_price=new_price,
            update_ns=now,
            placed=order.placed_terms,
        )
        if order.side is Side.BUY:
            updated = attrs.evolve(updated, reserve_price=new_price or order.reserve_price)
            others = [o for o in self._working_orders(account) if o.order_id != order_id]
            cash = self.account(account).cash.get(spec.currency, Decimal(0))
            available = buying_power(cash, spec.currency, others, self._market)
            if updated.reserved_cash > available:
                raise FailedPreconditionError(
                    f"insufficient cash: the order would hold {updated.reserved_cash} {spec.currency}, "
                    f"buying power is {available} {spec.currency}"
                )
        elif new_quantity > order.quantity:
            self._check_position(account, order.symbol, new_quantity - order.quantity, raise_error=True)
        change = OrderChange(self)
        change.emit(OrderEvent.MODIFIED, updated, now)
        updated = self._matcher.execute(
            change, updated, self._market.quote(order.symbol), now, immediate=False
        )
        self._commit(change)
        return updated

    def on_quotes(self, quotes: Sequence[MarketQuote]) -> None:
        """Match working orders against one tick's quotes, and expire DAY orders at day end."""
        if not any(self._working.values()):
            return
        now = self._clock_ns()
        change = OrderChange(self)
        self._expire_day_orders(change, now)
        for quote in quotes:
            for order_id in self._working.get(quote.symbol, ()):
                order = change.order(order_id)
                if order.status.is_open:
                    self._matcher.execute(change, order, quote, now, immediate=False)
        if change.updates:
            self._commit(change)

    # -- internals -------------------------------------------------------------------------------

    def _check_new(self, order: PaperOrder) -> tuple[str, Decimal]:
        """The reason to reject `order` ("" if none) and the cash per unit it holds back."""
        if not self._market.has(order.symbol):
            return f"unknown symbol {order.symbol!r}", Decimal(0)
        spec = self._market.instrument(order.symbol)
        reason = _rule_violation(order, spec)
        for field, price in (("limit price", order.limit_price), ("stop price", order.stop_price)):
            if not reason and price is not None:
                reason = self._outside_limits(field, price, order.symbol)
        if reason or order.side is Side.SELL:
            return reason or self._check_position(order.account, order.symbol, order.quantity), Decimal(0)
        if order.limit_price is not None:
            reserve = order.limit_price
        else:
            # A market buy, or a stop buy that becomes one at about its stop price (or at once).
            ask = spec.price(self._market.quote(order.symbol).ask)
            if order.stop_price is not None:
                ask = max(ask, order.stop_price)
            reserve = (ask * _MARKET_BUY_MARGIN).quantize(spec.tick_size, rounding=ROUND_CEILING)
        cash = self.account(order.account).cash.get(spec.currency, Decimal(0))
        available = buying_power(cash, spec.currency, self._working_orders(order.account), self._market)
        needed = order.quantity * reserve
        if needed > available:
            return (
                f"insufficient cash: the order needs {needed} {spec.currency}, "
                f"buying power is {available} {spec.currency}",
                Decimal(0),
            )
        return "", reserve

    def _outside_limits(self, field: str, price: Decimal, symbol: str) -> str:
        return limit_violation(field, price, self._market.instrument(symbol), self._market.quote(symbol))

    def _check_position(
        self, account: str, symbol: str, quantity: Decimal, *, raise_error: bool = False
    ) -> str:
        holding = self.account(account).holdings.get(symbol)
        held = holding.quantity if holding else Decimal(0)
        selling = sum(
            (
                o.remaining
                for o in self._working_orders(account)
                if o.symbol == symbol and o.side is Side.SELL
            ),
            Decimal(0),
        )
        if quantity <= held - selling:
            return ""
        reason = f"insufficient position: selling {quantity} {symbol}, {held - selling} available"
        if raise_error:
            raise FailedPreconditionError(reason)
        return reason

    def _expire_day_orders(self, change: OrderChange, now: int) -> None:
        today = now // _DAY_NS
        if today == self._checked_day:
            return
        self._checked_day = today
        for ids in self._working.values():
            for order_id in ids:
                order = change.order(order_id)
                if order.time_in_force is not TimeInForce.DAY or order.create_ns // _DAY_NS >= today:
                    continue
                if order.order_type is OrderType.CONDITIONAL_LIMIT:
                    # At the close what is left becomes a market order: it takes what the book shows.
                    order = attrs.evolve(order, limit_price=None, placed=order.placed_terms, update_ns=now)
                    order = self._matcher.execute(
                        change, order, self._market.quote(order.symbol), now, immediate=False
                    )
                    if not order.status.is_open:
                        continue
                end(change, order, now, OrderStatus.EXPIRED)

    def _commit(self, change: OrderChange) -> None:
        self._journal.record(list(change.orders.values()), change.updates, list(change.accounts.values()))
        self._apply_orders(change.orders.values())
        self._accounts.update(change.accounts)
        self.updates.publish(change.updates)

    def _apply_orders(self, orders: Iterable[PaperOrder]) -> None:
        started = False
        for order in orders:
            self._orders[order.order_id] = order
            self._by_client[(order.account, order.client_order_id)] = order.order_id
            ids = self._working.setdefault(order.symbol, {})
            if order.status.is_open:
                started = started or order.order_id not in ids
                ids[order.order_id] = None
            else:
                ids.pop(order.order_id, None)
        if started and self._on_working is not None:
            self._on_working()


def _rule_violation(order: PaperOrder, spec: InstrumentSpec) -> str:
    """Why `order` breaks the instrument's quantity or price rules ("" if it does not)."""
    if order.order_type in (OrderType.BEST_LIMIT, OrderType.CONDITIONAL_LIMIT) and spec.exchange != "KRX":
        return f"{order.order_type.value} is a KRX order type; {spec.symbol} trades on {spec.exchange}"
    if order.quantity <= 0:
        return f"quantity must be greater than zero, got {order.quantity}"
    if order.quantity % spec.lot != 0:
        return f"quantity {order.quantity} is not a multiple of the lot size {spec.lot}"
    for field, price in (("limit price", order.limit_price), ("stop price", order.stop_price)):
        reason = "" if price is None else price_violation(field, price, spec)
        if reason:
            return reason
    return ""
