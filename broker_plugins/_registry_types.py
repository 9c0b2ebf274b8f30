"""What a plugin hands the registry: a gateway factory, through a `register` callback."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import attrs

from broker_plugins._enums import Capability
from broker_plugins._gateway import IBrokerGateway
from broker_plugins._options import GatewayOption

__all__ = ["GatewayFactory", "GatewayInfo", "RegisterGateway"]


class GatewayFactory(Protocol):
    """Builds a gateway from keyword options; raises `InvalidRequestError` naming a bad option."""

    def __call__(self, **options: Any) -> IBrokerGateway: ...


class RegisterGateway(Protocol):
    """The callback `register_broker_gateways` receives."""

    def __call__(
        self,
        name: str,
        factory: GatewayFactory,
        *,
        description: str = "",
        capabilities: Iterable[Capability] = (),
        options: Sequence[GatewayOption] = (),
    ) -> None: ...


@attrs.frozen(kw_only=True)
class GatewayInfo:
    """A registered gateway: its name, the plugin and distribution that provide it, and what it declares."""

    name: str
    plugin: str
    distribution: str | None
    version: str | None
    description: str
    capabilities: frozenset[Capability]
    options: tuple[GatewayOption, ...] = ()
    """The options the factory takes that a host can set from text (flags, a config file)."""
