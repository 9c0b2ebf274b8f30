"""Which runs of the suite the self-test makes: the whole suite once against the example plugin and
once against the grpc plugin (each in two processes, one per half of the clause table), and each
broken gateway on its own clauses plus `SANITY`, in a few processes balanced by how long their
clauses take. All of them run side by side."""

from __future__ import annotations

from tests.conformance.broken_gateways import EXPECTED_FAILURES, SANITY
from tests.conformance.suite_runs import EXAMPLE, SuiteRun, selector

__all__ = ["BROKEN_GROUPS", "EXAMPLE_RUN", "GRPC_RUN", "HALVES", "group_of", "halves", "planned_runs"]

EXAMPLE_RUN = "example"
GRPC_RUN = "grpc"
BROKEN_GROUPS = 4
HALVES = ("test_if or test_lc or test_rl", "test_rc or test_or or test_hc or test_dv or test_bh or test_mc")
"""The clause table in two halves, in its order: the groups of clauses, as test-name prefixes."""

# Seconds a clause takes against a broken memory gateway that fails it (confirmations included);
# the rest take about one.
_COST = {"RC-7": 6.0, "RC-8": 3.0, "BH-3": 2.5, "RL-9": 3.0, "RL-10": 3.0, "RL-14": 2.0, "LC-11": 1.5}

_BROKEN_MODULE = """
import pytest

from conformance_tests import BrokerConformanceSuite
from memory_broker.harness import MemoryBrokerHarness
from tests.conformance.broken_gateways import EXPECTED_FAILURES

GATEWAYS = {{gateway.__name__: gateway for gateway in EXPECTED_FAILURES}}
{classes}
"""
_BROKEN_CLASS = """

class Test{name}(BrokerConformanceSuite):
    @pytest.fixture
    def broker_harness(self):
        return MemoryBrokerHarness(gateway_type=GATEWAYS["{name}"])
"""


def _cost(clauses: frozenset[str]) -> float:
    return sum(_COST.get(clause, 1.0) for clause in clauses) + 0.5


def _groups() -> list[list[str]]:
    """The broken gateways' names in `BROKEN_GROUPS` groups of about equal cost (longest first)."""
    groups: list[list[str]] = [[] for _ in range(BROKEN_GROUPS)]
    totals = [0.0] * BROKEN_GROUPS
    for gateway, clauses in sorted(EXPECTED_FAILURES.items(), key=lambda item: -_cost(item[1])):
        cheapest = totals.index(min(totals))
        groups[cheapest].append(gateway.__name__)
        totals[cheapest] += _cost(clauses)
    return groups


def group_of(name: str) -> str:
    """The run that checks the broken gateway `name`."""
    for number, group in enumerate(_groups()):
        if name in group:
            return f"broken{number}"
    raise KeyError(name)


def halves(run: str) -> list[str]:
    """The names of the two runs that make up the whole suite against `run`, in the table's order."""
    return [f"{run}{half}" for half in range(len(HALVES))]


def planned_runs() -> list[SuiteRun]:
    example = (EXAMPLE / "tests" / "test_conformance.py").read_text()
    by_name = ("--pyargs", "conformance_tests", "--broker-gateway", "grpc")
    runs = []
    for half, select in enumerate(HALVES):
        runs.append(SuiteRun(f"{EXAMPLE_RUN}{half}", module=example, select=select))
        runs.append(SuiteRun(f"{GRPC_RUN}{half}", arguments=by_name, select=select))
    targets = {gateway.__name__: clauses for gateway, clauses in EXPECTED_FAILURES.items()}
    for number, group in enumerate(_groups()):
        classes = "".join(_BROKEN_CLASS.format(name=name) for name in group)
        select = " or ".join(selector(f"Test{name}", targets[name] | SANITY) for name in group)
        runs.append(SuiteRun(f"broken{number}", module=_BROKEN_MODULE.format(classes=classes), select=select))
    return runs
