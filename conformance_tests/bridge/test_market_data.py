"""BK-MD: instruments listed and looked up, unknown symbols, quotes, tick bands and price limits."""

from __future__ import annotations

import re
from decimal import Decimal

import grpc

from conformance_tests.bridge._check import Check
from conformance_tests.bridge._values import UNKNOWN_SYMBOL, value
from conformance_tests.bridge._wire import describe
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md

_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:^=-]{0,31}")
_CURRENCY = re.compile(r"[A-Z]{3}")


def _problem(instrument: md.Instrument) -> str:
    """What is wrong with a listed instrument ("" if nothing)."""
    if _SYMBOL.fullmatch(instrument.symbol) is None:
        return f"symbol {instrument.symbol[:40]!r} is not of the contract's shape"
    if not instrument.exchange:
        return "no exchange"
    if _CURRENCY.fullmatch(instrument.currency) is None:
        return f"currency {instrument.currency[:10]!r} is not an ISO 4217 code"
    for field in ("tick_size", "lot_size"):
        if not instrument.HasField(field) or value(getattr(instrument, field)) <= 0:
            return f"{field} is not positive"
    return ""


def _same(a: md.Instrument, b: md.Instrument) -> bool:
    return (a.symbol, a.name, a.exchange, a.currency, value(a.tick_size), value(a.lot_size)) == (
        b.symbol,
        b.name,
        b.exchange,
        b.currency,
        value(b.tick_size),
        value(b.lot_size),
    )


def test_bk_md1_instruments_are_listed_in_order_with_valid_fields(check: Check) -> None:
    market = check.wire.main.market
    sent = "ListInstruments()"
    listed = check.expect(
        check.call(market.ListInstruments, md.ListInstrumentsRequest()), grpc.StatusCode.OK, sent
    )
    instruments = list(listed.reply.instruments)
    if not instruments:
        check.fail(sent, "no instruments")
    symbols = [i.symbol for i in instruments]
    if symbols != sorted(symbols):
        check.fail(sent, f"symbols not in order: {symbols[:12]}")
    for instrument in instruments:
        problem = _problem(instrument)
        if problem:
            check.fail(sent, f"{describe(instrument)}: {problem}")
    exchange = instruments[0].exchange
    sent = f"ListInstruments(exchange={exchange!r})"
    filtered = check.expect(
        check.call(market.ListInstruments, md.ListInstrumentsRequest(exchange=exchange)),
        grpc.StatusCode.OK,
        sent,
    )
    expected = [i.symbol for i in instruments if i.exchange == exchange]
    got = [i.symbol for i in filtered.reply.instruments]
    if got != expected:
        check.fail(sent, f"symbols {got[:12]}", note=f"the full list has {expected[:12]} on {exchange}")


def test_bk_md2_instruments_look_up_as_listed_and_unknown_symbols_are_not_found(
    check: Check, instrument: md.Instrument
) -> None:
    market = check.wire.main.market
    listed = check.expect(
        check.call(market.ListInstruments, md.ListInstrumentsRequest()),
        grpc.StatusCode.OK,
        "ListInstruments()",
    )
    by_symbol = {i.symbol: i for i in listed.reply.instruments}
    for symbol in list(dict.fromkeys([instrument.symbol, *by_symbol]))[:2]:
        sent = f"GetInstrument(symbol={symbol!r})"
        found = check.expect(
            check.call(market.GetInstrument, md.GetInstrumentRequest(symbol=symbol)), grpc.StatusCode.OK, sent
        )
        if symbol not in by_symbol or not _same(found.reply.instrument, by_symbol[symbol]):
            check.fail(sent, found, note=f"ListInstruments has {describe(by_symbol.get(symbol))}")
    for name, method, request in (
        ("GetInstrument", market.GetInstrument, md.GetInstrumentRequest(symbol=UNKNOWN_SYMBOL)),
        ("GetQuote", market.GetQuote, md.GetQuoteRequest(symbol=UNKNOWN_SYMBOL)),
        (
            "GetCandles",
            market.GetCandles,
            md.GetCandlesRequest(symbol=UNKNOWN_SYMBOL, interval=md.INTERVAL_ONE_DAY, limit=1),
        ),
    ):
        check.expect(
            check.call(method, request), grpc.StatusCode.NOT_FOUND, f"{name} {describe(request)}", rule=1
        )


