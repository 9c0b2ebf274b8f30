"""What a plugin returns from `provide_embedded_backend`: a backend a host runs in its own process.

The core never imports a plugin, so these are protocols: a plugin's object matches them by shape.
`brokerctl` uses one when no bridge was named, for `serve`, and for the reconnect in `demo`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

__all__ = ["EmbeddedBackend", "RunningBackend"]


@runtime_checkable
class RunningBackend(Protocol):
    """A started backend: how to reach it, and how to take it down and up again."""

    @property
    def gateway_name(self) -> str:
        """The registered gateway that talks to this backend."""
        ...

    @property
    def options(self) -> Mapping[str, object]:
        """Gateway options that reach the backend (for example `{"address": "127.0.0.1:50051"}`)."""
        ...

    @property
    def description(self) -> str:
        """One line for people: what runs, and where."""
        ...

    async def stop(self) -> None:
        """Stop serving, as a backend process that went away would; its state is kept."""
        ...

    async def start(self) -> None:
        """Serve again at the same address after `stop`."""
        ...


@runtime_checkable
class EmbeddedBackend(Protocol):
    """A backend a plugin can run inside the host's process, on loopback."""

    def running(self) -> AbstractAsyncContextManager[RunningBackend]:
        """Start the backend; it stops, and its state goes, when the context exits."""
        ...

    def serve(self, argv: Sequence[str]) -> int:
        """Run the backend in the foreground with its own command-line options; returns an exit code."""
        ...
