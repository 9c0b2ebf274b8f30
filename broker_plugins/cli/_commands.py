"""The one-shot commands: market data, trading, account, plugins and health."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal

from broker_plugins._aio import wait_for
from broker_plugins._calendar import check_exchange
from broker_plugins._checks import check_symbol
from broker_plugins._entities import Order, OrderRequest
from broker_plugins._enums import Interval, TimeInForce
from broker_plugins._errors import BrokerError, BrokerTimeoutError
from broker_plugins._gateway import HealthStatus, IBrokerGateway
from broker_plugins._limiter import LimiterStats, ObservableLimiter
from broker_plugins._manager import BrokerConnectionManager
from broker_plugins.cli._candles import fetch_candles, parse_time
from broker_plugins.cli._context import Context
from broker_plugins.cli._exit import CliError, ExitCode
from broker_plugins.cli._output import (
    Column,
    Progress,
    balance_rows,
    candle_columns,
    instrument_columns,
    instrument_rows,
    jsonable,
    key_values,
    order_columns,
    order_rows,
    position_columns,
    position_json,
    quote_columns,
    table,
)
from broker_plugins.cli._session import Session, create_gateway, open_session, selected_connections

__all__ = [
    "balance",
    "cancel",
    "candles",
    "connect",
    "health",
    "instrument",
    "instruments",
    "order",
    "orders",
    "plugins",
    "positions",
    "quote",
    "wait_until_done",
]

_TICKS_LOOKED_UP = 20
"""Instruments looked up (a call each) to print their prices in their tick; more print as sent."""
_EMPTY_EMBEDDED = (
    "the embedded backend starts with an empty paper account for every command; to keep one, run "
    "`brokerctl serve` in another terminal and point commands at it"
)


@contextlib.asynccontextmanager
async def connect(ctx: Context) -> AsyncIterator[Session]:
    """The session of the one connection the command line selects (or the embedded backend)."""
    selected = selected_connections(ctx)
    async with open_session(ctx, selected[0] if selected else None) as session:
        yield session


async def ticks_of(gateway: IBrokerGateway, symbols: Iterable[str]) -> dict[str, Decimal]:
    """The tick size of each symbol's instrument, for printing; one unknown to the broker is left out."""
    ticks: dict[str, Decimal] = {}
    for symbol in list(dict.fromkeys(symbols))[:_TICKS_LOOKED_UP]:
        try:
            ticks[symbol] = (await gateway.get_instrument(symbol)).tick_size
        except BrokerError:
            continue
    return ticks


def _nothing(ctx: Context, session: Session, what: str) -> None:
    """Say why a table is empty when the reason is the embedded backend's fresh account."""
    if session.backend is not None and not ctx.json:
        ctx.note(f"no {what}: {_EMPTY_EMBEDDED}")


async def quote(ctx: Context) -> ExitCode:
    """`quote SYMBOL...`: the latest quote of each symbol."""
    symbols = [check_symbol(symbol) for symbol in ctx.args.symbols]
    async with connect(ctx) as session:
        quotes = [await session.gateway.get_quote(symbol) for symbol in symbols]
        ticks = {} if ctx.json else await ticks_of(session.gateway, symbols)
    ctx.emit(quotes, lambda: table(quote_columns(ticks), quotes))
    return ExitCode.OK


async def candles(ctx: Context) -> ExitCode:
    """`candles SYMBOL --interval 1m [--start --end --limit]`: historical bars, oldest first."""
    args = ctx.args
    symbol = check_symbol(args.symbol)
    start = parse_time(args.start) if args.start else None
    end = parse_time(args.end) if args.end else None
    progress = Progress(ctx.err, f"{symbol} {args.interval} candles")
    async with connect(ctx) as session:
        bars = await fetch_candles(
            session.gateway,
            symbol,
            Interval(args.interval),
            start=start,
            end=end,
            limit=args.limit,
            progress=progress,
        )
        ticks = {} if ctx.json else await ticks_of(session.gateway, [symbol])
    ctx.emit(bars, lambda: table(candle_columns(ticks), bars))
    return ExitCode.OK


async def instrument(ctx: Context) -> ExitCode:
    """`instrument SYMBOL`: the instrument and its trading rules."""
    symbol = check_symbol(ctx.args.symbol)
    async with connect(ctx) as session:
        found = await session.gateway.get_instrument(symbol)
    ctx.emit(found, lambda: key_values(instrument_rows(found)))
    return ExitCode.OK


