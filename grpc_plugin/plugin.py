"""The `grpc` plugin: registers `GrpcBrokerGateway` through the same hook third-party plugins use."""

from __future__ import annotations

from broker_plugins import RegisterGateway, hookimpl
from grpc_plugin._gateway import GrpcBrokerGateway

__all__ = ["register_broker_gateways"]


@hookimpl
def register_broker_gateways(register: RegisterGateway) -> None:
    """Register the `grpc` gateway."""
    register(
        "grpc",
        GrpcBrokerGateway,
        description="A bridge server over gRPC (broker.bridge.v1), e.g. one in front of Kiwoom, KIS or eBest",
        capabilities=GrpcBrokerGateway.CAPABILITIES,
    )
