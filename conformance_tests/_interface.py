"""IF clauses: the gateway is an `IBrokerGateway`, and what it declares holds together."""

from __future__ import annotations

import inspect

from broker_plugins import Capability, ConnectionState, IBrokerGateway
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import BreakMode, ConformanceHarness
from conformance_tests._support import expect

__all__ = ["InterfaceClauses"]

_ASYNC_METHODS = (
    "connect",
    "disconnect",
    "__aenter__",
    "__aexit__",
    "health_check",
    "get_candles",
    "get_quote",
    "get_instrument",
    "place_order",
    "cancel_order",
    "modify_order",
    "get_order",
    "get_orders",
    "get_positions",
    "get_balance",
)
_STREAMS = ("stream_quotes", "stream_order_updates")
_MEMBERS = (*(name for name in dir(IBrokerGateway) if not name.startswith("_")), "__aenter__", "__aexit__")
_STREAM_CAPABILITIES = frozenset({Capability.QUOTE_STREAM, Capability.ORDER_UPDATE_STREAM})


class InterfaceClauses(SuiteBase):
    """IF-1 to IF-3."""

    @clause("IF-1")
    async def test_if1_the_gateway_satisfies_the_contract(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """IF-1: a new gateway is an unconnected `IBrokerGateway` named as the harness says, with
        `async` I/O methods."""
        harness = started_broker_harness
        gateway = harness.create_gateway(GENEROUS)
        missing = [name for name in _MEMBERS if not hasattr(gateway, name)]
        expect(not missing, "IF-1", f"{type(gateway).__name__} lacks {', '.join(missing)} of IBrokerGateway")
        expect(
            isinstance(gateway, IBrokerGateway),
            "IF-1",
            f"{type(gateway).__name__} is not an IBrokerGateway",
        )
        not_async = [
            name for name in _ASYNC_METHODS if not inspect.iscoroutinefunction(getattr(gateway, name))
        ]
        expect(not not_async, "IF-1", f"these methods must be `async def`: {', '.join(not_async)}")
        not_callable = [name for name in _STREAMS if not callable(getattr(gateway, name))]
        expect(not not_callable, "IF-1", f"these must be callable: {', '.join(not_callable)}")
        expect(
            gateway.name == harness.gateway_name,
            "IF-1",
            f"gateway.name is {gateway.name!r}, but the harness is for {harness.gateway_name!r}",
        )
        expect(
            gateway.state is ConnectionState.DISCONNECTED,
            "IF-1",
            f"a new gateway must be DISCONNECTED until connect(); it is {gateway.state}",
        )

    @clause("IF-2")
    async def test_if2_capabilities_are_a_frozenset_of_capability(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """IF-2: `capabilities` is a frozenset of `Capability` members, the same on every read."""
        gateway = started_broker_harness.create_gateway(GENEROUS)
        capabilities = gateway.capabilities
        expect(
            isinstance(capabilities, frozenset),
            "IF-2",
            f"capabilities must be a frozenset, got {type(capabilities).__name__}",
        )
        strangers = [item for item in capabilities if not isinstance(item, Capability)]
        expect(not strangers, "IF-2", f"capabilities holds values that are not a Capability: {strangers!r}")
        expect(
            gateway.capabilities == capabilities,
            "IF-2",
            "capabilities changed between two reads; they describe the gateway and must not",
        )

    @clause("IF-3")
    async def test_if3_declared_capabilities_are_consistent(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """IF-3: STREAM_RESUME comes with a stream to resume, and HALF_OPEN_DETECTION is claimed
        exactly when the harness can black-hole the connection and names the detection bound."""
        harness = started_broker_harness
        capabilities = harness.create_gateway(GENEROUS).capabilities
        if Capability.STREAM_RESUME in capabilities:
            expect(
                bool(capabilities & _STREAM_CAPABILITIES),
                "IF-3",
                "STREAM_RESUME is declared without QUOTE_STREAM or ORDER_UPDATE_STREAM: no stream to resume",
            )
        bound = harness.half_open_bound
        expect(
            bound is None or bound > 0,
            "IF-3",
            f"the harness's half_open_bound must be a positive number of seconds or None, got {bound!r}",
        )
        can_prove = BreakMode.BLACKHOLE in harness.break_modes and bound is not None
        claims = Capability.HALF_OPEN_DETECTION in capabilities
        expect(
            not claims or can_prove,
            "IF-3",
            "the gateway declares HALF_OPEN_DETECTION, but the harness offers no BreakMode.BLACKHOLE "
            "and half_open_bound to prove it",
        )
        expect(
            claims or not can_prove,
            "IF-3",
            "the harness offers BreakMode.BLACKHOLE and a half_open_bound, but the gateway does not "
            "declare HALF_OPEN_DETECTION",
        )
