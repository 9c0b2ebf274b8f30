"""The suite catches broken gateways: each fails on exactly the clauses it breaks, and no other."""

from __future__ import annotations

import pytest

from tests.conformance.broken_gateways import EXPECTED_FAILURES
from tests.conformance.suite_runs import SUITE_ON_BROKEN_GATEWAY, named_clauses, run_suite


@pytest.mark.slow
@pytest.mark.parametrize(
    ("gateway", "expected"),
    [
        pytest.param(gateway.__name__, clauses, id=gateway.__name__)
        for gateway, clauses in EXPECTED_FAILURES.items()
    ],
)
def test_the_suite_fails_a_broken_gateway_on_exactly_its_clauses(
    pytester: pytest.Pytester, gateway: str, expected: set[str]
) -> None:
    results = run_suite(pytester, SUITE_ON_BROKEN_GATEWAY.format(gateway=gateway))

    failed = {clause for clause, result in results.items() if result.outcome != "passed"}
    details = "\n\n".join(
        f"{clause}: {results[clause].outcome}\n{results[clause].text}" for clause in sorted(failed)
    )
    assert failed == expected, f"{gateway} failed {sorted(failed)}, expected {sorted(expected)}\n{details}"
    for clause in failed:
        assert results[clause].outcome == "failed", f"{clause}: {results[clause].outcome}"
        # The failure names its own clause, and only that one.
        assert named_clauses(results[clause].text) == {clause}, results[clause].text
