"""`brokerctl demo`: the whole system in one command, against the embedded backend.

It starts the embedded bridge, builds the gateway through the registry, reads market data, places
an order and waits for its fill, shows the account, and then stages an outage: the bridge is
stopped and started again on the same address while a quote stream runs, and the demo shows the
gateway noticing, reconnecting by itself, and the same stream delivering quotes again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal

from broker_plugins._checks import check_symbol
from broker_plugins._entities import Order, OrderRequest
from broker_plugins._enums import ConnectionState, Interval
from broker_plugins._gateway import IBrokerGateway, StateChange
from broker_plugins.cli._backend import RunningBackend
from broker_plugins.cli._commands import wait_until_done
from broker_plugins.cli._context import Context
from broker_plugins.cli._exit import CliError, ExitCode, UsageError
from broker_plugins.cli._output import (
    balance_rows,
    candle_columns,
    dumps,
    instrument_rows,
    key_values,
    order_rows,
    position_columns,
    position_json,
    quote_columns,
    table,
)
from broker_plugins.cli._session import open_embedded
from broker_plugins.cli._watch import close_stream, quote_line, state_event, state_line

__all__ = ["demo"]

QUOTES_SHOWN = 3
"""Quotes shown before the outage, and needed after it to call the stream resumed."""
STEP_TIMEOUT = 15.0
"""Longest wait for any one step (a fill, a state change, quotes resuming) before the demo fails."""


class _Report:
    """Prints each step as it happens; with `--json`, collects them into one document instead."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._sections = 0
        self.data: dict[str, object] = {}
        self.ticks: dict[str, Decimal] = {}
        """Tick size by symbol, once the instrument is known: prices show in it."""

    def section(self, title: str) -> None:
        self._sections += 1
        self.text(f"\n== {self._sections}. {title} ==")

    def text(self, text: str) -> None:
        if not self._ctx.json:
            self._ctx.line(text)

    def finish(self) -> None:
        if self._ctx.json:
            self._ctx.line(dumps(self.data))


