"""MarketDataService end to end over a real loopback channel."""

from __future__ import annotations

import base64
import itertools
import struct
from collections.abc import Callable

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from grpc_plugin.bridge import MAX_PAGE_SIZE, BridgeServer
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from tests.bridge.conftest import CALL_TIMEOUT, Client, StartBridge, next_message, rpc_error, undec

MINUTE_MS = 60_000
# A fixed, long-past range, so that results do not depend on when the test runs.
START_MS = 1_600_000_000_000 // MINUTE_MS * MINUTE_MS


def _ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=ms % 1000 * 1_000_000)


def _request(
    *,
    symbol: str = "005930",
    interval: md.Interval.ValueType = md.INTERVAL_ONE_MINUTE,
    start_time: Timestamp | None = None,
    end_time: Timestamp | None = None,
    limit: int | None = None,
    page_size: int = 0,
    page_token: str = "",
) -> md.GetCandlesRequest:
    """A GetCandles request; a field left at None or its zero value is not sent."""
    return md.GetCandlesRequest(
        symbol=symbol,
        interval=interval,
        start_time=start_time,
        end_time=end_time,
        limit=limit,
        page_size=page_size,
        page_token=page_token,
    )


def _rows(page: md.GetCandlesResponse) -> list[tuple[int, int, int, int, int, int]]:
    return list(
        zip(page.open_time_unix_ms, page.open, page.high, page.low, page.close, page.volume, strict=True)
    )


async def _all_pages(client: Client, request: md.GetCandlesRequest) -> tuple[list[tuple[int, ...]], int]:
    rows: list[tuple[int, ...]] = []
    pages = 0
    while True:
        page = await client.market.GetCandles(request, timeout=CALL_TIMEOUT)
        pages += 1
        rows.extend(_rows(page))
        if not page.next_page_token:
            return rows, pages
        request.page_token = page.next_page_token


async def test_candles_are_consistent_and_on_the_tick(client: Client) -> None:
    page = await client.market.GetCandles(_request(start_time=_ts(START_MS), limit=500), timeout=CALL_TIMEOUT)
    assert page.symbol == "005930"
    assert page.interval == md.INTERVAL_ONE_MINUTE
    assert page.price_exponent == 0
    assert page.next_page_token == ""
    rows = _rows(page)
    assert len(rows) == 500
    assert [row[0] for row in rows] == list(range(START_MS, START_MS + 500 * MINUTE_MS, MINUTE_MS))
    for _, open_, high, low, close, volume in rows:
        assert low <= min(open_, close) <= max(open_, close) <= high
        assert all(price % 100 == 0 for price in (open_, high, low, close))  # 005930 ticks in 100 won
        assert low > 0
        assert volume > 0
    # A close is the next candle's open: the path is continuous.
    assert all(rows[i][4] == rows[i + 1][1] for i in range(len(rows) - 1))


async def test_the_same_request_gives_the_same_candles_whatever_the_paging(
    client: Client, start_bridge: StartBridge, connect: Callable[..., Client]
) -> None:
    whole, pages = await _all_pages(client, _request(start_time=_ts(START_MS), limit=3_000))
    assert pages == 1
    paged, pages = await _all_pages(client, _request(start_time=_ts(START_MS), limit=3_000, page_size=700))
    assert pages == 5
    assert paged == whole
    # Another bridge with the same seed serves the same candles; another seed does not.
    same_seed = connect((await start_bridge(budget=(), seed=0)).address)
    other_seed = connect((await start_bridge(budget=(), seed=7)).address)
    assert (await _all_pages(same_seed, _request(start_time=_ts(START_MS), limit=3_000)))[0] == whole
    assert (await _all_pages(other_seed, _request(start_time=_ts(START_MS), limit=3_000)))[0] != whole


