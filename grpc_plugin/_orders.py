"""Placing an order exactly once over a connection that can fail at any moment.

PlaceOrder is never retried blindly. A failure that proves the order was not taken (the bridge
refused it: bad input, auth, budget) is reported as is. A failure that leaves it open whether the
bridge got the request (the connection dropped, the deadline passed) is resolved by asking the
bridge for the order under its `client_order_id`: found, it is returned; confirmed absent, the
request is sent again under the same id, which the bridge de-duplicates anyway; not knowable within
one more trading timeout, `OrderOutcomeUnknownError` carrying the id is raised.
"""

from __future__ import annotations

import asyncio

import grpc

from broker_plugins import (
    BrokerError,
    BrokerTimeoutError,
    BrokerUnavailableError,
    NotFoundError,
    Order,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    OrderRequest,
    OrderStatus,
)
from grpc_plugin._calls import Caller
from grpc_plugin._config import GatewayConfig
from grpc_plugin._mapping import order_from, order_request_to
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2

__all__ = ["place_order"]

# Errors after which the request may or may not have reached the bridge.
_AMBIGUOUS = (BrokerUnavailableError, BrokerTimeoutError)
# Sends under one client_order_id before giving up: each was confirmed absent, yet none got through.
_MAX_SENDS = 3


async def place_order(caller: Caller, config: GatewayConfig, request: OrderRequest) -> Order:
    """Place `request` once; see the module docstring for what happens when the connection fails."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.timeouts["trading"]
    message = order_request_to(request)
    sent = 0
    while True:
        remaining = deadline - loop.time()
        try:
            # A failure before the request leaves (no channel, no permit) is not ambiguous.
            await caller.prepare("trading", remaining, ready=True)
            sent += 1
            reply = await _send(caller, message, remaining)
        except _AMBIGUOUS as error:
            if not sent or not _may_have_left(error):
                raise
            # The send may have used the whole deadline: resolving gets a window of its own.
            deadline = loop.time() + config.timeouts["trading"]
            found = await _look_up(caller, config, request.client_order_id, deadline, error)
            if found is not None:
                return _accepted(found, request)
            if sent >= _MAX_SENDS:
                raise BrokerUnavailableError(
                    f"PlaceOrder on {config.target}: order {request.client_order_id!r} was not placed: "
                    f"{sent} attempts failed ({error}) and the bridge confirms it has no such order"
                ) from error
            continue  # confirmed absent: send again, under the same client_order_id
        return _accepted(order_from(reply.order), request)


async def _send(
    caller: Caller, message: trading_pb2.PlaceOrderRequest, timeout: float
) -> trading_pb2.PlaceOrderResponse:
    method = caller.stub_method("trading", "PlaceOrder")
    failure: BrokerError
    try:
        reply: trading_pb2.PlaceOrderResponse = await method(
            message, timeout=timeout, metadata=caller.metadata
        )
    except grpc.aio.AioRpcError as exc:
        failure = caller.error(exc, "PlaceOrder")
    except grpc.aio.UsageError:
        failure = BrokerUnavailableError("PlaceOrder: the gateway was disconnected while sending")
    else:
        return reply
    raise failure  # outside the except clause: no context that would keep the call alive


async def _look_up(
    caller: Caller, config: GatewayConfig, client_order_id: str, deadline: float, cause: BrokerError
) -> Order | None:
    """The order under `client_order_id`, or None once the bridge confirms there is none."""
    loop = asyncio.get_running_loop()
    request = trading_pb2.GetOrderRequest(client_order_id=client_order_id)
    attempt = 0
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0 or not caller.connection_open:
            raise OrderOutcomeUnknownError(
                f"PlaceOrder on {config.target}: the outcome of order {client_order_id!r} is unknown "
                f"({cause}); look it up by client_order_id before placing it again",
                client_order_id=client_order_id,
            ) from cause
        # Several short attempts fit in the window: one stuck lookup must not spend all of it.
        attempt_timeout = min(remaining, max(0.2, config.timeouts["trading"] / 4))
        try:
            reply = await caller.once("trading", "trading", "GetOrder", request, timeout=attempt_timeout)
        except NotFoundError:
            return None
        except _AMBIGUOUS:
            await asyncio.sleep(min(config.reconnect_backoff.delay(attempt), max(deadline - loop.time(), 0)))
            attempt += 1
            continue
        return order_from(reply.order)


def _may_have_left(error: BrokerError) -> bool:
    # gRPC fails a call that found no connection with this message before anything is written.
    return "failed to connect to all addresses" not in str(error)


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
