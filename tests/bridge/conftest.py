"""Fixtures of the bridge tests: an in-process bridge on loopback, channels, stubs, subprocesses, TLS.

Everything talks to a real grpc.aio server bound to 127.0.0.1 port 0; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import select
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import attrs
import grpc
import grpc.aio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpc_plugin.bridge import CLIENT_KEEPALIVE_OPTIONS, BridgeConfig, BridgeServer
from grpc_plugin.generated.broker.bridge.v1 import (
    common_pb2,
    market_data_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
CALL_TIMEOUT = 10.0  # seconds; every RPC in these tests is bounded
RICH = {"KRW": Decimal(10_000_000_000), "USD": Decimal(10_000_000)}  # cash for large orders

T = TypeVar("T")
StartBridge = Callable[..., Awaitable[BridgeServer]]


def dec(value: str | int) -> common_pb2.Decimal:
    """A Decimal message of `value`."""
    sign, digits, exponent = Decimal(value).as_tuple()
    mantissa = int("".join(map(str, digits)))
    assert isinstance(exponent, int)
    return common_pb2.Decimal(mantissa=-mantissa if sign else mantissa, exponent=exponent)


def undec(message: common_pb2.Decimal) -> Decimal:
    """The exact value of a Decimal message."""
    return Decimal(message.mantissa).scaleb(message.exponent)


async def within(awaitable: Awaitable[T], seconds: float = CALL_TIMEOUT) -> T:
    """Await with a bound, so that a hung stream fails the test instead of hanging it."""
    return await asyncio.wait_for(awaitable, seconds)


async def next_message(read: Awaitable[object], kind: type[T], seconds: float = CALL_TIMEOUT) -> T:
    """The message a stream's `read()` gives, within a bound; fails the test if the stream ended."""
    message = await within(read, seconds)
    assert isinstance(message, kind), message  # not grpc.aio.EOF
    return message


async def rpc_error(awaitable: Awaitable[object]) -> grpc.aio.AioRpcError:
    """The AioRpcError `awaitable` fails with (fails the test if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await within(awaitable)
    return info.value


def market_order(
    client_order_id: str,
    symbol: str,
    side: trading_pb2.Side.ValueType,
    quantity: int,
    *,
    time_in_force: trading_pb2.TimeInForce.ValueType = trading_pb2.TIME_IN_FORCE_UNSPECIFIED,
) -> trading_pb2.PlaceOrderRequest:
    """A PlaceOrder request for a market order."""
    return trading_pb2.PlaceOrderRequest(
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        order_type=trading_pb2.ORDER_TYPE_MARKET,
        quantity=dec(quantity),
        time_in_force=time_in_force,
    )


def limit_order(
    client_order_id: str,
    symbol: str,
    side: trading_pb2.Side.ValueType,
    quantity: int,
    price: str,
    *,
    time_in_force: trading_pb2.TimeInForce.ValueType = trading_pb2.TIME_IN_FORCE_UNSPECIFIED,
) -> trading_pb2.PlaceOrderRequest:
    """A PlaceOrder request for a limit order."""
    return trading_pb2.PlaceOrderRequest(
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        order_type=trading_pb2.ORDER_TYPE_LIMIT,
        quantity=dec(quantity),
        limit_price=dec(price),
        time_in_force=time_in_force,
    )


class HealthStub(Protocol):
    """grpc_health's HealthStub on an aio channel, typed (its type stubs declare no methods)."""

    Check: grpc.aio.UnaryUnaryMultiCallable[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]
    Watch: grpc.aio.UnaryStreamMultiCallable[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]


def health_stub(channel: grpc.aio.Channel) -> HealthStub:
    """The health service's stub over `channel`."""
    return cast(HealthStub, health_pb2_grpc.HealthStub(channel))


@attrs.define
class Client:
    """A channel to a bridge and its two stubs."""

    channel: grpc.aio.Channel
    market: market_data_pb2_grpc.MarketDataServiceAsyncStub
    trading: trading_pb2_grpc.TradingServiceAsyncStub


def make_client(channel: grpc.aio.Channel) -> Client:
    """Stubs over `channel`."""
    return Client(
        channel,
        market_data_pb2_grpc.MarketDataServiceStub(channel),
        trading_pb2_grpc.TradingServiceStub(channel),
    )


