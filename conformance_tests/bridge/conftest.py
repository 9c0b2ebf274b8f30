"""Fixtures of the bridge kit: the wire to the bridge (one per session), the clause being judged,
and the instrument the clauses use. Loaded only when the kit is collected (`--bridge-target`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import grpc
import pytest

from conformance_tests.bridge._check import Check, KitError
from conformance_tests.bridge._clauses import clause
from conformance_tests.bridge._settings import BridgeSettings
from conformance_tests.bridge._wire import AUTH, Wire
from conformance_tests.bridge.plugin import SETTINGS
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2

_CLAUSE_IN_NAME = re.compile(r"test_bk_([a-z]+)(\d+)_")


@pytest.fixture(scope="session")
def bridge_settings(pytestconfig: pytest.Config) -> BridgeSettings:
    """The kit's settings, from its command-line options."""
    return pytestconfig.stash[SETTINGS]


@pytest.fixture(scope="session")
def wire(bridge_settings: BridgeSettings) -> Iterator[Wire]:
    """The channels to the bridge; the first thing it does is check that the bridge answers."""
    wire = Wire(bridge_settings)
    try:
        outcome = wire.health_check()
        if outcome.code is grpc.StatusCode.UNAUTHENTICATED:
            pytest.fail(
                f"the bridge at {bridge_settings.target} refuses the kit's token on Health.Check "
                f"({outcome}): pass the right one with --bridge-token-env NAME or --bridge-token-file PATH",
                pytrace=False,
            )
        if not outcome.ok and outcome.code is not grpc.StatusCode.NOT_FOUND:
            pytest.fail(
                f"the bridge at {bridge_settings.target} does not answer Health.Check: {outcome}",
                pytrace=False,
            )
        yield wire
    finally:
        wire.close()


@pytest.fixture
def check(request: pytest.FixtureRequest, wire: Wire) -> Check:
    """The clause this test judges (named by the test: test_bk_auth1_... is BK-AUTH-1)."""
    match = _CLAUSE_IN_NAME.match(request.node.name)
    if match is None:
        raise KitError(f"{request.node.name} does not name a clause")
    judged = clause(f"BK-{match[1].upper()}-{match[2]}")
    budget = wire.settings.budget
    # In the JUnit report as a property of the test case (record_property would warn under xunit2).
    request.node.user_properties.append(("clause", judged.id))
    current = Check(judged, wire, budget.calls if budget else 0)
    current.require()
    return current


@pytest.fixture(scope="session")
def instrument(wire: Wire) -> market_data_pb2.Instrument:
    """The instrument the clauses use: --bridge-symbol, or the first one the bridge lists."""
    symbol = wire.settings.symbol
    stub = wire.main.market
    if symbol is None:
        listed = wire.unary(
            stub.ListInstruments, market_data_pb2.ListInstrumentsRequest(), wire.metadata(AUTH), 10.0
        )
        if not listed.ok or not listed.reply.instruments:
            pytest.fail(f"ListInstruments gave no instrument to work with: {listed}", pytrace=False)
        return listed.reply.instruments[0]  # type: ignore[no-any-return]
    found = wire.unary(
        stub.GetInstrument, market_data_pb2.GetInstrumentRequest(symbol=symbol), wire.metadata(AUTH), 10.0
    )
    if not found.ok:
        pytest.fail(f"--bridge-symbol {symbol}: GetInstrument answered {found}", pytrace=False)
    return found.reply.instrument  # type: ignore[no-any-return]
