"""A bridge we did not write: a plain grpc.aio server, stock options, only what a test gives it.

It stands for a vendor's server in C#, Go or Node: gRPC's default server settings (so its stock
keepalive enforcement), the standard health service, an optional token check on every RPC (health
included), and servicers a test writes for the behaviour it needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2_grpc, trading_pb2_grpc

__all__ = ["PlainBridge"]


class _TokenCheck(grpc.aio.ServerInterceptor):
    """Refuses every RPC, health included, without `authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        if metadata.get("authorization") == self._expected or handler is None:
            return handler

        async def deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        async def deny_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
            yield  # pragma: no cover - never reached; makes this a generator

        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(deny_stream, **serializers)
        return grpc.unary_unary_rpc_method_handler(deny, **serializers)


class PlainBridge:
    """A stock grpc.aio server on 127.0.0.1 (port 0) with health and the servicers given."""

    def __init__(
        self,
        *,
        market: market_data_pb2_grpc.MarketDataServiceServicer | None = None,
        trading: trading_pb2_grpc.TradingServiceServicer | None = None,
        token: str | None = None,
    ) -> None:
        interceptors = [_TokenCheck(token)] if token else []
        self._server = grpc.aio.server(interceptors=interceptors)  # stock options: nothing relaxed
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        if market is not None:
            market_data_pb2_grpc.add_MarketDataServiceServicer_to_server(market, self._server)
        if trading is not None:
            trading_pb2_grpc.add_TradingServiceServicer_to_server(trading, self._server)
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> PlainBridge:
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        return self

    async def stop(self) -> None:
        await self._server.stop(grace=None)
