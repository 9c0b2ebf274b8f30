"""Running the conformance suite from a test with pytester, and reading what it decided per clause."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "memory_broker"

_CLAUSE_IN_NAME = re.compile(r"test_([a-z]{2})(\d+)_")
_CLAUSE_IN_TEXT = re.compile(r"\[([A-Z]{2}-\d+)\]")

SUITE_ON_BROKEN_GATEWAY = """
import pytest

from conformance_tests import BrokerConformanceSuite
from memory_broker.harness import MemoryBrokerHarness
from tests.conformance.broken_gateways import {gateway}


@pytest.fixture
def broker_harness():
    return MemoryBrokerHarness(gateway_type={gateway})


class TestBrokenGateway(BrokerConformanceSuite):
    pass
"""


@attrs.frozen
class ClauseResult:
    """What the suite decided on one clause: its outcome and, unless it passed, the report text."""

    outcome: str
    text: str = ""


def prepare(pytester: pytest.Pytester) -> None:
    """Configure a run as an outsider would, with the example and this project importable."""
    # The outer run imported the suite already, so an in-process run cannot rewrite its asserts (it
    # does not need to: every failure message is spelled out).
    pytester.makeini(
        "[pytest]\n"
        "asyncio_default_fixture_loop_scope = function\n"
        f"pythonpath = {EXAMPLE / 'src'} {ROOT}\n"
        "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"
    )


def run_suite(pytester: pytest.Pytester, module: str) -> dict[str, ClauseResult]:
    """Run a test module that subclasses the suite, in a fresh process, and read each clause's result.

    A fresh process, because the rate-limit clauses count arrivals by the millisecond: a process
    that has run the suite many times over carries a heap whose garbage collection can stall the
    event loop long enough to blur them.
    """
    prepare(pytester)
    pytester.makepyfile(test_suite=module)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml=report.xml")
    return results_by_clause(pytester.path / "report.xml")


def clause_of(name: str) -> str:
    """`RL-2` for `test_rl2_...`: the clause a test of the suite checks."""
    match = _CLAUSE_IN_NAME.search(name)
    assert match, f"{name} does not name a clause"
    return f"{match[1].upper()}-{match[2]}"


def results_by_clause(report: Path) -> dict[str, ClauseResult]:
    """Each clause's outcome in a JUnit XML report: passed, failed, error (setup/teardown) or skipped."""
    results: dict[str, ClauseResult] = {}
    for case in ET.parse(report).iter("testcase"):
        outcome, text = "passed", ""
        for kind in ("skipped", "error", "failure"):  # the last one found wins
            element = case.find(kind)
            if element is not None:
                outcome = "failed" if kind == "failure" else kind
                text = f"{element.get('message', '')}\n{element.text or ''}"
        results[clause_of(case.get("name", ""))] = ClauseResult(outcome, text)
    return results


def named_clauses(text: str) -> set[str]:
    """The clause ids a failure report names, like `[RC-5]`."""
    return set(_CLAUSE_IN_TEXT.findall(text))