async def instruments(ctx: Context) -> ExitCode:
    """`instruments [--exchange X]`: every instrument the broker lists (none for an unknown exchange)."""
    exchange = None if ctx.args.exchange is None else check_exchange(ctx.args.exchange)
    async with connect(ctx) as session:
        listed = await session.gateway.list_instruments(exchange)
    if not listed and not ctx.json:
        ctx.note(f"no instruments{'' if exchange is None else f' on exchange {exchange!r}'}")
    ctx.emit(listed, lambda: table(instrument_columns(), listed))
    return ExitCode.OK


async def wait_until_done(gateway: IBrokerGateway, order: Order, seconds: float) -> Order:
    """`order` once it is no longer open (filled, cancelled, ...), or as it stands after `seconds`."""
    deadline = time.monotonic() + seconds
    while order.status.is_open and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        order = await gateway.get_order(order.order_id)
    return order


async def order(ctx: Context) -> ExitCode:
    """`order buy|sell SYMBOL QTY [--limit PRICE]`: place one order, exactly once."""
    args = ctx.args
    tif = TimeInForce(args.tif)
    # Built before connecting: a negative quantity is refused without touching the broker.
    if args.price is None:
        request = OrderRequest.market(
            args.symbol, args.side, args.quantity, time_in_force=tif, client_order_id=args.client_order_id
        )
    else:
        request = OrderRequest.limit(
            args.symbol,
            args.side,
            args.quantity,
            args.price,
            time_in_force=tif,
            client_order_id=args.client_order_id,
        )
    async with connect(ctx) as session:
        placed = await session.gateway.place_order(request)
        if args.wait:
            placed = await wait_until_done(session.gateway, placed, args.wait)
        ticks = {} if ctx.json else await ticks_of(session.gateway, [placed.symbol])
    ctx.emit(placed, lambda: key_values(order_rows(placed, ticks)))
    return ExitCode.OK


async def cancel(ctx: Context) -> ExitCode:
    """`cancel ORDER_ID`: cancel a working order."""
    async with connect(ctx) as session:
        cancelled = await session.gateway.cancel_order(ctx.args.order_id)
    ctx.emit(cancelled, lambda: key_values(order_rows(cancelled)))
    return ExitCode.OK


async def orders(ctx: Context) -> ExitCode:
    """`orders [--open] [--symbol S]`: the account's orders."""
    symbol = check_symbol(ctx.args.symbol) if ctx.args.symbol else None
    async with connect(ctx) as session:
        found = list(await session.gateway.get_orders(open_only=ctx.args.open, symbol=symbol))
        if not found:
            _nothing(ctx, session, "orders")
        ticks = {} if ctx.json else await ticks_of(session.gateway, (o.symbol for o in found))
    ctx.emit(found, lambda: table(order_columns(ticks), found))
    return ExitCode.OK


async def positions(ctx: Context) -> ExitCode:
    """`positions`: what the account holds."""
    async with connect(ctx) as session:
        held = list(await session.gateway.get_positions())
        if not held:
            _nothing(ctx, session, "positions")
        ticks = {} if ctx.json else await ticks_of(session.gateway, (p.symbol for p in held))
    ctx.emit([position_json(p) for p in held], lambda: table(position_columns(ticks), held))
    return ExitCode.OK


async def balance(ctx: Context) -> ExitCode:
    """`balance`: the account's cash."""
    async with connect(ctx) as session:
        cash = await session.gateway.get_balance()
    ctx.emit(cash, lambda: key_values(balance_rows(cash)))
    return ExitCode.OK


async def plugins(ctx: Context) -> ExitCode:
    """`plugins`: gateways that can be created, and plugins that failed to load (with why)."""
    registry = ctx.registry
    gateways = [
        {
            "name": info.name,
            "plugin": info.plugin,
            "distribution": info.distribution,
            "version": info.version,
            "description": info.description,
            "capabilities": sorted(str(c) for c in info.capabilities),
            "embedded_backend": registry.embedded_backend(info.name) is not None,
        }
        for info in registry.gateways()
    ]
    failed = [
        {
            "plugin": getattr(error, "plugin_name", None),
            "distribution": getattr(error, "distribution", None),
            "error": str(error),
        }
        for error in registry.load_errors
    ]

    def render() -> str:
        text = table(
            [
                Column("GATEWAY", lambda g: g["name"]),
                Column("PLUGIN", lambda g: g["plugin"]),
                Column("DISTRIBUTION", lambda g: f"{g['distribution'] or '-'} {g['version'] or ''}".strip()),
                Column("EMBEDDED", lambda g: "yes" if g["embedded_backend"] else "no"),
                Column("CAPABILITIES", lambda g: ", ".join(g["capabilities"]) or "-"),
            ],
            gateways,
        )
        if failed:
            text += "\n\nFailed to load:\n" + table(
                [Column("PLUGIN", lambda f: f["plugin"] or "-"), Column("ERROR", lambda f: f["error"])],
                failed,
            )
        return text

    ctx.emit({"gateways": gateways, "failed": failed}, render)
    return ExitCode.OK