def test_bk_md3_a_quote_names_its_symbol_and_time_with_the_bid_at_or_below_the_ask(
    check: Check, instrument: md.Instrument
) -> None:
    request = md.GetQuoteRequest(symbol=instrument.symbol)
    sent = f"GetQuote(symbol={instrument.symbol!r})"
    outcome = check.expect(check.call(check.wire.main.market.GetQuote, request), grpc.StatusCode.OK, sent)
    quote = outcome.reply.quote
    if quote.symbol != instrument.symbol:
        check.fail(sent, f"a quote of {quote.symbol[:40]!r}")
    if not quote.HasField("time") or quote.time.seconds <= 0:
        check.fail(sent, outcome, note="the quote carries no time")
    if quote.HasField("bid") and quote.HasField("ask") and value(quote.bid) > value(quote.ask):
        check.fail(sent, f"bid {value(quote.bid)} above ask {value(quote.ask)}")
    for size in ("bid_size", "ask_size"):
        if quote.HasField(size) and value(getattr(quote, size)) < 0:
            check.fail(sent, f"{size} {value(getattr(quote, size))}")


def _band_problem(instrument: md.Instrument) -> str:
    """What is wrong with an instrument's tick bands ("" if nothing, or it has none)."""
    previous: tuple[Decimal, Decimal] | None = None
    for band in instrument.tick_bands:
        start, tick = value(band.price_from), value(band.tick)
        if tick <= 0:
            return f"the band from {start} has tick {tick}"
        if previous is None and start != 0:
            return f"the first band starts at {start}, not 0"
        if previous is not None and (start <= previous[0] or (start - previous[0]) % previous[1] != 0):
            return (
                f"the band from {start} does not follow the band from {previous[0]} on its tick {previous[1]}"
            )
        previous = (start, tick)
    return ""


def _on_tick(instrument: md.Instrument, price: Decimal) -> bool:
    start, tick = Decimal(0), value(instrument.tick_size)
    for band in instrument.tick_bands:
        if value(band.price_from) <= price:
            start, tick = value(band.price_from), value(band.tick)
    return tick <= 0 or (price - start) % tick == 0


def test_bk_md5_tick_bands_ascend_from_zero_and_quote_limits_come_in_pairs(
    check: Check, instrument: md.Instrument
) -> None:
    market = check.wire.main.market
    sent = "ListInstruments()"
    listed = check.expect(
        check.call(market.ListInstruments, md.ListInstrumentsRequest()), grpc.StatusCode.OK, sent
    )
    for listed_one in listed.reply.instruments:
        problem = _band_problem(listed_one)
        if problem:
            check.fail(sent, f"{describe(listed_one)}: {problem}")
    banded = next((i for i in listed.reply.instruments if i.tick_bands), None)
    chosen = {instrument.symbol: instrument, **({banded.symbol: banded} if banded is not None else {})}
    for symbol, known in chosen.items():
        sent = f"GetQuote(symbol={symbol!r})"
        quote = check.expect(
            check.call(market.GetQuote, md.GetQuoteRequest(symbol=symbol)), grpc.StatusCode.OK, sent
        ).reply.quote
        has_upper, has_lower = quote.HasField("upper_limit"), quote.HasField("lower_limit")
        if has_upper != has_lower:
            check.fail(sent, f"only the {'upper' if has_upper else 'lower'} limit", rule=1)
        if not has_upper:
            continue
        lower, upper = value(quote.lower_limit), value(quote.upper_limit)
        if not 0 < lower < upper:
            check.fail(sent, f"limits {lower} to {upper}", rule=1)
        for limit in (lower, upper):
            if not _on_tick(known, limit):
                check.fail(sent, f"the limit {limit} is off the instrument's tick", rule=1)
