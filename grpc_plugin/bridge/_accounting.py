"""Cash and holdings arithmetic of the paper broker: fills, buying power and equity."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import attrs

from grpc_plugin.bridge._instruments import InstrumentSpec
from grpc_plugin.bridge._market import Market
from grpc_plugin.bridge._orders import Account, Holding, PaperOrder, Side

__all__ = ["BalanceView", "apply_fill", "buying_power", "equity_by_currency"]


@attrs.frozen
class BalanceView:
    """The account's money in one currency."""

    currency: str
    cash: Decimal
    buying_power: Decimal
    equity: Decimal


def apply_fill(
    account: Account, spec: InstrumentSpec, side: Side, quantity: Decimal, price: Decimal
) -> Account:
    """The account after a fill of `quantity` at `price`."""
    cash = dict(account.cash)
    holdings = dict(account.holdings)
    held = holdings.get(spec.symbol, Holding(Decimal(0), Decimal(0)))
    amount = quantity * price
    if side is Side.BUY:
        cash[spec.currency] = cash.get(spec.currency, Decimal(0)) - amount
        holdings[spec.symbol] = Holding(held.quantity + quantity, held.cost + amount)
    else:
        cash[spec.currency] = cash.get(spec.currency, Decimal(0)) + amount
        remaining = held.quantity - quantity
        if remaining == 0:
            del holdings[spec.symbol]
        else:
            # Selling at average cost leaves the average unchanged: the cost shrinks pro rata.
            holdings[spec.symbol] = Holding(remaining, held.cost * remaining / held.quantity)
    return attrs.evolve(account, cash=cash, holdings=holdings)


def buying_power(cash: Decimal, currency: str, working: Iterable[PaperOrder], market: Market) -> Decimal:
    """`cash` less what the working buys in `currency` hold back."""
    held_back = sum(
        (
            order.reserved_cash
            for order in working
            if order.side is Side.BUY and market.instrument(order.symbol).currency == currency
        ),
        Decimal(0),
    )
    return cash - held_back


def equity_by_currency(account: Account, market: Market) -> dict[str, Decimal]:
    """Cash plus holdings at the last trade price, by currency."""
    equity = dict(account.cash)
    for symbol, held in account.holdings.items():
        spec = market.instrument(symbol)
        last = spec.price(market.quote(symbol).last)
        equity[spec.currency] = equity.get(spec.currency, Decimal(0)) + held.quantity * last
    return equity
