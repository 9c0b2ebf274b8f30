"""MarketDataService: translates market-data requests to the simulated market and back."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from datetime import datetime, timezone

from grpc_plugin.bridge import _parse
from grpc_plugin.bridge._calendars import calendar_response
from grpc_plugin.bridge._convert import INTERVALS, instrument_message, quote_message
from grpc_plugin.bridge._errors import InvalidArgumentError, NotFoundError
from grpc_plugin.bridge._faults import Faults
from grpc_plugin.bridge._feed import QuoteFeed
from grpc_plugin.bridge._gate import CallGate, Context
from grpc_plugin.bridge._market import Market
from grpc_plugin.bridge._paging import MAX_PAGE_SIZE, CandleRange, resolve_page
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2_grpc as md_grpc

__all__ = ["MarketDataServicer"]

_MAX_STREAM_SYMBOLS = 100
_NAMED_UNKNOWN = 5  # an error names this many unknown symbols, so that its size stays small


class MarketDataServicer(md_grpc.MarketDataServiceServicer):
    """The MarketDataService of the reference bridge."""

    def __init__(self, market: Market, feed: QuoteFeed, gate: CallGate, faults: Faults) -> None:
        self._market = market
        self._feed = feed
        self._gate = gate
        self._faults = faults
        self.page_size = MAX_PAGE_SIZE
        """Candles per page when a request leaves `page_size` unset (a bridge may choose its own)."""

    async def GetCandles(self, request: md.GetCandlesRequest, context: Context) -> md.GetCandlesResponse:
        """One page of candles."""
        async with self._gate.unary("GetCandles", request, context):
            symbol = _parse.symbol(request.symbol)
            interval = _parse.enum_value(request.interval, _parse.INTERVAL_BY_NUMBER, "interval")
            spec = self._market.instrument(symbol)
            query = CandleRange(
                interval=interval,
                start_ns=_parse.timestamp_ns(request.start_time, "start_time")
                if request.HasField("start_time")
                else None,
                end_ns=_parse.timestamp_ns(request.end_time, "end_time")
                if request.HasField("end_time")
                else None,
                limit=request.limit if request.HasField("limit") else None,
                page_size=request.page_size or self.page_size,
                page_token=request.page_token,
                fingerprint=self.page_fingerprint(request),
            )
            page = resolve_page(query, self._market.now_ms())
            columns = self._market.candles(symbol, interval, page.first, page.stop)
            response = md.GetCandlesResponse(
                symbol=symbol,
                interval=INTERVALS[interval],
                price_exponent=spec.price_exponent,
                volume_exponent=0,
                next_page_token=page.next_page_token,
            )
            response.open_time_unix_ms.extend(
                range(page.first * interval.ms, page.stop * interval.ms, interval.ms)
            )
            response.open.extend(columns.open)
            response.high.extend(columns.high)
            response.low.extend(columns.low)
            response.close.extend(columns.close)
            response.volume.extend(columns.volume)
        return response

    async def GetQuote(self, request: md.GetQuoteRequest, context: Context) -> md.GetQuoteResponse:
        """The latest quote."""
        async with self._gate.unary("GetQuote", request, context):
            spec = self._market.instrument(_parse.symbol(request.symbol))
            quote = self._market.quote(spec.symbol)
            return md.GetQuoteResponse(quote=quote_message(quote, spec.price_exponent))

    async def GetInstrument(
        self, request: md.GetInstrumentRequest, context: Context
    ) -> md.GetInstrumentResponse:
        """One instrument."""
        async with self._gate.unary("GetInstrument", request, context):
            spec = self._market.instrument(_parse.symbol(request.symbol))
            return md.GetInstrumentResponse(instrument=instrument_message(spec))

    async def ListInstruments(
        self, request: md.ListInstrumentsRequest, context: Context
    ) -> md.ListInstrumentsResponse:
        """Every instrument, optionally of one exchange."""
        async with self._gate.unary("ListInstruments", request, context):
            specs = [
                s for s in self._market.instruments if not request.exchange or s.exchange == request.exchange
            ]
            return md.ListInstrumentsResponse(instruments=[instrument_message(s) for s in specs])

    async def GetMarketCalendar(
        self, request: calendar_pb2.GetMarketCalendarRequest, context: Context
    ) -> calendar_pb2.GetMarketCalendarResponse:
        """Sessions and holidays of one exchange."""
        async with self._gate.unary("GetMarketCalendar", request, context):
            today = datetime.fromtimestamp(self._market.now_ms() / 1000, timezone.utc).date()
            return calendar_response(request, today)

    async def StreamQuotes(
        self, request: md.StreamQuotesRequest, context: Context
    ) -> AsyncIterator[md.StreamQuotesResponse]:
        """Batches of quotes until the client cancels."""
        async with self._gate.stream("StreamQuotes", request, context):
            symbols = self._symbols(request)
            exponents = {s: self._market.instrument(s).price_exponent for s in symbols}
            subscription = self._feed.subscribe(symbols)
            try:
                while True:
                    batch = await subscription.next_batch()
                    if self._faults.streams_stalled:
                        await self._faults.wait_flowing()
                        batch.extend(subscription.drain())  # what piled up meanwhile goes out now
                    if batch:
                        yield md.StreamQuotesResponse(
                            quotes=[quote_message(q, exponents[q.symbol]) for q in batch]
                        )
            finally:
                self._feed.unsubscribe(subscription)

    def page_fingerprint(self, request: md.GetCandlesRequest) -> int:
        """What ties a page token to its request: a checksum of every field but the paging ones."""
        return _fingerprint(request)

    def _symbols(self, request: md.StreamQuotesRequest) -> list[str]:
        if not request.symbols:
            raise InvalidArgumentError("symbols must name at least one instrument")
        if len(request.symbols) > _MAX_STREAM_SYMBOLS:
            raise InvalidArgumentError(f"at most {_MAX_STREAM_SYMBOLS} symbols per stream")
        symbols = sorted({_parse.symbol(s, "symbols") for s in request.symbols})
        unknown = [s for s in symbols if not self._market.has(s)]
        if unknown:
            more = f" and {len(unknown) - _NAMED_UNKNOWN} more" if len(unknown) > _NAMED_UNKNOWN else ""
            raise NotFoundError(f"unknown symbols: {', '.join(unknown[:_NAMED_UNKNOWN])}{more}")
        return symbols


def _fingerprint(request: md.GetCandlesRequest) -> int:
    """A checksum of the request without its paging fields, to tie a page token to its request."""
    copy = md.GetCandlesRequest()
    copy.CopyFrom(request)
    copy.ClearField("page_size")
    copy.ClearField("page_token")
    return zlib.crc32(copy.SerializeToString(deterministic=True))
