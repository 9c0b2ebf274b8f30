"""How the gateway fails: statuses mapped to the error tree, retries, secrets, bad options."""

from __future__ import annotations

import logging

import grpc
import pytest

from broker_plugins import (
    AuthenticationError,
    Backoff,
    BrokerError,
    BrokerTimeoutError,
    BrokerUnavailableError,
    InvalidRequestError,
    OrderRequest,
    RateLimitExceededError,
)
from grpc_plugin import GrpcBrokerGateway
from grpc_plugin._status import ERRORS, connect_failure
from grpc_plugin.bridge import BridgeServer, TlsConfig
from grpc_plugin.bridge._budget import Window
from tests.bridge.conftest import Pki, StartBridge
from tests.gateway.conftest import MakeGateway

TOKEN = "s3cr3t-token-value"


@pytest.fixture
async def bridge(start_bridge: StartBridge) -> BridgeServer:
    return await start_bridge(budget=(), tick_rate=20.0)


async def test_statuses_become_broker_errors_naming_method_and_target(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    async with gateways(bridge.address) as gateway:
        for code, error in [
            (grpc.StatusCode.INTERNAL, BrokerError),
            (grpc.StatusCode.PERMISSION_DENIED, AuthenticationError),
            (grpc.StatusCode.FAILED_PRECONDITION, InvalidRequestError),
        ]:
            bridge.fail_next(1, code, "injected")
            with pytest.raises(error, match=f"GetInstrument on {bridge.address} failed: injected") as caught:
                await gateway.get_instrument("AAPL")
            assert not isinstance(caught.value, grpc.RpcError)
            assert caught.value.__cause__ is None  # no grpc error rides along either


async def test_reads_ride_out_a_brief_unavailability(bridge: BridgeServer, gateways: MakeGateway) -> None:
    async with gateways(bridge.address) as gateway:
        bridge.fail_next(2, grpc.StatusCode.UNAVAILABLE, "blip")
        assert (await gateway.get_quote("AAPL")).symbol == "AAPL"
        assert [r.method for r in bridge.requests].count("GetQuote") == 3


async def test_writes_are_not_retried(bridge: BridgeServer, gateways: MakeGateway) -> None:
    async with gateways(bridge.address) as gateway:
        bridge.fail_next(1, grpc.StatusCode.UNAVAILABLE, "blip")
        with pytest.raises(BrokerUnavailableError, match="CancelOrder"):
            await gateway.cancel_order("1")
        assert [r.method for r in bridge.requests].count("CancelOrder") == 1


async def test_reads_wait_out_the_budget_and_orders_report_it(
    start_bridge: StartBridge, gateways: MakeGateway
) -> None:
    bridge = await start_bridge(budget=(Window(3, 0.5),))
    async with gateways(bridge.address) as gateway:  # its own limiter does not bind: the bridge's does
        quotes = [await gateway.get_quote("AAPL") for _ in range(7)]
        assert len(quotes) == 7
        refused = [r for r in bridge.requests if r.rejected == grpc.StatusCode.RESOURCE_EXHAUSTED]
        assert refused  # the bridge did refuse, and the gateway waited as told
        refusal: RateLimitExceededError | None = None
        for _ in range(5):  # orders are not retried: one of them meets the exhausted budget
            try:
                await gateway.place_order(OrderRequest.market("AAPL", "buy", 1))
            except RateLimitExceededError as error:
                refusal = error
                break
        assert refusal is not None
        assert refusal.retry_after is not None
        assert 0 < refusal.retry_after <= 0.5


async def test_a_slow_bridge_is_a_timeout(bridge: BridgeServer, gateways: MakeGateway) -> None:
    async with gateways(bridge.address, timeouts={"market_data": 0.2}) as gateway:
        bridge.delay(0.5)
        with pytest.raises(BrokerTimeoutError, match="GetQuote"):
            await gateway.get_quote("AAPL")
        with pytest.raises(TimeoutError):  # the builtin a caller may already catch
            await gateway.get_quote("AAPL")


async def test_a_wrong_token_is_an_authentication_error_that_never_shows_it(
    start_bridge: StartBridge, gateways: MakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    bridge = await start_bridge(budget=(), tokens={TOKEN: "paper"})
    caplog.set_level(logging.DEBUG)
    async with gateways(bridge.address, token=TOKEN) as gateway:
        assert (await gateway.get_quote("AAPL")).symbol == "AAPL"
        assert TOKEN not in repr(gateway)
        assert TOKEN not in repr(gateway._config)
    wrong = gateways(bridge.address, token="wrong-" + TOKEN)
    with pytest.raises(AuthenticationError, match="refused the credentials") as caught:
        await wrong.connect()  # health refuses a wrong token: found at connect(), not at a call
    assert TOKEN not in str(caught.value)
    async with gateways(bridge.address) as gateway:  # no token: health may answer; calls may not
        with pytest.raises(AuthenticationError, match="GetQuote"):
            await gateway.get_quote("AAPL")
    assert TOKEN not in caplog.text


async def test_connect_to_nothing_fails_fast_and_clearly(gateways: MakeGateway) -> None:
    gateway = gateways("127.0.0.1:1", connect_timeout=0.5)
    refused = r"cannot connect to 127\.0\.0\.1:1: connection refused \(is the bridge running"
    with pytest.raises(BrokerUnavailableError, match=refused):
        await gateway.connect()
    assert gateway.state.value == "disconnected"


async def test_mutual_tls(start_bridge: StartBridge, gateways: MakeGateway, pki: Pki) -> None:
    bridge = await start_bridge(
        budget=(), tls=TlsConfig.from_files(pki.server_cert, pki.server_key, client_ca=pki.ca)
    )
    secure = {
        "root_certificates": pki.ca,
        "client_certificate": pki.client_cert,
        "client_key": pki.client_key,
    }
    async with gateways(bridge.address, **secure) as gateway:
        assert (await gateway.get_quote("AAPL")).symbol == "AAPL"
    insecure = gateways(bridge.address, connect_timeout=0.5)
    with pytest.raises(BrokerUnavailableError):
        await insecure.connect()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "option 'target' is required"),
        ({"target": "localhost"}, "option 'target' must look like 'host:port'"),
        ({"target": "h:1", "colour": "red"}, "unknown option 'colour'"),
        ({"target": "h:1", "token": ""}, "option 'token' must be 1-4096 visible ASCII characters"),
        ({"target": "h:1", "token": "tok\r\nX-Evil: 1"}, "option 'token' must be 1-4096 visible ASCII"),
        ({"target": "h:1", "token": "t\x00k"}, "option 'token' must be 1-4096 visible ASCII"),
        ({"target": "h:1", "token": "jeton-é"}, "option 'token' must be 1-4096 visible ASCII"),
        ({"target": "h:1", "timeouts": -1}, "option 'timeouts' must give market_data a number of seconds"),
        ({"target": "h:1", "timeouts": {"orders": 1}}, "unknown category 'orders'"),
        ({"target": "h:1", "timeouts": "fast"}, "option 'timeouts' must give market_data a number"),
        ({"target": "h:1", "keepalive_time": 0}, "option 'keepalive_time' must be a number of seconds"),
        ({"target": "h:1", "keepalive_time": 1e9}, "option 'keepalive_time' must be a number of seconds"),
        ({"target": "h:1", "max_message_size": 2**40}, "option 'max_message_size' must be a whole number"),
        ({"target": "h:1:2"}, "option 'target' must look like 'host:port'"),
        ({"target": "h:70000"}, "option 'target' has port 70000"),
        ({"target": "h:1", "rate_limits": "20/s"}, "must be a RateLimit or a list of them"),
        ({"target": "h:1", "reconnect_backoff": 1.0}, "must be a Backoff"),
        ({"target": "h:1", "client_certificate": b"pem"}, "go together"),
        ({"target": "h:1", "root_certificates": "/no/such/ca.pem"}, "cannot read '/no/such/ca.pem'"),
        ({"target": "h:1", "root_certificates": 42}, "option 'root_certificates' must be PEM bytes"),
        ({"target": "h:1", "tls": "yes"}, "option 'tls' must be True or False"),
        ({"target": "h:1", "server_name_override": 1}, "must be a name of 1-253 characters"),
        ({"target": "h:1", "max_message_size": 10}, "whole number of bytes from 1024"),
        ({"target": "h:1", "stream_stale_after": "never"}, "stream_stale_after"),
        ({"target": "h:1", "rate_limit_margin": -0.1}, "rate_limit_margin"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        GrpcBrokerGateway(**options)


def test_good_options_are_taken() -> None:
    gateway = GrpcBrokerGateway(
        target="[::1]:50051",
        timeouts=2,
        stream_stale_after=None,
        reconnect_backoff=Backoff(initial=0.2, maximum=2.0),
        rate_limit_margin=0,
        tls=True,
        server_name_override="bridge.local",
    )
    assert gateway.target == "[::1]:50051"
    assert gateway.half_open_bound == 12.0  # a quiet link probed after 10 s; two probes of 1 s unanswered


@pytest.mark.parametrize("code", [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK])
async def test_every_status_maps_to_its_documented_error(
    bridge: BridgeServer, gateways: MakeGateway, code: grpc.StatusCode
) -> None:
    async with gateways(bridge.address, unavailable_timeout=0.05, timeouts=1.0) as gateway:
        bridge.fail_next(
            50 if code in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED} else 1, code
        )
        with pytest.raises(BrokerError) as caught:
            await gateway.cancel_order("O-1")  # a write: never retried, so the status comes through
        assert type(caught.value) is ERRORS[code], (code, caught.value)
        assert "CancelOrder" in str(caught.value)


async def test_tls_failures_say_tls_and_why(
    start_bridge: StartBridge, gateways: MakeGateway, pki: Pki
) -> None:
    bridge = await start_bridge(budget=(), tls=TlsConfig.from_files(pki.server_cert, pki.server_key))
    untrusted = gateways(bridge.address, tls=True, connect_timeout=2)
    with pytest.raises(BrokerUnavailableError, match="TLS: the bridge's certificate is not trusted"):
        await untrusted.connect()
    misnamed = gateways(
        bridge.address, root_certificates=pki.ca, server_name_override="elsewhere.example", connect_timeout=2
    )
    with pytest.raises(BrokerUnavailableError, match="TLS: the certificate does not name this host"):
        await misnamed.connect()


@pytest.mark.parametrize(
    ("details", "said"),
    [
        # Resolving a name would send traffic off this machine; gRPC's own words stand in for it.
        (
            "DNS resolution failed for nosuchhost.invalid:50051: UNAVAILABLE",
            "the host name cannot be resolved",
        ),
        ("failed to connect to all addresses; last error: Connection refused", "connection refused"),
        ("Ssl handshake failed: CERTIFICATE_VERIFY_FAILED", "TLS: the bridge's certificate is not trusted"),
        (
            "Handshake failed with fatal error SSL_ERROR_SSL: certificate required",
            "requires a client certificate",
        ),
        ("something nobody foresaw", "something nobody foresaw"),
    ],
)
def test_a_failed_first_contact_says_why_in_words(details: str, said: str) -> None:
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details
    )
    failure = connect_failure(error, target="h:1", secret=None)
    assert isinstance(failure, BrokerUnavailableError)
    assert said in str(failure)
    hidden = connect_failure(
        grpc.aio.AioRpcError(
            grpc.StatusCode.UNAUTHENTICATED, grpc.aio.Metadata(), grpc.aio.Metadata(), "bad s3cr3t"
        ),
        target="h:1",
        secret="s3cr3t",
    )
    assert isinstance(hidden, AuthenticationError)
    assert "s3cr3t" not in str(hidden)
    assert "BROKERCTL_TOKEN" in str(hidden)
