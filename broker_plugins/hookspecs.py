"""The hooks a `broker_plugins` plugin implements (pluggy project name `broker_plugins`)."""

from __future__ import annotations

import pluggy

from broker_plugins._registry_types import RegisterGateway

__all__ = [
    "hookimpl",
    "hookspec",
    "provide_conformance_harness",
    "provide_embedded_backend",
    "register_broker_gateways",
]

hookspec = pluggy.HookspecMarker("broker_plugins")
hookimpl = pluggy.HookimplMarker("broker_plugins")


@hookspec
def register_broker_gateways(register: RegisterGateway) -> None:
    """Call `register(name, factory, ...)` once for each gateway this plugin provides."""


@hookspec(firstresult=True)
def provide_conformance_harness(gateway_name: str) -> object | None:
    """Return a conformance-suite harness for `gateway_name`, or None when this plugin has none."""


@hookspec(firstresult=True)
def provide_embedded_backend(gateway_name: str) -> object | None:
    """Return an in-process backend for `gateway_name` (`broker_plugins.cli.EmbeddedBackend`), or None."""