async def health(ctx: Context) -> ExitCode:
    """`health`: state, health and latency of each configured connection (or the embedded one)."""
    timeout: float = ctx.args.wait
    selected = selected_connections(ctx, every_configured=True)
    rows: list[dict[str, object]] = []
    if not selected:
        async with open_session(ctx, None) as session:
            status = await _checked(session.gateway, timeout)
            budget = _budget_of(session.gateway)
            rows.append(_health_row(session.name, session.description, status, None, budget))
    else:
        manager = BrokerConnectionManager(check_interval=1.0, check_timeout=timeout)
        descriptions: dict[str, str] = {}
        for settings in selected:
            descriptions[settings.name] = settings.gateway
            try:
                manager.add(settings.name, create_gateway(ctx, settings))
            except (BrokerError, CliError) as error:
                rows.append(_failed_row(settings.name, descriptions[settings.name], str(error)))
        async with manager:
            with contextlib.suppress(BrokerTimeoutError):
                await manager.wait_connected(timeout)
            for name in manager:
                status = await _checked(manager[name], timeout)
                known = manager.status(name)
                rows.append(_health_row(name, descriptions[name], status, known.last_error, known.budget))
        rows.sort(key=lambda row: str(row["connection"]))
    for row in rows:
        row["error"] = ctx.humane(str(row["error"])) if row["error"] else None

    def render() -> str:
        return table(
            [
                Column("CONNECTION", lambda r: r["connection"]),
                Column("GATEWAY", lambda r: r["gateway"]),
                Column("STATE", lambda r: r["state"]),
                Column("HEALTHY", lambda r: "yes" if r["healthy"] else "no"),
                Column(
                    "LATENCY", lambda r: "-" if r["latency_ms"] is None else f"{r['latency_ms']} ms", True
                ),
                Column("BUDGET", lambda r: _budget_text(r.get("budget"))),
                Column("ERROR", lambda r: r["error"] or ""),
            ],
            rows,
        )

    ctx.emit(rows, render)
    return ExitCode.OK if all(row["healthy"] for row in rows) else ExitCode.UNAVAILABLE


async def _checked(gateway: IBrokerGateway, timeout: float) -> HealthStatus | None:
    try:
        return await wait_for(gateway.health_check(), timeout)
    except asyncio.TimeoutError:
        return None


def _budget_of(gateway: IBrokerGateway) -> LimiterStats | None:
    limiter = getattr(gateway, "rate_limiter", None)
    return limiter.stats() if isinstance(limiter, ObservableLimiter) else None


def _budget_text(budget: object) -> str:
    """One cell: permits granted, callers waiting, the slowest waits, a hold after a refusal."""
    if not isinstance(budget, dict):
        return "-"
    categories = budget.get("categories") or []
    permits = sum(int(c["permits_granted"]) for c in categories)
    waiting = sum(int(c["waiters"]) for c in categories)
    p99 = max((float(c["wait_p99"]) for c in categories), default=0.0)
    text = f"{permits} permits, {waiting} waiting, wait p99 {p99 * 1000:.0f} ms"
    held = max((float(c["held_for"]) for c in categories), default=0.0)
    if held > 0:
        text += f", held {held:.1f} s after a refusal"
    if budget.get("store_reachable") is False:
        text += f", store unreachable ({budget.get('store_error')})"
    return text


def _health_row(
    name: str,
    where: str,
    checked: HealthStatus | None,
    last_error: str | None,
    budget: LimiterStats | None = None,
) -> dict[str, object]:
    if checked is None:
        return _failed_row(name, where, "the health check did not answer")
    latency = None if checked.latency is None else round(checked.latency * 1000, 1)
    error = None
    if not checked.healthy:
        # "not connected" alone says little: the manager knows why the last attempt failed.
        reasons = [reason for reason in (checked.error, last_error) if reason]
        error = "; last error: ".join(dict.fromkeys(reasons)) or "unhealthy"
    return {
        "connection": name,
        "gateway": where,
        "state": jsonable(checked.state),
        "healthy": checked.healthy,
        "latency_ms": latency,
        "error": error,
        "budget": jsonable(budget),
    }


def _failed_row(name: str, where: str, error: str) -> dict[str, object]:
    return {
        "connection": name,
        "gateway": where,
        "state": "-",
        "healthy": False,
        "latency_ms": None,
        "error": error,
    }
