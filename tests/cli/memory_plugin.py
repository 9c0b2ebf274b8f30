"""An inline plugin for the CLI tests: the example's in-memory gateway, with an embedded backend.

It proves the CLI's embedded default goes through the hook, not through anything grpc-specific.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from memory_broker import MemoryBrokerGateway

from broker_plugins import IBrokerGateway, RegisterGateway, hookimpl


class RunningMemory:
    """The 'backend' of the memory gateway: nothing runs, so stop and start only count."""

    def __init__(self, backend: MemoryBackend) -> None:
        self._backend = backend

    @property
    def gateway_name(self) -> str:
        return "memory"

    @property
    def options(self) -> Mapping[str, object]:
        return {}

    @property
    def description(self) -> str:
        return "the in-memory test backend"

    async def stop(self) -> None:
        self._backend.stops += 1

    async def start(self) -> None:
        self._backend.starts += 1


class MemoryBackend:
    """Counts how often it ran; with `interrupt_after`, sends this process SIGINT once it runs."""

    def __init__(self, *, interrupt_after: float | None = None) -> None:
        self.entered = self.exited = self.stops = self.starts = 0
        self.served: list[list[str]] = []
        self._interrupt_after = interrupt_after

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RunningMemory]:
        self.entered += 1
        if self._interrupt_after is not None:
            # Scheduled from inside the command's event loop, so its SIGINT handler is installed.
            loop = asyncio.get_running_loop()
            loop.call_later(self._interrupt_after, os.kill, os.getpid(), signal.SIGINT)
        try:
            yield RunningMemory(self)
        finally:
            self.exited += 1

    def serve(self, argv: Sequence[str]) -> int:
        self.served.append(list(argv))
        return 0


class MemoryPlugin:
    """Registers gateway `memory` (built by `factory`) and offers `backend` as its embedded backend."""

    def __init__(
        self,
        backend: object | None = None,
        factory: Callable[..., IBrokerGateway] = MemoryBrokerGateway,
    ) -> None:
        self.backend = backend
        self.factory = factory

    @hookimpl
    def register_broker_gateways(self, register: RegisterGateway) -> None:
        register("memory", self.factory, description="in-memory test gateway", capabilities=["quote_stream"])

    @hookimpl
    def provide_embedded_backend(self, gateway_name: str) -> object | None:
        return self.backend if gateway_name == "memory" else None


class BrokenPlugin:
    """A plugin whose registration fails: the CLI lists it with the reason."""

    @hookimpl
    def register_broker_gateways(self, register: RegisterGateway) -> None:
        raise RuntimeError("the vendor SDK is not installed")


class ExplodingGateway(MemoryBrokerGateway):
    """A gateway with a bug that bypasses `GatewayBase`'s guard: get_quote raises a RuntimeError."""

    async def get_quote(self, symbol: str) -> Any:
        raise RuntimeError("bug in a plugin")
