"""The `broker_plugins` entry point of this distribution: the `memory` gateway, and its harness."""

from __future__ import annotations

from typing import Any

from broker_plugins import InvalidRequestError, RegisterGateway, hookimpl
from memory_broker._gateway import MemoryBrokerGateway


def create_gateway(**options: Any) -> MemoryBrokerGateway:
    """A `MemoryBrokerGateway` from a host's keyword options; an unknown option is an error."""
    try:
        return MemoryBrokerGateway(**options)
    except TypeError as exc:
        raise InvalidRequestError(f"memory gateway: {exc}") from None


@hookimpl
def register_broker_gateways(register: RegisterGateway) -> None:
    """Offer the `memory` gateway."""
    register(
        "memory",
        create_gateway,
        description="A paper broker in memory, behind a link that can be cut (an example plugin)",
        capabilities=MemoryBrokerGateway.CAPABILITIES,
    )


@hookimpl
def provide_conformance_harness(gateway_name: str) -> object | None:
    """The conformance harness of the `memory` gateway, for `pytest --pyargs conformance_tests`."""
    if gateway_name != "memory":
        return None
    # Imported only when asked: hosts that never run the suite do not import it.
    from memory_broker.harness import MemoryBrokerHarness  # noqa: PLC0415

    return MemoryBrokerHarness()
