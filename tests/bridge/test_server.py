"""The server around the services: health, reflection, keepalive, TLS, graceful stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import grpc
import grpc.aio
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc
from grpc_reflection.v1alpha.reflection_pb2 import ServerReflectionRequest, ServerReflectionResponse

from grpc_plugin.bridge import BridgeConfig, BridgeServer, TlsConfig
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import (
    CALL_TIMEOUT,
    LOOPBACK,
    Client,
    Pki,
    StartBridge,
    health_stub,
    make_client,
    next_message,
    rpc_error,
    within,
)

SERVICES = ("broker.bridge.v1.MarketDataService", "broker.bridge.v1.TradingService")


async def test_health_reports_every_service_serving(client: Client) -> None:
    health = health_stub(client.channel)
    for service in ("", *SERVICES):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_health_refuses_a_wrong_token_and_answers_without_one(
    start_bridge: StartBridge, connect: Callable[..., Client]
) -> None:
    server = await start_bridge(budget=(), tokens={"tok": "alice"})
    health = health_stub(connect(server.address).channel)
    for service in ("", *SERVICES):
        request = health_pb2.HealthCheckRequest(service=service)
        for metadata in ((("authorization", "Bearer tok"),), ()):
            reply = await health.Check(request, metadata=metadata, timeout=CALL_TIMEOUT)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        for wrong in ("Bearer nope", "Basic tok", "Bearer "):
            error = await rpc_error(
                health.Check(request, metadata=(("authorization", wrong),), timeout=CALL_TIMEOUT)
            )
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "nope" not in (error.details() or "")
    watch = health.Watch(health_pb2.HealthCheckRequest(), metadata=(("authorization", "Bearer nope"),))
    error = await rpc_error(watch.read())
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    watch = health.Watch(health_pb2.HealthCheckRequest(), metadata=(("authorization", "Bearer tok"),))
    watched = await next_message(watch.read(), health_pb2.HealthCheckResponse)
    assert watched.status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    error = await rpc_error(health.Check(health_pb2.HealthCheckRequest(service="no.such.Service")))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_and_describes_the_services(client: Client) -> None:
    # The reflection package's type stubs take only a sync channel and leave the method untyped.
    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)  # type: ignore[arg-type]
    info = cast(
        "grpc.aio.StreamStreamMultiCallable[ServerReflectionRequest, ServerReflectionResponse]",
        stub.ServerReflectionInfo,
    )
    call = info()
    try:
        await call.write(ServerReflectionRequest(list_services=""))
        listed = await next_message(call.read(), ServerReflectionResponse)
        names = {s.name for s in listed.list_services_response.service}
        assert {*SERVICES, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
        await call.write(ServerReflectionRequest(file_containing_symbol=SERVICES[1]))
        described = await next_message(call.read(), ServerReflectionResponse)
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in described.file_descriptor_response.file_descriptor_proto
        ]
        trading = next(f for f in files if f.name == "broker/bridge/v1/trading.proto")
        assert {m.name for m in trading.service[0].method} >= {"PlaceOrder", "GetOrder", "StreamOrderUpdates"}
        await call.done_writing()
    finally:
        call.cancel()


def test_the_server_runs_with_grpcs_stock_keepalive_enforcement() -> None:
    relaxed = {"grpc.http2.min_recv_ping_interval_without_data_ms", "grpc.http2.max_ping_strikes"}
    names = {name for name, _ in BridgeServer.server_options}
    assert not names & relaxed
    assert not any(name.startswith("grpc.keepalive") for name in names)


@pytest.mark.slow
async def test_a_client_that_pings_an_idle_connection_every_second_gets_goaway(
    bridge: BridgeServer, connect: Callable[..., Client]
) -> None:
    pinging = (
        ("grpc.keepalive_time_ms", 1_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    )
    client = connect(bridge.address, pinging)
    await client.market.GetQuote(md.GetQuoteRequest(symbol="AAPL"), timeout=CALL_TIMEOUT)
    # As any server with gRPC's stock policy does (vendors' servers included): the third ping
    # without data within the allowed interval is answered with GOAWAY too_many_pings, and the
    # channel leaves READY. Clients detect half-open peers with calls, not with such pings.
    channel = client.channel
    state = channel.get_state()
    while state is grpc.ChannelConnectivity.READY:
        await within(channel.wait_for_state_change(state), 20.0)
        state = channel.get_state()
    # The connection is gone, not the bridge: the next call reconnects.
    assert (await client.market.GetQuote(md.GetQuoteRequest(symbol="AAPL"), timeout=CALL_TIMEOUT)).quote


async def test_stop_ends_streams_with_unavailable_and_health_goes_not_serving(
    start_bridge: StartBridge, connect: Callable[..., Client]
) -> None:
    server = await start_bridge(budget=())
    client = connect(server.address)
    watch = health_stub(client.channel).Watch(health_pb2.HealthCheckRequest(service=SERVICES[0]))
    watched = await next_message(watch.read(), health_pb2.HealthCheckResponse)
    assert watched.status == health_pb2.HealthCheckResponse.SERVING
    quotes = client.market.StreamQuotes(md.StreamQuotesRequest(symbols=["AAPL"]))
    updates = client.trading.StreamOrderUpdates(tr.StreamOrderUpdatesRequest())
    await within(quotes.read())
    replay = await next_message(updates.read(), tr.StreamOrderUpdatesResponse)
    assert not replay.updates  # the at-once first message: nothing to replay
    stopping = asyncio.get_running_loop().create_task(server.stop(grace=30))
    watched = await next_message(watch.read(), health_pb2.HealthCheckResponse)
    assert watched.status == health_pb2.HealthCheckResponse.NOT_SERVING
    watch.cancel()  # a health watcher, like any open call, would hold the stop for its grace period
    for stream in (quotes, updates):
        error = await rpc_error(stream.read())
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in (error.details() or "")
    await within(stopping)  # the bridge ended its own streams, so the stop did not need its grace
    assert not server.listening
    port = server.port
    await server.start()  # a restart listens on the same port, like a restarted process
    assert server.port == port
    assert (
        await client.market.GetQuote(
            md.GetQuoteRequest(symbol="AAPL"), wait_for_ready=True, timeout=CALL_TIMEOUT
        )
    ).quote


async def test_tls_and_mutual_tls(start_bridge: StartBridge, pki: Pki) -> None:
    ca = pki.ca.read_bytes()
    tls = TlsConfig.from_files(pki.server_cert, pki.server_key)
    server = await start_bridge(budget=(), tls=tls)
    request = md.GetQuoteRequest(symbol="AAPL")
    async with grpc.aio.secure_channel(server.address, grpc.ssl_channel_credentials(ca)) as channel:
        assert (
            await make_client(channel).market.GetQuote(request, timeout=CALL_TIMEOUT)
        ).quote.symbol == "AAPL"
    async with grpc.aio.insecure_channel(server.address) as channel:
        error = await rpc_error(make_client(channel).market.GetQuote(request, timeout=CALL_TIMEOUT))
        assert error.code() == grpc.StatusCode.UNAVAILABLE

    mutual = TlsConfig.from_files(pki.server_cert, pki.server_key, pki.ca)
    server = await start_bridge(budget=(), tls=mutual)
    anonymous = grpc.ssl_channel_credentials(ca)
    async with grpc.aio.secure_channel(server.address, anonymous) as channel:
        error = await rpc_error(make_client(channel).market.GetQuote(request, timeout=CALL_TIMEOUT))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    identified = grpc.ssl_channel_credentials(ca, pki.client_key.read_bytes(), pki.client_cert.read_bytes())
    async with grpc.aio.secure_channel(server.address, identified) as channel:
        assert (
            await make_client(channel).market.GetQuote(request, timeout=CALL_TIMEOUT)
        ).quote.symbol == "AAPL"


async def test_start_fails_cleanly_when_the_port_is_taken(bridge: BridgeServer) -> None:
    second = BridgeServer(BridgeConfig(host=LOOPBACK, port=bridge.port))
    with pytest.raises(OSError, match="cannot listen"):
        await second.start()
    assert not second.listening
    with pytest.raises(RuntimeError, match="already started"):
        await bridge.start()


async def test_the_context_manager_starts_and_stops(connect: Callable[..., Client]) -> None:
    async with BridgeServer(BridgeConfig(host=LOOPBACK, budget=())) as server:
        client = connect(server.address)
        assert (
            await client.market.GetQuote(md.GetQuoteRequest(symbol="AAPL"), timeout=CALL_TIMEOUT)
        ).quote.symbol
        assert server.requests
    assert not server.listening
    assert server.requests == []
    with pytest.raises(RuntimeError):
        _ = server.broker
    with pytest.raises(RuntimeError):
        _ = BridgeServer().port
