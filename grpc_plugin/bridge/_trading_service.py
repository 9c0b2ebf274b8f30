"""TradingService: translates trading requests to the paper broker and back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from grpc_plugin.bridge import _parse
from grpc_plugin.bridge._broker import PaperBroker
from grpc_plugin.bridge._convert import (
    balance_message,
    order_message,
    position_message,
    update_message,
)
from grpc_plugin.bridge._errors import InvalidArgumentError
from grpc_plugin.bridge._faults import Faults
from grpc_plugin.bridge._gate import CallGate, Context
from grpc_plugin.bridge._market import Market
from grpc_plugin.bridge._placement import PlacementLocks
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2_grpc as tr_grpc

__all__ = ["TradingServicer"]

_REPLAY_BATCH = 1_000  # updates per message while replaying, to keep messages small


class TradingServicer(tr_grpc.TradingServiceServicer):
    """The TradingService of the reference bridge; the account is the caller's principal."""

    def __init__(self, market: Market, broker: PaperBroker, gate: CallGate, faults: Faults) -> None:
        self._market = market
        self._broker = broker
        self._gate = gate
        self._faults = faults
        self._placements = PlacementLocks()

    async def PlaceOrder(self, request: tr.PlaceOrderRequest, context: Context) -> tr.PlaceOrderResponse:
        """Place an order once per client_order_id; attempts with one id take turns."""
        async with self._gate.unary("PlaceOrder", request, context) as account:
            new = _parse.new_order(request)
            async with self._placements.hold(account, new.client_order_id):
                if self._faults.placement_delay and self._broker.placed(account, new.client_order_id) is None:
                    await asyncio.sleep(self._faults.placement_delay)
                order, duplicate = self._broker.place(account, new)
            return tr.PlaceOrderResponse(order=order_message(order), duplicate=duplicate)

    async def CancelOrder(self, request: tr.CancelOrderRequest, context: Context) -> tr.CancelOrderResponse:
        """Cancel a working order."""
        async with self._gate.unary("CancelOrder", request, context) as account:
            order = self._broker.cancel(account, _parse.order_id(request.order_id))
            return tr.CancelOrderResponse(order=order_message(order))

    async def ModifyOrder(self, request: tr.ModifyOrderRequest, context: Context) -> tr.ModifyOrderResponse:
        """Change quantity or limit price of a working order."""
        async with self._gate.unary("ModifyOrder", request, context) as account:
            order_id = _parse.order_id(request.order_id)
            has_quantity, has_price = request.HasField("quantity"), request.HasField("limit_price")
            if not (has_quantity or has_price):
                raise InvalidArgumentError("set quantity, limit_price or both")
            order = self._broker.modify(
                account,
                order_id,
                quantity=_parse.decimal(request.quantity, "quantity") if has_quantity else None,
                limit_price=_parse.decimal(request.limit_price, "limit_price") if has_price else None,
            )
            return tr.ModifyOrderResponse(order=order_message(order))

    async def GetOrder(self, request: tr.GetOrderRequest, context: Context) -> tr.GetOrderResponse:
        """One order by order_id or client_order_id."""
        async with self._gate.unary("GetOrder", request, context) as account:
            which = request.WhichOneof("order_ref")
            if which == "order_id":
                order = self._broker.get_order(account, order_id=_parse.order_id(request.order_id))
            elif which == "client_order_id":
                client_id = _parse.client_order_id(request.client_order_id)
                order = self._broker.get_order(account, client_order_id=client_id)
            else:
                raise InvalidArgumentError("set order_id or client_order_id")
            return tr.GetOrderResponse(order=order_message(order))

    async def ListOrders(self, request: tr.ListOrdersRequest, context: Context) -> tr.ListOrdersResponse:
        """The account's orders, filtered."""
        async with self._gate.unary("ListOrders", request, context) as account:
            since = (
                _parse.timestamp_ns(request.updated_since, "updated_since")
                if request.HasField("updated_since")
                else None
            )
            orders = self._broker.list_orders(
                account,
                open_only=request.open_only,
                symbol=_parse.symbol(request.symbol) if request.symbol else "",
                updated_since_ns=since,
            )
            return tr.ListOrdersResponse(orders=[order_message(o) for o in orders])

    async def StreamOrderUpdates(
        self, request: tr.StreamOrderUpdatesRequest, context: Context
    ) -> AsyncIterator[tr.StreamOrderUpdatesResponse]:
        """Retained updates after after_sequence, then live ones."""
        async with self._gate.stream("StreamOrderUpdates", request, context) as account:
            log = self._broker.updates
            after = log.last_sequence(account) if request.from_latest else request.after_sequence
            replay, subscription = log.subscribe(account, after)
            latest = log.last_sequence(account)
            try:
                await self._faults.wait_flowing()
                if not replay:
                    # Sent at once: the client learns its subscription is live, and from where.
                    yield tr.StreamOrderUpdatesResponse(latest_sequence=latest)
                for start in range(0, len(replay), _REPLAY_BATCH):
                    await self._faults.wait_flowing()
                    chunk = replay[start : start + _REPLAY_BATCH]
                    yield tr.StreamOrderUpdatesResponse(
                        updates=[update_message(u) for u in chunk], latest_sequence=latest
                    )
                while True:
                    batch = await subscription.next_batch()
                    if self._faults.streams_stalled:
                        await self._faults.wait_flowing()
                        batch.extend(subscription.drain())
                    if batch:
                        yield tr.StreamOrderUpdatesResponse(
                            updates=[update_message(u) for u in batch], latest_sequence=batch[-1].sequence
                        )
            finally:
                self._broker.updates.unsubscribe(subscription)

    async def GetPositions(
        self, request: tr.GetPositionsRequest, context: Context
    ) -> tr.GetPositionsResponse:
        """Non-zero holdings."""
        async with self._gate.unary("GetPositions", request, context) as account:
            positions = []
            for symbol, holding in self._broker.positions(account):
                spec = self._market.instrument(symbol)
                last = spec.price(self._market.quote(symbol).last)
                positions.append(position_message(spec, holding, last))
            return tr.GetPositionsResponse(positions=positions)

    async def GetBalance(self, request: tr.GetBalanceRequest, context: Context) -> tr.GetBalanceResponse:
        """Cash by currency."""
        async with self._gate.unary("GetBalance", request, context) as account:
            currency = _parse.currency(request.currency) if request.currency else ""
            balances = self._broker.balances(account, currency)
            return tr.GetBalanceResponse(balances=[balance_message(b) for b in balances])