async def test_paging_over_100000_candles_is_gap_free(client: Client) -> None:
    request = _request(symbol="AAPL", start_time=_ts(START_MS), limit=100_000)
    rows, pages = await _all_pages(client, request)
    assert pages == -(-100_000 // MAX_PAGE_SIZE)
    times = [row[0] for row in rows]
    assert times == list(range(START_MS, START_MS + 100_000 * MINUTE_MS, MINUTE_MS))


async def test_every_interval_is_served(client: Client) -> None:
    lengths = {
        md.INTERVAL_ONE_MINUTE: 60_000,
        md.INTERVAL_FIVE_MINUTES: 300_000,
        md.INTERVAL_FIFTEEN_MINUTES: 900_000,
        md.INTERVAL_ONE_HOUR: 3_600_000,
        md.INTERVAL_ONE_DAY: 86_400_000,
    }
    for interval, length in lengths.items():
        page = await client.market.GetCandles(
            _request(symbol="MSFT", interval=interval, limit=10), timeout=CALL_TIMEOUT
        )
        times = list(page.open_time_unix_ms)
        assert len(times) == 10
        assert all(t % length == 0 for t in times)
        assert all(b - a == length for a, b in itertools.pairwise(times))
        assert page.price_exponent == -2


async def test_candles_without_start_end_at_now_and_count_back(client: Client, bridge: BridgeServer) -> None:
    page = await client.market.GetCandles(_request(), timeout=CALL_TIMEOUT)
    assert len(page.open_time_unix_ms) == 1_000  # the default count
    # Only completed candles: the last one closed before now.
    assert page.open_time_unix_ms[-1] + MINUTE_MS <= bridge.market.now_ms()
    page = await client.market.GetCandles(_request(end_time=_ts(START_MS), limit=10), timeout=CALL_TIMEOUT)
    assert list(page.open_time_unix_ms) == list(range(START_MS - 10 * MINUTE_MS, START_MS, MINUTE_MS))


async def test_a_range_before_the_history_or_empty_gives_no_candles(client: Client) -> None:
    page = await client.market.GetCandles(
        _request(start_time=_ts(0), end_time=_ts(10 * MINUTE_MS)), timeout=CALL_TIMEOUT
    )
    assert len(page.open_time_unix_ms) == 0
    page = await client.market.GetCandles(
        _request(start_time=_ts(START_MS), end_time=_ts(START_MS)), timeout=CALL_TIMEOUT
    )
    assert len(page.open_time_unix_ms) == 0
    assert page.next_page_token == ""


async def test_page_size_above_the_maximum_is_lowered(client: Client) -> None:
    page = await client.market.GetCandles(
        _request(start_time=_ts(START_MS), limit=60_000, page_size=1_000_000), timeout=CALL_TIMEOUT
    )
    assert len(page.open_time_unix_ms) == MAX_PAGE_SIZE
    assert page.next_page_token


async def test_bad_candle_requests_are_invalid_arguments(client: Client) -> None:
    cases = {
        "symbol is required": _request(symbol=""),
        "malformed": _request(symbol="no spaces allowed"),
        "interval is required": _request(interval=md.INTERVAL_UNSPECIFIED),
        "interval has unknown value 42": _request(interval=md.Interval.ValueType(42)),
        "limit must be between 1 and 1,000,000, got 1,000,000,000": _request(limit=1_000_000_000),
        "limit must be between": _request(limit=0),
        "end_time is before start_time": _request(start_time=_ts(START_MS), end_time=_ts(START_MS - 1)),
        "page_token is malformed": _request(page_token="not-a-token!"),
        "start_time.nanos": _request(start_time=Timestamp(seconds=1, nanos=-5)),
    }
    for message, request in cases.items():
        error = await rpc_error(client.market.GetCandles(request, timeout=CALL_TIMEOUT))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert message in (error.details() or ""), (message, error.details())


async def test_page_tokens_are_bound_to_their_request(client: Client) -> None:
    first = await client.market.GetCandles(
        _request(start_time=_ts(START_MS), limit=100, page_size=10), timeout=CALL_TIMEOUT
    )
    token = first.next_page_token
    other = _request(symbol="000660", start_time=_ts(START_MS), limit=100, page_token=token)
    error = await rpc_error(client.market.GetCandles(other, timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "different request" in (error.details() or "")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    version, fingerprint, next_index, stop = struct.unpack(">BIqq", raw)
    for fields in (
        (version + 1, fingerprint, next_index, stop),  # a version this bridge does not know
        (version, fingerprint, next_index, 10**15),  # a stop in the future
        (version, fingerprint, stop, next_index),  # a range running backwards
    ):
        forged = base64.urlsafe_b64encode(struct.pack(">BIqq", *fields)).decode().rstrip("=")
        request = _request(start_time=_ts(START_MS), limit=100, page_token=forged)
        error = await rpc_error(client.market.GetCandles(request, timeout=CALL_TIMEOUT))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token is malformed" in (error.details() or "")


async def test_unknown_symbols_are_not_found(client: Client) -> None:
    for call in (
        client.market.GetCandles(_request(symbol="ZZZZ"), timeout=CALL_TIMEOUT),
        client.market.GetQuote(md.GetQuoteRequest(symbol="ZZZZ"), timeout=CALL_TIMEOUT),
        client.market.GetInstrument(md.GetInstrumentRequest(symbol="ZZZZ"), timeout=CALL_TIMEOUT),
    ):
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "unknown symbol 'ZZZZ'" in (error.details() or "")


async def test_quotes_are_two_sided_and_on_the_tick(client: Client) -> None:
    reply = await client.market.GetQuote(md.GetQuoteRequest(symbol="NVDA"), timeout=CALL_TIMEOUT)
    quote = reply.quote
    assert quote.symbol == "NVDA"
    bid, ask, last = undec(quote.bid), undec(quote.ask), undec(quote.last)
    assert 0 < bid < ask
    assert last in (bid, ask)
    assert undec(quote.bid_size) > 0
    assert undec(quote.ask_size) > 0
    assert quote.bid.exponent == quote.ask.exponent == -2  # cents: NVDA's price exponent
    assert quote.time.seconds > 1_700_000_000
    error = await rpc_error(client.market.GetQuote(md.GetQuoteRequest(symbol=""), timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_instruments(client: Client) -> None:
    listing = await client.market.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT)
    symbols = [i.symbol for i in listing.instruments]
    assert len(symbols) == 12
    assert symbols == sorted(symbols)
    assert {"005930", "000660", "035420", "005380", "051910", "035720", "AAPL", "NVDA"} <= set(symbols)
    krx = await client.market.ListInstruments(md.ListInstrumentsRequest(exchange="KRX"), timeout=CALL_TIMEOUT)
    assert {i.currency for i in krx.instruments} == {"KRW"}
    assert len(krx.instruments) == 6
    samsung = (
        await client.market.GetInstrument(md.GetInstrumentRequest(symbol="005930"), timeout=CALL_TIMEOUT)
    ).instrument
    assert (samsung.name, samsung.exchange, samsung.currency) == ("Samsung Electronics", "KRX", "KRW")
    assert undec(samsung.tick_size) == 100
    assert undec(samsung.lot_size) == 1
    apple = (
        await client.market.GetInstrument(md.GetInstrumentRequest(symbol="AAPL"), timeout=CALL_TIMEOUT)
    ).instrument
    assert str(undec(apple.tick_size)) == "0.01"


async def test_the_quote_stream_sends_batches_of_the_requested_symbols(client: Client) -> None:
    stream = client.market.StreamQuotes(md.StreamQuotesRequest(symbols=["AAPL", "005930", "AAPL"]))
    seen: list[md.Quote] = []
    try:
        while len(seen) < 20:
            batch = await next_message(stream.read(), md.StreamQuotesResponse)
            assert len(batch.quotes) >= 1
            seen.extend(batch.quotes)
    finally:
        stream.cancel()
    assert {q.symbol for q in seen} == {"AAPL", "005930"}
    times = [(q.time.seconds, q.time.nanos) for q in seen if q.symbol == "AAPL"]
    assert times == sorted(times)


async def test_bad_quote_streams_fail_with_a_status(client: Client) -> None:
    cases = [
        (md.StreamQuotesRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (md.StreamQuotesRequest(symbols=["AAPL", "NOPE"]), grpc.StatusCode.NOT_FOUND),
        (md.StreamQuotesRequest(symbols=[""]), grpc.StatusCode.INVALID_ARGUMENT),
        (md.StreamQuotesRequest(symbols=[f"S{i}" for i in range(101)]), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for request, code in cases:
        stream = client.market.StreamQuotes(request)
        error = await rpc_error(stream.read())
        assert error.code() == code, request