@pytest.fixture
async def start_bridge() -> AsyncIterator[StartBridge]:
    """Start in-process bridges on loopback (port 0 unless given); all are stopped afterwards."""
    started: list[BridgeServer] = []

    async def start(**options: Any) -> BridgeServer:  # BridgeConfig's fields, checked by it
        options.setdefault("host", LOOPBACK)
        server = BridgeServer(BridgeConfig(**options))
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop(grace=0)


@pytest.fixture
async def bridge(start_bridge: StartBridge) -> BridgeServer:
    """A bridge without budgets, ticking fast enough for fills to happen within a test."""
    return await start_bridge(budget=(), tick_rate=50.0)


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Client]]:
    """Open insecure channels (with the recommended keepalive options); all are closed afterwards."""
    channels: list[grpc.aio.Channel] = []

    def open_client(
        address: str, options: tuple[tuple[str, object], ...] = CLIENT_KEEPALIVE_OPTIONS
    ) -> Client:
        channel = grpc.aio.insecure_channel(address, options=options)
        channels.append(channel)
        return make_client(channel)

    yield open_client
    for channel in channels:
        await channel.close()


@pytest.fixture
async def rich(start_bridge: StartBridge, connect: Callable[..., Client]) -> tuple[BridgeServer, Client]:
    """A bridge whose accounts can afford large orders, and a client of it."""
    server = await start_bridge(budget=(), tick_rate=50.0, initial_cash=RICH)
    return server, connect(server.address)


@pytest.fixture
async def client(bridge: BridgeServer, connect: Callable[..., Client]) -> Client:
    """Stubs connected to `bridge`."""
    return connect(bridge.address)


# -- subprocesses ----------------------------------------------------------------------------------


@attrs.define
class BridgeProcess:
    """A `python -m grpc_plugin.bridge` subprocess and the address it printed."""

    process: subprocess.Popen[str]
    address: str
    log: Path

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 15.0) -> int:
        return self.process.wait(timeout)


def spawn_bridge(log_dir: Path, *args: str, timeout: float = 20.0) -> BridgeProcess:
    """Start a bridge subprocess on 127.0.0.1 port 0 and wait for its `listening on` line."""
    log = log_dir / f"bridge-{len(list(log_dir.glob('bridge-*.log')))}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "grpc_plugin.bridge", "--host", LOOPBACK, "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("listening on "):
        process.kill()
        process.wait(5)
        process.stdout.close()
        raise AssertionError(f"bridge did not start: {line!r}\n{log.read_text()}")
    return BridgeProcess(process, line.removeprefix("listening on ").strip(), log)


@pytest.fixture
def bridge_processes(tmp_path: Path) -> Iterator[Callable[..., BridgeProcess]]:
    """Start bridge subprocesses; any still running afterwards is killed."""
    processes: list[BridgeProcess] = []

    def start(*args: str) -> BridgeProcess:
        started = spawn_bridge(tmp_path, *args)
        processes.append(started)
        return started

    yield start
    for bridge_process in processes:
        if bridge_process.process.poll() is None:
            bridge_process.process.send_signal(signal.SIGKILL)
        bridge_process.process.wait(10)
        assert bridge_process.process.stdout is not None
        bridge_process.process.stdout.close()


# -- TLS -------------------------------------------------------------------------------------------


@attrs.frozen
class Pki:
    """PEM files of a test CA, a server certificate for 127.0.0.1, and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    san: x509.SubjectAlternativeName | None = None,
) -> bytes:
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA with a server and a client certificate."""
    import ipaddress  # noqa: PLC0415

    directory = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_cert = _certificate("bridge test CA", ca_key, None, ca=True)
    server_san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    )
    server_cert = _certificate("bridge", server_key, ("bridge test CA", ca_key), san=server_san)
    client_cert = _certificate("gateway", client_key, ("bridge test CA", ca_key))
    files = {
        "ca": ca_cert,
        "server_cert": server_cert,
        "server_key": _key_pem(server_key),
        "client_cert": client_cert,
        "client_key": _key_pem(client_key),
    }
    for name, content in files.items():
        (directory / f"{name}.pem").write_bytes(content)
    return Pki(**{name: directory / f"{name}.pem" for name in files})
