"""The `grpc` plugin: registers `GrpcBrokerGateway` through the same hook third-party plugins use."""

from __future__ import annotations

from broker_plugins import RegisterGateway, hookimpl
from grpc_plugin._config import OPTIONS
from grpc_plugin._gateway import GrpcBrokerGateway

__all__ = ["provide_conformance_harness", "provide_embedded_backend", "register_broker_gateways"]


@hookimpl
def register_broker_gateways(register: RegisterGateway) -> None:
    """Register the `grpc` gateway."""
    register(
        "grpc",
        GrpcBrokerGateway,
        description="A bridge server over gRPC (broker.bridge.v1), e.g. one in front of Kiwoom, KIS or eBest",
        capabilities=GrpcBrokerGateway.CAPABILITIES,
        options=OPTIONS,
    )


@hookimpl
def provide_embedded_backend(gateway_name: str) -> object | None:
    """The reference bridge, run in the host's process, as the default backend of the `grpc` gateway."""
    if gateway_name != "grpc":
        return None
    # Imported only when asked: hosts that never embed a bridge do not load the server.
    from grpc_plugin.embedded import EmbeddedBridge  # noqa: PLC0415

    return EmbeddedBridge()


@hookimpl
def provide_conformance_harness(gateway_name: str) -> object | None:
    """The reference bridge behind a fault proxy, for `--broker-gateway grpc`."""
    if gateway_name != "grpc":
        return None
    # Imported here: only a conformance run needs the suite (and pytest) installed.
    from grpc_plugin.harness import GrpcHarness  # noqa: PLC0415

    return GrpcHarness()
