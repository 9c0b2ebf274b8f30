"""The grpc gateway with a RedisRateLimiter injected: its calls take their permits from Redis, and
while Redis is unreachable they fail with SharedBudgetUnavailableError and reach no bridge."""

from __future__ import annotations

import pytest

from broker_plugins import RateLimit, RedisRateLimiter, SharedBudgetUnavailableError
from grpc_plugin import GrpcBrokerGateway
from grpc_plugin.bridge import BridgeConfig, BridgeServer
from tests.redis.conftest import RedisServer


async def test_a_gateway_takes_its_permits_from_redis_and_sends_nothing_without_it(
    own_redis_server: RedisServer, budget: str
) -> None:
    bridge = BridgeServer(BridgeConfig(budget=()))
    await bridge.start()
    limiter = RedisRateLimiter(own_redis_server.url, RateLimit(50, 1.0), budget=budget, timeout=0.5)
    gateway = GrpcBrokerGateway(target=bridge.address, rate_limiter=limiter)
    try:
        async with gateway:
            assert (await gateway.get_quote("005930")).symbol == "005930"
            assert limiter.stats().category("market_data").permits_granted == 1
            own_redis_server.stop()
            bridge.clear_requests()
            with pytest.raises(SharedBudgetUnavailableError, match="unreachable"):
                await gateway.get_quote("005930")
            assert [r.method for r in bridge.requests] == []
            own_redis_server.start()
            assert (await gateway.get_quote("AAPL")).symbol == "AAPL"
    finally:
        await limiter.aclose()
        await bridge.stop()
