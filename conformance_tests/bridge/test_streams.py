"""BK-QS: the quote stream: what it sends, in what order, and until when; what it refuses."""

from __future__ import annotations

import time

import grpc

from conformance_tests.bridge._check import Check
from conformance_tests.bridge._values import UNKNOWN_SYMBOL
from conformance_tests.bridge._wire import Outcome
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md

FIRST_QUOTE_WAIT = 10.0  # a quiet instrument may take a while to tick
WATCH = 1.0  # seconds the stream is read after its first message
_REFUSAL_WAIT = 10.0


def test_bk_qs1_the_quote_stream_sends_the_requested_symbol_oldest_first_until_cancelled(
    check: Check, instrument: md.Instrument
) -> None:
    symbol = instrument.symbol
    request = md.StreamQuotesRequest(symbols=[symbol])
    sent = f"StreamQuotes(symbols=[{symbol!r}])"
    last_time = (0, 0)
    batches = 0
    with check.stream(check.wire.main.market.StreamQuotes, request) as stream:
        first = stream.next(FIRST_QUOTE_WAIT)
        if first is None:
            check.skip(
                f"no quote of {symbol} within {FIRST_QUOTE_WAIT:g} s (a closed market?): nothing to judge"
            )
        until = time.monotonic() + WATCH
        message = first
        while message is not None:
            if isinstance(message, Outcome):
                check.fail(sent, message, note=f"the stream ended by itself after {batches} batches")
            batches += 1
            for quote in message.quotes:
                if quote.symbol != symbol:
                    check.fail(sent, f"a quote of {quote.symbol[:40]!r}")
                stamp = (quote.time.seconds, quote.time.nanos)
                if stamp < last_time:
                    check.fail(sent, f"a quote of {stamp} after one of {last_time}", note="not oldest first")
                last_time = stamp
            left = until - time.monotonic()
            message = stream.next(left) if left > 0 else None


def test_bk_qs2_a_quote_stream_of_no_symbols_or_an_unknown_one_is_refused(
    check: Check, instrument: md.Instrument
) -> None:
    for request, code, rule in (
        (md.StreamQuotesRequest(), grpc.StatusCode.INVALID_ARGUMENT, 0),
        (md.StreamQuotesRequest(symbols=[instrument.symbol, UNKNOWN_SYMBOL]), grpc.StatusCode.NOT_FOUND, 1),
    ):
        sent = f"StreamQuotes(symbols={list(request.symbols)})"
        with check.stream(check.wire.main.market.StreamQuotes, request) as stream:
            first = stream.next(_REFUSAL_WAIT)
        if not isinstance(first, Outcome):
            check.fail(
                sent, "messages" if first is not None else f"silence for {_REFUSAL_WAIT:g} s", rule=rule
            )
        check.expect(first, code, sent, rule=rule)
