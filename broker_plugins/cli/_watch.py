"""`brokerctl watch SYMBOL...`: live quotes, with the connection state beside every line.

A state change is printed the moment it happens, between quotes, so a reconnect is visible: the
stream goes quiet, `reconnecting` shows, then `connected`, then the quotes resume by themselves
(the gateway reopens the stream; the caller's loop never sees the break).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from broker_plugins._aio import wait_for
from broker_plugins._checks import check_symbol
from broker_plugins._entities import Quote
from broker_plugins._gateway import IBrokerGateway, StateChange
from broker_plugins.cli._commands import connect, ticks_of
from broker_plugins.cli._context import Context
from broker_plugins.cli._exit import ExitCode
from broker_plugins.cli._output import Ticks, jsonable, number, timestamp

__all__ = ["close_stream", "quote_event", "quote_line", "state_event", "state_line", "stream_quotes", "watch"]


def quote_event(quote: Quote, state: str) -> dict[str, object]:
    """A quote as a JSON line, with the connection state it arrived in and when it arrived."""
    data = jsonable(quote)
    assert isinstance(data, dict)
    return {"type": "quote", **data, "received": jsonable(_now()), "connection": state}


def quote_line(quote: Quote, state: str, tick: Decimal | None = None) -> str:
    """A quote as one readable line, stamped with when it arrived here.

    The arrival time, not the broker's quote time: lines then run in time order with the state
    changes printed between them (a quote stamped before a reconnect can arrive after it).
    """
    return (
        f"{timestamp(_now(), precise=True)}  {quote.symbol:<8} "
        f"bid {number(quote.bid, tick):>12} x {number(quote.bid_size):<7} "
        f"ask {number(quote.ask, tick):>12} x {number(quote.ask_size):<7} "
        f"last {number(quote.last, tick):>12}  [{state}]"
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


def state_event(change: StateChange) -> dict[str, object]:
    """A connection state change as a JSON line."""
    return {
        "type": "state",
        "time": jsonable(change.time),
        "previous": change.previous.value,
        "state": change.current.value,
        "reason": None if change.reason is None else str(change.reason),
    }


def state_line(change: StateChange) -> str:
    """A connection state change as one readable line."""
    reason = f" ({change.reason})" if change.reason is not None else ""
    return f"{timestamp(change.time, precise=True)}  -- connection {change.current}{reason}"


async def close_stream(stream: AsyncIterator[Any]) -> None:
    """End a gateway stream now, rather than whenever its generator is collected."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def stream_quotes(
    ctx: Context,
    gateway: IBrokerGateway,
    symbols: list[str],
    count: int | None,
    duration: float | None,
    *,
    ticks: Ticks | None = None,
) -> int:
    """Print quotes and state changes until `count` quotes or `duration` seconds; returns the count."""
    received = 0
    tick = (ticks or {}).get

    def on_change(change: StateChange) -> None:
        ctx.emit_line(state_event(change), lambda: state_line(change))

    async def consume() -> None:
        nonlocal received
        stream = gateway.stream_quotes(symbols)
        try:
            async for quote in stream:
                state = gateway.state.value
                render = functools.partial(quote_line, quote, state, tick(quote.symbol))
                ctx.emit_line(quote_event(quote, state), render)
                received += 1
                if count is not None and received >= count:
                    return
        finally:
            await close_stream(stream)

    unsubscribe = gateway.add_state_listener(on_change)
    try:
        if duration is None:
            await consume()
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await wait_for(consume(), duration)
    finally:
        unsubscribe()
    return received


async def watch(ctx: Context) -> ExitCode:
    """`watch SYMBOL... [--count N] [--duration S]`: live quotes until stopped (Ctrl-C)."""
    args = ctx.args
    symbols = [check_symbol(symbol) for symbol in args.symbols]
    async with connect(ctx) as session:
        ctx.note(f"watching {', '.join(symbols)} on {session.description}; Ctrl-C stops")
        ticks = {} if ctx.json else await ticks_of(session.gateway, symbols)
        await stream_quotes(ctx, session.gateway, symbols, args.count, args.duration, ticks=ticks)
    return ExitCode.OK
