"""The kit fails each deliberately broken bridge on exactly the clauses it breaks."""

from __future__ import annotations

import grpc
import pytest

from conformance_tests.bridge import CLAUSES
from grpc_plugin.bridge import BridgeServer, Window
from grpc_plugin.bridge._gate import Context
from grpc_plugin.bridge._market_service import MarketDataServicer
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2 as cal
from tests.bridge_kit.broken import (
    TARGETS,
    BridgeOne,
    BridgeThree,
    BridgeTwo,
    BudgetBridgeOne,
    BudgetBridgeTwo,
    ImpatientBridge,
)
from tests.bridge_kit.running import bridge_thread, run_kit_inline

CHEAP = "not bk_ka1 and not bk_bud"  # every clause but the slow ones, which have bridges of their own
BUDGET = Window(10, 0.5)
RUNS: dict[type[BridgeServer], tuple[dict[str, object], list[str]]] = {
    BridgeOne: ({}, ["--bridge-paper", "-k", CHEAP]),
    BridgeTwo: ({}, ["--bridge-paper", "-k", CHEAP]),
    BridgeThree: ({}, ["--bridge-paper", "-k", CHEAP]),
    BudgetBridgeOne: ({"budget": (BUDGET,)}, ["--bridge-budget", "10/0.5", "-k", "bk_bud"]),
    BudgetBridgeTwo: ({"budget": (BUDGET,)}, ["--bridge-budget", "10/0.5", "-k", "bk_bud"]),
    ImpatientBridge: ({}, ["-k", "bk_ka1 or bk_health1"]),
}
# Clauses that cannot be judged on a bridge because of another of its breakages, and say so.
SKIPPED: dict[type[BridgeServer], set[str]] = {BridgeTwo: {"BK-CD-3"}}


def test_every_clause_is_broken_by_some_bridge() -> None:
    broken = set().union(*TARGETS.values())
    assert broken == {clause.id for clause in CLAUSES}


@pytest.mark.parametrize("bridge_type", list(RUNS), ids=lambda t: t.__name__)
def test_the_kit_fails_a_broken_bridge_on_exactly_what_it_breaks(
    pytester: pytest.Pytester, bridge_type: type[BridgeServer]
) -> None:
    config, flags = RUNS[bridge_type]
    with bridge_thread(bridge_type, **config) as bridge:
        verdicts = run_kit_inline(pytester, bridge.address, *flags)
    failed = {clause for clause, verdict in verdicts.items() if verdict.outcome != "passed"}
    expected = TARGETS[bridge_type] | SKIPPED.get(bridge_type, set())
    report = "\n".join(f"{c}: {v.outcome} {v.text[:300]}" for c, v in sorted(verdicts.items()) if c in failed)
    assert failed == expected, report
    for clause in TARGETS[bridge_type]:
        verdict = verdicts[clause]
        assert verdict.outcome == "failed", (clause, verdict)
        # Each failure names its clause, what was sent, what came back, and the contract's sentence.
        assert verdict.text.removeprefix("Failed: ").startswith(f"[{clause}] sent "), verdict.text
        assert "; got " in verdict.text
        assert "(docs/bridge-contract.md, " in verdict.text
    for clause in SKIPPED.get(bridge_type, set()):
        assert verdicts[clause].outcome == "skipped", (clause, verdicts[clause])


class _MarketBeforeCalendars(MarketDataServicer):
    """A MarketDataService from before GetMarketCalendar: gRPC's answer for a method it lacks."""

    async def GetMarketCalendar(
        self, request: cal.GetMarketCalendarRequest, context: Context
    ) -> cal.GetMarketCalendarResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        raise AssertionError("abort raises")


class OlderBridge(BridgeServer):
    """A bridge older than the optional RPCs: not broken, only older."""

    market_data_servicer = _MarketBeforeCalendars


def test_a_bridge_older_than_an_optional_rpc_is_not_failed_for_lacking_it(pytester: pytest.Pytester) -> None:
    with bridge_thread(OlderBridge) as bridge:
        found = run_kit_inline(pytester, bridge.address, "-k", "bk_md4 or bk_auth1")
    assert found["BK-AUTH-1"].outcome == "passed", found["BK-AUTH-1"].text
    assert found["BK-MD-4"].outcome == "skipped"
    assert "does not offer GetMarketCalendar" in found["BK-MD-4"].text
