"""Placing an order exactly once over a connection that can fail at any moment.

PlaceOrder is never retried blindly, and one gateway never has two attempts for one
`client_order_id` in flight: placements of one id take turns. A failure that proves the order was
not taken (the bridge refused it: bad input, auth, budget) is reported as is. A failure that leaves
it open whether the bridge got the request is resolved by asking the bridge for the order under its
`client_order_id`: found, it is returned. Confirmed absent after the connection failed, the request
is sent again under the same id (the contract has the bridge de-duplicate and serialise by id).
After a deadline the first attempt may still be under way at the bridge, so nothing is sent again:
if the order does not appear within one more trading timeout, `OrderOutcomeUnknownError` carrying
the id is raised.
"""

from __future__ import annotations

import asyncio
import weakref

from broker_plugins import (
    BrokerError,
    BrokerTimeoutError,
    BrokerUnavailableError,
    InvalidRequestError,
    NotFoundError,
    Order,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    OrderRequest,
    OrderStatus,
)
from grpc_plugin._calls import Calls
from grpc_plugin._config import GatewayConfig
from grpc_plugin._mapping import order_from, order_request_to
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2

__all__ = ["OrderDesk"]

# Errors after which the request may or may not have reached the bridge.
_AMBIGUOUS = (BrokerUnavailableError, BrokerTimeoutError)
# Sends under one client_order_id before giving up: each was confirmed absent, yet none got through.
_MAX_SENDS = 3


class OrderDesk:
    """Places the orders of one gateway, one attempt per `client_order_id` at a time."""

    def __init__(self, calls: Calls, config: GatewayConfig) -> None:
        self._calls = calls
        self._config = config
        self._turns: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def place(self, request: OrderRequest) -> Order:
        """Place `request` once; see the module docstring for what happens when the connection fails."""
        turn = self._turns.get(request.client_order_id)
        if turn is None:
            turn = self._turns[request.client_order_id] = asyncio.Lock()
        async with turn:
            return await self._place(request)

    async def _place(self, request: OrderRequest) -> Order:
        loop = asyncio.get_running_loop()
        trading_timeout = self._config.timeouts["trading"]
        deadline = loop.time() + trading_timeout
        message = order_request_to(request)
        sent = 0
        while True:
            # A failure before the request leaves (no link, no permit) is not ambiguous: it raises.
            timeout, degraded = await self._calls.admit("trading", max(deadline - loop.time(), 0.001))
            sent += 1
            try:
                reply = await self._calls.send(
                    "trading", "trading", "PlaceOrder", message, timeout=timeout, degraded=degraded
                )
            except _AMBIGUOUS as error:
                if not _may_have_left(error):
                    raise
                # The send may have used the whole deadline: resolving gets a window of its own.
                deadline = loop.time() + trading_timeout
                resend = not isinstance(error, BrokerTimeoutError)
                found = await self._look_up(request.client_order_id, deadline, error, wait_for_it=not resend)
                if found is not None:
                    return _accepted(found, request)
                if sent >= _MAX_SENDS:
                    raise BrokerUnavailableError(
                        f"PlaceOrder on {self._config.target}: order {request.client_order_id!r} was not "
                        f"placed: {sent} attempts failed ({error}) and the bridge confirms it has no "
                        "such order"
                    ) from error
                continue  # confirmed absent: send again, under the same client_order_id
            order = order_from(reply.order)
            if reply.duplicate:
                _same_order(order, request)
            return _accepted(order, request)

    async def _look_up(
        self, client_order_id: str, deadline: float, cause: BrokerError, *, wait_for_it: bool
    ) -> Order | None:
        """The order under `client_order_id`; None once the bridge confirms there is none.

        With `wait_for_it`, "none" is not an answer (the first attempt may still be under way): the
        lookups go on until the deadline, which then means the outcome is unknown.
        """
        loop = asyncio.get_running_loop()
        request = trading_pb2.GetOrderRequest(client_order_id=client_order_id)
        attempt = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0 or not self._calls_open():
                raise OrderOutcomeUnknownError(
                    f"PlaceOrder on {self._config.target}: the outcome of order {client_order_id!r} is "
                    f"unknown ({cause}); look it up by client_order_id before placing it again",
                    client_order_id=client_order_id,
                ) from cause
            # Several short attempts fit in the window: one stuck lookup must not spend all of it.
            attempt_timeout = min(remaining, max(0.2, self._config.timeouts["trading"] / 4))
            try:
                reply = await self._calls.once(
                    "trading", "trading", "GetOrder", request, timeout=attempt_timeout
                )
            except NotFoundError:
                if not wait_for_it:
                    return None
            except _AMBIGUOUS:
                pass
            else:
                return order_from(reply.order)
            pause = self._config.reconnect_backoff.delay(attempt)
            await asyncio.sleep(min(pause, max(deadline - loop.time(), 0)))
            attempt += 1

    def _calls_open(self) -> bool:
        try:
            self._calls.method("trading", "GetOrder")
        except BrokerUnavailableError:
            return False
        return True


def _may_have_left(error: BrokerError) -> bool:
    # gRPC fails a call that found no connection with this message before anything is written.
    return "failed to connect to all addresses" not in str(error)


def _same_order(order: Order, request: OrderRequest) -> None:
    """A bridge's duplicate must be the order asked for: a reused id with other contents is refused."""
    asked = (request.symbol, request.side, request.order_type, request.quantity, request.price)
    held = (order.symbol, order.side, order.order_type, order.quantity, order.price)
    if asked != held or order.time_in_force is not request.time_in_force:
        raise InvalidRequestError(
            f"client_order_id {request.client_order_id!r} was already used for another order "
            f"({order.side} {order.quantity} {order.symbol}); choose a new id for "
            f"{request.side} {request.quantity} {request.symbol}"
        )


def _accepted(order: Order, request: OrderRequest) -> Order:
    if order.status is OrderStatus.REJECTED:
        what = f"{request.side} {request.quantity} {request.symbol}"
        reason = order.reject_reason or "no reason given"
        raise OrderRejectedError(
            f"order {request.client_order_id!r} ({what}) was rejected: {reason}",
            client_order_id=request.client_order_id,
            reason=order.reject_reason,
        )
    return order
