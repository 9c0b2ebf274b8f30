"""The suite catches broken gateways: each fails every clause it breaks, naming it, and still passes
the cheap clauses of a gateway that works (`SANITY`)."""

from __future__ import annotations

import pytest

from tests.conformance.broken_gateways import EXPECTED_FAILURES, SANITY
from tests.conformance.suite_plan import group_of
from tests.conformance.suite_runs import StartedRun, describe, named_clauses

_RUN_BOUND = 100.0


@pytest.mark.parametrize(
    ("gateway", "expected"),
    [
        pytest.param(gateway.__name__, clauses, id=gateway.__name__)
        for gateway, clauses in EXPECTED_FAILURES.items()
    ],
)
def test_the_suite_fails_a_broken_gateway_on_its_clauses(
    suite_runs: dict[str, StartedRun], gateway: str, expected: frozenset[str]
) -> None:
    results = suite_runs[group_of(gateway)].results(_RUN_BOUND).get(f"Test{gateway}", {})

    outcomes = {clause: result.outcome for clause, result in results.items()}
    wanted = dict.fromkeys(expected, "failed") | dict.fromkeys(SANITY - expected, "passed")
    assert outcomes == wanted, f"{gateway}: {outcomes}\n{describe(results)}"
    for clause in expected:
        # The failure names its own clause, and only that one.
        assert named_clauses(results[clause].text) == {clause}, results[clause].text


def test_a_leak_report_names_the_tasks_the_gateway_started(suite_runs: dict[str, StartedRun]) -> None:
    results = suite_runs[group_of("UnownedTaskGateway")].results(_RUN_BOUND)["TestUnownedTaskGateway"]

    text = results["LC-4"].text
    assert "the gateway started these and left them running: memory poller (_keep_alive)" in text, text
