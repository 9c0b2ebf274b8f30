"""BK-CD: candles: pages and their tokens, ranges, limits, bad arguments. All on daily candles of the
kit's instrument, the interval every broker keeps the longest history of."""

from __future__ import annotations

import time
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from conformance_tests.bridge._check import Check
from conformance_tests.bridge._values import DAY_MS, Candle, candles_of
from conformance_tests.bridge._wire import Outcome, describe
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md

_DAY = md.INTERVAL_ONE_DAY
_MAX_PAGES = 11
_CLOCK_SKEW_MS = 60_000  # the kit's clock and the bridge's may differ by this much


def _request(symbol: str, **fields: Any) -> md.GetCandlesRequest:
    return md.GetCandlesRequest(symbol=symbol, interval=_DAY, **fields)


def _at(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def _page(check: Check, request: md.GetCandlesRequest, *, rule: int = 0) -> tuple[Any, list[Candle]]:
    """One page, its candles decoded; fails on a non-OK reply or ragged columns."""
    sent = f"GetCandles {describe(request)}"
    outcome = check.expect(
        check.call(check.wire.main.market.GetCandles, request), grpc.StatusCode.OK, sent, rule=rule
    )
    candles = candles_of(outcome.reply)
    if candles is None:
        check.fail(sent, outcome, rule=rule, note="the columns differ in length")
    return outcome.reply, candles


def _all_pages(check: Check, first: md.GetCandlesRequest, max_pages: int) -> list[Candle] | None:
    """Every candle of a paged result (None if it took more than `max_pages` pages)."""
    candles: list[Candle] = []
    request = first
    for _ in range(max_pages):
        reply, page = _page(check, request)
        candles.extend(page)
        if not reply.next_page_token:
            return candles
        request = _continue(first, reply.next_page_token)
    return None


def _continue(request: md.GetCandlesRequest, token: str, **changes: Any) -> md.GetCandlesRequest:
    following = md.GetCandlesRequest()
    following.CopyFrom(request)
    following.page_token = token
    for field, new in changes.items():
        setattr(following, field, new)
    return following


def test_bk_cd1_candle_pages_are_bounded_ascending_on_the_grid_and_completed(
    check: Check, instrument: Any
) -> None:
    first = _request(instrument.symbol, limit=30, page_size=10)
    sent = f"GetCandles {describe(first)} and its next pages"
    asked_at = int(time.time() * 1000)
    request, candles, pages = first, [], 0
    while True:
        reply, page = _page(check, request)
        pages += 1
        if len(page) > 10:
            check.fail(sent, f"a page of {len(page)} candles", rule=1, note="page_size was 10")
        if reply.symbol != instrument.symbol or reply.interval != _DAY:
            check.fail(sent, f"a page of {reply.symbol[:40]!r} at interval {reply.interval}")
        candles.extend(page)
        if not reply.next_page_token:
            break
        if pages == _MAX_PAGES:
            check.skip(f"30 candles took more than {_MAX_PAGES} pages of 10; the kit stops there")
        request = _continue(first, reply.next_page_token)
    if not candles:
        check.skip(f"no daily candles of {instrument.symbol}: nothing to check")
    _judge_series(check, sent, candles, asked_at)


def _judge_series(check: Check, sent: str, candles: list[Candle], asked_at: int) -> None:
    times = [c.open_ms for c in candles]
    if times != sorted(set(times)):
        check.fail(sent, f"open times not strictly ascending: {times[:8]}...")
    if len(candles) > 30:
        check.fail(sent, f"{len(candles)} candles", note="limit was 30")
    off_grid = [t for t in times if t % DAY_MS]
    if off_grid:
        check.fail(sent, f"open time {off_grid[0]} ms, not a multiple of a day (00:00 UTC)")
    if times[-1] + DAY_MS > asked_at + _CLOCK_SKEW_MS:
        check.fail(sent, f"a candle opening at {times[-1]} ms, not completed at {asked_at} ms")
    for candle in candles:
        if not (
            candle.low <= min(candle.open, candle.close) and max(candle.open, candle.close) <= candle.high
        ):
            check.fail(sent, f"{candle}: low <= open, close <= high does not hold")
        if candle.volume < 0:
            check.fail(sent, f"{candle}: a negative volume")


def test_bk_cd2_candle_ranges_are_half_open_and_limits_count_from_their_end(
    check: Check, instrument: Any
) -> None:
    symbol = instrument.symbol
    reference = _all_pages(check, _request(symbol, limit=30), max_pages=3)
    if reference is None or len(reference) < 21:
        check.skip(
            f"fewer than 21 daily candles of {symbol} in one page or three: not enough history to check"
        )
    if len(reference) != 30:
        check.fail(
            f"GetCandles {describe(_request(symbol, limit=30))}", f"{len(reference)} candles", note="limit 30"
        )
    times = [c.open_ms for c in reference]
    cases = (
        (_request(symbol, start_time=_at(times[5]), end_time=_at(times[15])), times[5:15]),
        (_request(symbol, start_time=_at(times[5]), limit=4), times[5:9]),
        (_request(symbol, end_time=_at(times[20]), limit=3), times[17:20]),
    )
    for request, expected in cases:
        _, page = _page(check, request)
        got = [c.open_ms for c in page]
        if got != expected:
            check.fail(f"GetCandles {describe(request)}", f"open times {got}", note=f"expected {expected}")


def test_bk_cd3_page_tokens_allow_another_page_size_and_nothing_else(check: Check, instrument: Any) -> None:
    symbol = instrument.symbol
    first = _request(symbol, limit=20, page_size=5)
    reply, page_one = _page(check, first)
    if not reply.next_page_token:
        check.skip("20 daily candles came in one page of 5 or less: no page token to check")
    token = reply.next_page_token
    _, page_two = _page(check, _continue(first, token, page_size=8), rule=2)
    if len(page_two) > 8:
        check.fail(
            f"GetCandles {describe(_continue(first, token, page_size=8))}", f"{len(page_two)} candles", rule=2
        )
    _, reference = _page(check, _request(symbol, limit=20))
    joined = [c.open_ms for c in page_one + page_two]
    expected = [c.open_ms for c in reference][: len(joined)]
    if joined != expected:
        check.fail(
            f"GetCandles {describe(first)}, then its token with page_size=8",
            f"open times {joined}",
            note=f"one page of limit 20 has {expected}",
        )
    for changed in (
        _continue(first, token, interval=md.INTERVAL_ONE_HOUR),
        _continue(first, token, limit=21),
    ):
        outcome = check.call(check.wire.main.market.GetCandles, changed)
        check.expect(outcome, grpc.StatusCode.INVALID_ARGUMENT, f"GetCandles {describe(changed)}", rule=1)
    forged = _continue(first, "bk-kit-not-a-page-token")
    check.expect(
        check.call(check.wire.main.market.GetCandles, forged),
        grpc.StatusCode.INVALID_ARGUMENT,
        f"GetCandles {describe(forged)}",
        rule=1,
    )
    huge = _request(symbol, limit=3, page_size=4_294_967_295)
    _, page = _page(check, huge, rule=2)
    if len(page) != 3:
        check.fail(f"GetCandles {describe(huge)}", f"{len(page)} candles", rule=2)


def test_bk_cd4_bad_candle_arguments_are_invalid_arguments(check: Check, instrument: Any) -> None:
    symbol = instrument.symbol
    day = 19_000 * DAY_MS
    cases: tuple[tuple[md.GetCandlesRequest, int], ...] = (
        (_request(symbol, limit=0), 0),
        (_request(symbol, limit=1_000_001), 0),
        (md.GetCandlesRequest(symbol=symbol, limit=1), 1),
        (_request(symbol, start_time=_at(day + DAY_MS), end_time=_at(day)), 2),
    )
    for request, rule in cases:
        outcome: Outcome = check.call(check.wire.main.market.GetCandles, request)
        check.expect(outcome, grpc.StatusCode.INVALID_ARGUMENT, f"GetCandles {describe(request)}", rule=rule)