async def _until(condition: Callable[[], bool], what: str, seconds: float = STEP_TIMEOUT) -> float:
    """Wait for `condition`; returns the seconds it took, or fails the demo naming `what`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise CliError(f"demo: {what} did not happen within {seconds:g} s", ExitCode.UNAVAILABLE)
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def demo(ctx: Context) -> ExitCode:
    """Run the demo; exit 0 once every step, the reconnect included, has been seen."""
    args = ctx.args
    if ctx.flags or args.connection:
        given = [option.cli_flag for option in ctx.declared if option.name in ctx.flags]
        shown = " ".join(given or ["--connection"])
        raise UsageError(f"demo runs its own embedded backend: it takes no {shown}")
    symbol = check_symbol(args.symbol)
    request = OrderRequest.market(symbol, "buy", args.quantity)  # bad input fails before anything starts
    report = _Report(ctx)
    states: list[dict[str, object]] = []
    report.data["connection_states"] = states

    def on_change(change: StateChange) -> None:
        states.append(state_event(change))
        report.text(state_line(change))

    async with open_embedded(ctx) as backend:
        report.section("Start the embedded backend")
        report.text(f"started {backend.description}")
        report.data["backend"] = backend.description
        gateway = ctx.registry.create(backend.gateway_name, **backend.options)
        unsubscribe = gateway.add_state_listener(on_change)
        try:
            report.section("Connect through the plugin registry")
            shown = ", ".join(f"{key}={value!r}" for key, value in backend.options.items())
            report.text(f"BrokerRegistry().create({backend.gateway_name!r}, {shown}).connect()")
            async with gateway:
                await _market_data(gateway, symbol, report)
                filled = await _trade(gateway, request, report)
                await _reconnect(gateway, backend, symbol, report, args.outage)
                report.section("After the restart")
                again = await gateway.get_order(filled.order_id)
                report.data["order_after_restart"] = again
                report.text(f"order {again.order_id} is still {again.status}: the bridge kept its journal")
        finally:
            unsubscribe()
    report.section("Done")
    report.text("the embedded bridge is stopped; every step above ran through the IBrokerGateway contract")
    report.finish()
    return ExitCode.OK


async def _market_data(gateway: IBrokerGateway, symbol: str, report: _Report) -> None:
    instrument = await gateway.get_instrument(symbol)
    report.section(f"Instrument {symbol}")
    report.text(key_values(instrument_rows(instrument)))
    report.data["instrument"] = instrument
    report.ticks[symbol] = instrument.tick_size
    bars = list(await gateway.get_candles(symbol, Interval.M1, limit=5))
    report.section(f"The last {len(bars)} one-minute candles")
    report.text(table(candle_columns(report.ticks), bars))
    report.data["candles"] = bars
    quote = await gateway.get_quote(symbol)
    report.section("Quote")
    report.text(table(quote_columns(report.ticks), [quote]))
    report.data["quote"] = quote


async def _trade(gateway: IBrokerGateway, request: OrderRequest, report: _Report) -> Order:
    report.section(f"Place a market order: {request.side} {request.quantity} {request.symbol}")
    placed = await gateway.place_order(request)
    report.text(f"placed: order {placed.order_id}, client order id {placed.client_order_id}, {placed.status}")
    report.data["order"] = placed
    filled = await wait_until_done(gateway, placed, STEP_TIMEOUT)
    if filled.status.is_open:
        raise CliError(f"demo: order {filled.order_id} is still {filled.status}", ExitCode.FAILURE)
    report.text(key_values(order_rows(filled, report.ticks)))
    report.data["filled_order"] = filled
    held = list(await gateway.get_positions())
    report.section("Positions")
    report.text(table(position_columns(report.ticks), held))
    report.data["positions"] = [position_json(p) for p in held]
    cash = await gateway.get_balance()
    report.section("Balance")
    report.text(key_values(balance_rows(cash)))
    report.data["balance"] = cash
    return filled


async def _reconnect(
    gateway: IBrokerGateway, backend: RunningBackend, symbol: str, report: _Report, outage: float
) -> None:
    report.section("Reconnect: stop and restart the bridge while a quote stream runs")
    phase = "before"
    counts = {"before": 0, "during": 0, "after": 0}
    resumed_at: float | None = None

    async def consume() -> None:
        nonlocal resumed_at
        stream = gateway.stream_quotes([symbol])
        try:
            async for quote in stream:
                counts[phase] += 1
                if phase == "after" and resumed_at is None:
                    resumed_at = time.monotonic()
                if phase != "during" and counts[phase] <= QUOTES_SHOWN:
                    report.text(quote_line(quote, gateway.state.value, report.ticks.get(symbol)))
        finally:
            await close_stream(stream)

    reader = asyncio.create_task(consume(), name="brokerctl demo quotes")
    try:
        await _until(lambda: counts["before"] >= QUOTES_SHOWN, "the first quotes")
        phase = "during"
        report.text(
            "stopping the bridge: it stops listening and drops every connection, as a bridge that went "
            "away would (orders stay in its journal) ..."
        )
        await backend.stop()
        noticed = await _until(lambda: gateway.state is not ConnectionState.CONNECTED, "noticing the outage")
        await asyncio.sleep(outage)
        report.text(f"starting the bridge again on the same address after {noticed + outage:.1f} s down ...")
        phase = "after"
        restarted = time.monotonic()
        await backend.start()
        await _until(lambda: gateway.state is ConnectionState.CONNECTED, "reconnecting")
        await _until(lambda: counts["after"] >= QUOTES_SHOWN, "quotes resuming")
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    assert resumed_at is not None
    waited = resumed_at - restarted
    report.text(f"reconnected: the same stream resumed {waited:.2f} s after the bridge came back")
    report.data["reconnect"] = {
        "quotes_before": counts["before"],
        "quotes_during": counts["during"],
        "quotes_after": counts["after"],
        "resumed_after_seconds": round(waited, 3),
    }
