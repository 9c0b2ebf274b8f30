"""`BridgeServer`: the reference bridge as a real grpc.aio server, startable in-process.

The market, the paper broker and its journal, and the quote feed live as long as the BridgeServer;
the grpc.aio server on top can be cut and restored (same port) without losing them, which is how
tests simulate a dropped connection to a broker that kept running.

The parts are class attributes (`market_data_servicer`, `trading_servicer`, `health_servicer`,
`call_gate`, `call_budget`, `server_options`) and `add_services`, so that a subclass can swap one: a
richer market model, or, in tests, a bridge with one behaviour deliberately broken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import attrs
import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from grpc_plugin.bridge._auth import TokenCheck
from grpc_plugin.bridge._broker import PaperBroker
from grpc_plugin.bridge._budget import DEFAULT_BUDGET, CallBudget, Window
from grpc_plugin.bridge._faults import Faults
from grpc_plugin.bridge._feed import QuoteFeed
from grpc_plugin.bridge._gate import DEFAULT_ACCOUNT, CallGate, RequestRecord
from grpc_plugin.bridge._handlers import add_service
from grpc_plugin.bridge._health import AuthenticatedHealth
from grpc_plugin.bridge._journal import Journal, MemoryJournal, SqliteJournal
from grpc_plugin.bridge._market import Market
from grpc_plugin.bridge._market_service import MarketDataServicer
from grpc_plugin.bridge._options import MAX_REQUEST_BYTES, SERVER_OPTIONS
from grpc_plugin.bridge._orders import PaperOrder
from grpc_plugin.bridge._paging import MAX_PAGE_SIZE
from grpc_plugin.bridge._trading_service import TradingServicer
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, trading_pb2

__all__ = ["BridgeConfig", "BridgeServer", "TlsConfig"]

_MARKET_DATA = market_data_pb2.DESCRIPTOR.services_by_name["MarketDataService"]
_TRADING = trading_pb2.DESCRIPTOR.services_by_name["TradingService"]
MARKET_DATA_SERVICE = _MARKET_DATA.full_name
TRADING_SERVICE = _TRADING.full_name
_HEALTH_NAMES = ("", MARKET_DATA_SERVICE, TRADING_SERVICE)


@attrs.frozen(kw_only=True)
class TlsConfig:
    """Server certificate and key (PEM); with `client_ca`, clients must present a certificate it signed."""

    certificate_chain: bytes
    private_key: bytes = attrs.field(repr=False)
    client_ca: bytes | None = None

    @classmethod
    def from_files(cls, cert: str | Path, key: str | Path, client_ca: str | Path | None = None) -> TlsConfig:
        """Read the PEM files."""
        return cls(
            certificate_chain=Path(cert).read_bytes(),
            private_key=Path(key).read_bytes(),
            client_ca=Path(client_ca).read_bytes() if client_ca is not None else None,
        )


def _default_cash() -> dict[str, Decimal]:
    return {"KRW": Decimal(100_000_000), "USD": Decimal(100_000)}


@attrs.frozen(kw_only=True)
class BridgeConfig:
    """Everything a bridge is started with. `tokens` maps bearer tokens to account names; empty
    means no authentication (every call is account "paper"). An empty `budget` disables budgets."""

    host: str = "127.0.0.1"
    port: int = 0
    tokens: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    state_path: Path | None = None
    tls: TlsConfig | None = None
    seed: int = 0
    tick_rate: float = 10.0
    budget: tuple[Window, ...] = DEFAULT_BUDGET
    initial_cash: Mapping[str, Decimal] = attrs.field(factory=_default_cash)
    retain_updates: int = 10_000
    record_limit: int = 100_000
    max_request_bytes: int = MAX_REQUEST_BYTES
    fsync: bool = True
    """Wait for the disk on every journal write (off: a process crash still loses nothing)."""


class BridgeServer:
    """The reference bridge: `await start()`, calls on `address`, `await stop()`.

    Tests also get a backdoor (`requests`, `orders_by_client_order_id`) and faults (`cut`,
    `restore`, `delay`, `delay_placement`, `fail_next`, `stall_streams`, `release_streams`,
    `clear_faults`).
    """

    market_data_servicer: ClassVar[type[MarketDataServicer]] = MarketDataServicer
    trading_servicer: ClassVar[type[TradingServicer]] = TradingServicer
    health_servicer: ClassVar[type[AuthenticatedHealth]] = AuthenticatedHealth
    call_gate: ClassVar[type[CallGate]] = CallGate
    call_budget: ClassVar[type[CallBudget]] = CallBudget
    server_options: ClassVar[Sequence[tuple[str, Any]]] = SERVER_OPTIONS

    def __init__(self, config: BridgeConfig | None = None) -> None:
        self.config = config or BridgeConfig()
        self.faults = Faults()
        self.market = Market(seed=self.config.seed, tick_rate=self.config.tick_rate)
        self._journal: Journal | None = None
        self._broker: PaperBroker | None = None
        self._feed: QuoteFeed | None = None
        self._gate: CallGate | None = None
        self._servicers: tuple[MarketDataServicer, TradingServicer] | None = None
        self._grpc: grpc.aio.Server | None = None
        self._health: AuthenticatedHealth | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load state, start the quote feed and listen; returns once calls are accepted.

        A bridge started again after `stop` listens on the port it had, like a restarted process:
        its state is what the journal kept (nothing, without `state_path`).
        """
        if self._broker is not None:
            raise RuntimeError("the bridge is already started")
        config = self.config
        journal: Journal = (
            SqliteJournal(config.state_path, fsync=config.fsync) if config.state_path else MemoryJournal()
        )
        feed = QuoteFeed(self.market)
        broker = PaperBroker(
            self.market,
            journal,
            initial_cash=config.initial_cash,
            retain_updates=config.retain_updates,
            on_working=feed.wake,
        )
        feed.attach_broker(on_quotes=broker.on_quotes, traded_symbols=broker.working_symbols)
        gate = self.call_gate(
            tokens=config.tokens,
            budget=self.call_budget(config.budget),
            faults=self.faults,
            max_request_bytes=config.max_request_bytes,
            record_limit=config.record_limit,
        )
        self._journal, self._broker, self._feed, self._gate = journal, broker, feed, gate
        self._servicers = (
            self.market_data_servicer(self.market, feed, gate, self.faults),
            self.trading_servicer(self.market, broker, gate, self.faults),
        )
        feed.start()
        try:
            await self._listen(self._port if self._port is not None else config.port)
        except BaseException:
            await self.stop()
            raise

    async def stop(self, grace: float | None = 1.0) -> None:
        """Health NOT_SERVING, end streams, stop listening (calls get `grace` s to finish), stop the feed."""
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        self.faults.release_streams()
        if self._feed is not None:
            self._feed.close_all()
        if self._broker is not None:
            self._broker.updates.close_all()
        if self._grpc is not None:
            await self._grpc.stop(grace)
        if self._feed is not None:
            await self._feed.stop()
        if self._journal is not None:
            self._journal.close()
        self._grpc = self._health = None
        self._journal = self._broker = self._feed = self._gate = self._servicers = None

    async def __aenter__(self) -> BridgeServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()

    async def _listen(self, port: int) -> None:
        server = grpc.aio.server(options=list(self.server_options))
        self.add_services(server)
        health_servicer = self.health_servicer(TokenCheck(self.config.tokens))
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (*_HEALTH_NAMES[1:], health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = _join(self.config.host, port)
        tls = self.config.tls
        try:
            if tls is None:
                bound = server.add_insecure_port(address)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(tls.private_key, tls.certificate_chain)],
                    root_certificates=tls.client_ca,
                    require_client_auth=tls.client_ca is not None,
                )
                bound = server.add_secure_port(address, credentials)
        except RuntimeError as error:  # grpcio raises this when the port cannot be bound
            raise OSError(f"cannot listen on {address}: {error}") from None
        if bound == 0:
            raise OSError(f"cannot listen on {address}")
        await server.start()
        for name in _HEALTH_NAMES:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._grpc, self._health, self._port = server, health_servicer, bound

    def add_services(self, server: grpc.aio.Server) -> None:
        """Register MarketDataService and TradingService on `server` (request bytes parsed by the bridge)."""
        if self._servicers is None or self._gate is None:
            raise RuntimeError("the bridge has not been started")
        market_data, trading = self._servicers
        add_service(server, _MARKET_DATA, market_data, self._gate)
        add_service(server, _TRADING, trading, self._gate)

    # -- addresses -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the bridge listens on (the real one when started with port 0; kept after stop)."""
        if self._port is None:
            raise RuntimeError("the bridge has not been started")
        return self._port

    @property
    def address(self) -> str:
        """`host:port` to give a gRPC channel."""
        return _join(self.config.host, self.port)

    @property
    def listening(self) -> bool:
        """True while the gRPC server accepts connections (false after `cut` or `stop`)."""
        return self._grpc is not None

    @property
    def broker(self) -> PaperBroker:
        """The paper broker (started bridges only)."""
        if self._broker is None:
            raise RuntimeError("the bridge has not been started")
        return self._broker

    # -- faults ----------------------------------------------------------------------------------

    async def cut(self) -> None:
        """Close every connection and refuse new ones; the market and the orders stay as they are."""
        server, self._grpc, self._health = self._grpc, None, None
        if server is not None:
            await server.stop(None)

    async def restore(self) -> None:
        """Listen again on the same port after `cut` (no-op while listening)."""
        if self._grpc is None:
            await self._listen(self.port)

    def delay(self, seconds: float) -> None:
        """Delay every reply by `seconds` (0 to stop); see `Faults.delay`."""
        self.faults.delay(seconds)

    def delay_placement(self, seconds: float) -> None:
        """Make the broker take `seconds` to accept each new order; see `Faults.delay_placement`."""
        self.faults.delay_placement(seconds)

    def fail_next(
        self, count: int, code: grpc.StatusCode, message: str = "", *, retry_after: float | None = None
    ) -> None:
        """Fail the next `count` bridge calls with status `code` (and a `retry-after-ms` trailer)."""
        self.faults.fail_next(count, code, message, retry_after=retry_after)

    def stall_streams(self) -> None:
        """Keep streams open but send nothing until `release_streams`."""
        self.faults.stall_streams()

    def release_streams(self) -> None:
        """Let stalled streams send what they accumulated, and go on."""
        self.faults.release_streams()

    def clear_faults(self) -> None:
        """Remove delay, pending failures and stalls."""
        self.faults.clear()

    # -- backdoor --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every bridge call received (oldest first, up to `record_limit`), admitted or not."""
        return list(self._gate.records) if self._gate is not None else []

    def serve_pages_of(self, size: int) -> None:
        """Serve GetCandles pages of at most `size` candles when a request leaves its page size unset."""
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValueError(f"page size must be from 1 to {MAX_PAGE_SIZE}, got {size}")
        if self._servicers is None:
            raise RuntimeError("the bridge is not started")
        self._servicers[0].page_size = size

    def clear_requests(self) -> None:
        """Forget the recorded calls."""
        if self._gate is not None:
            self._gate.records.clear()

    def orders_by_client_order_id(self, account: str = DEFAULT_ACCOUNT) -> dict[str, PaperOrder]:
        """Every order of `account`, keyed by client_order_id, as the broker holds it."""
        return self.broker.orders_by_client_order_id(account)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
