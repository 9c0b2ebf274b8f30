"""The reference bridge as the embedded backend of the `grpc` gateway (hook `provide_embedded_backend`).

A host with no bridge to talk to (`brokerctl` without `--target`) runs this one in its own process:
loopback only, no token, a fresh simulated market and paper account each time. It satisfies
`broker_plugins.cli.EmbeddedBackend` structurally, so this module imports nothing from the CLI.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from grpc_plugin.bridge import BridgeConfig, BridgeServer

__all__ = ["EmbeddedBridge", "RunningBridge"]

_STOP_GRACE = 0.5
"""Seconds calls in flight get when the embedded bridge stops: it is local, nothing is slow."""


class RunningBridge:
    """A started embedded bridge: the options that reach it, and a stop/start to stage an outage."""

    def __init__(self, server: BridgeServer) -> None:
        self._server = server

    @property
    def gateway_name(self) -> str:
        """The gateway that talks to this backend."""
        return "grpc"

    @property
    def options(self) -> Mapping[str, object]:
        """The gateway options that reach the bridge."""
        return {"target": self._server.address}

    @property
    def description(self) -> str:
        """One line for people: what runs, and where."""
        return f"the embedded reference bridge on {self._server.address}"

    @property
    def server(self) -> BridgeServer:
        """The bridge itself (for tests and tools that want its backdoor)."""
        return self._server

    async def stop(self) -> None:
        """Stop serving, as a bridge process that went away would; orders and positions are kept."""
        await self._server.stop(grace=_STOP_GRACE)

    async def start(self) -> None:
        """Serve again on the same address after `stop` (no-op while serving)."""
        if not self._server.listening:
            await self._server.start()


class EmbeddedBridge:
    """The reference bridge (simulated market, paper broker) run inside the host's process."""

    def __init__(self, *, seed: int = 0, tick_rate: float = 10.0) -> None:
        self._seed = seed
        self._tick_rate = tick_rate

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RunningBridge]:
        """Start a bridge on a free loopback port; stop it, and drop its state, on exit."""
        # The journal lives in a file so that orders survive `stop()`/`start()` like a real restart.
        with tempfile.TemporaryDirectory(prefix="brokerctl-bridge-") as directory:
            server = BridgeServer(
                BridgeConfig(
                    host="127.0.0.1",
                    port=0,
                    state_path=Path(directory) / "state.sqlite",
                    seed=self._seed,
                    tick_rate=self._tick_rate,
                    # One local user: a server-side budget would only add a way for a demo to fail.
                    budget=(),
                    # It shares the host's event loop: a disk wait per order would stall the host.
                    fsync=False,
                )
            )
            await server.start()
            try:
                yield RunningBridge(server)
            finally:
                await server.stop(grace=_STOP_GRACE)

    def serve(self, argv: Sequence[str]) -> int:
        """Run the bridge in the foreground with the options of `python -m grpc_plugin.bridge`."""
        # Imported here: only `serve` needs the bridge's command line and its logging setup.
        from grpc_plugin.bridge.__main__ import main  # noqa: PLC0415

        return main(list(argv))
