"""The example plugin passes every clause, both as its author runs the suite and by gateway name; the
clauses run in the README table's order; and the pytest plugin stays out of the way of runs that do
not use it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conformance.suite_plan import EXAMPLE_RUN, halves
from tests.conformance.suite_runs import ROOT, StartedRun, describe, whole

_RUN_BOUND = 100.0
_TABLE_ROW = re.compile(r"^\| ([A-Z]{2}-\d+) \| (.+) \|$", re.MULTILINE)


def readme_clauses() -> list[str]:
    """The clause ids of the README's table, in its order."""
    section = (ROOT / "README.md").read_text().partition("## Testing your own gateway plugin")[2]
    return [match[1] for match in _TABLE_ROW.finditer(section.partition("\n## ")[0])]


def prepare(pytester: pytest.Pytester) -> None:
    """Configure a run as an outsider would, with the example and this project importable."""
    # The outer run imported the suite already, so an in-process run cannot rewrite its asserts (it
    # does not need to: every failure message is spelled out).
    pytester.makeini(
        "[pytest]\n"
        "asyncio_default_fixture_loop_scope = function\n"
        f"pythonpath = {ROOT / 'examples' / 'memory_broker' / 'src'} {ROOT}\n"
        "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"
    )


def _install_entry_point(pytester: pytest.Pytester) -> None:
    """What `pip install` of the example leaves for the registry to find: its dist-info."""
    site = Path(pytester.mkdir("site"))
    info = site / "memory_broker_example-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: memory-broker-example\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[broker_plugins]\nmemory = memory_broker.plugin\n")
    pytester.syspathinsert(site)


def test_the_example_plugin_passes_every_clause_in_the_readme_order(
    suite_runs: dict[str, StartedRun],
) -> None:
    results = whole(suite_runs, halves(EXAMPLE_RUN), _RUN_BOUND)

    assert list(results) == readme_clauses(), "the clauses ran in another order than the README's table"
    assert {result.outcome for result in results.values()} == {"passed"}, describe(results)


def test_the_suite_runs_by_gateway_name_with_no_test_code(pytester: pytest.Pytester) -> None:
    prepare(pytester)
    _install_entry_point(pytester)

    result = pytester.runpytest(
        "--pyargs", "conformance_tests", "--broker-gateway", "memory", "-k", "if1 or lc2 or rc2"
    )

    result.assert_outcomes(passed=3)


@pytest.mark.slow
def test_by_name_outside_any_project_the_suite_runs_without_warnings(pytester: pytest.Pytester) -> None:
    # No pytest configuration at all here: pytest-asyncio would warn that its loop scope is unset.
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance_tests", "--broker-gateway", "grpc", "-k", "if1"
    )

    result.assert_outcomes(passed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "DeprecationWarning" not in output
    assert "is unset" not in output


def test_collected_without_the_option_the_suite_skips_saying_how_to_run_it(pytester: pytest.Pytester) -> None:
    prepare(pytester)

    result = pytester.runpytest("--pyargs", "conformance_tests", "-rs")

    result.assert_outcomes(skipped=len(readme_clauses()))
    result.stdout.fnmatch_lines(["*run with --broker-gateway NAME*"])


def test_a_gateway_without_a_harness_is_a_usage_error_naming_it(pytester: pytest.Pytester) -> None:
    prepare(pytester)

    result = pytester.runpytest("--pyargs", "conformance_tests", "--broker-gateway", "nonesuch")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*no installed plugin provides a conformance harness for gateway 'nonesuch'*"]
    )


def test_the_option_is_offered(pytester: pytest.Pytester) -> None:
    prepare(pytester)

    result = pytester.runpytest("--help")

    result.stdout.fnmatch_lines(["*--broker-gateway=NAME*"])


def test_the_plugin_adds_nothing_to_a_run_that_does_not_use_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_plain(request):
            assert "conformance_tests._suite" not in sys.modules
            assert "broker_harness" not in request.fixturenames
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)


def test_the_base_class_alone_is_not_collected(pytester: pytest.Pytester) -> None:
    prepare(pytester)
    pytester.makepyfile(test_base="from conformance_tests import BrokerConformanceSuite\n")

    result = pytester.runpytest()

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_harness_that_is_not_one_errors_saying_what_it_lacks(pytester: pytest.Pytester) -> None:
    prepare(pytester)
    pytester.makepyfile(
        test_bad="""
        import pytest
        from conformance_tests import BrokerConformanceSuite

        class HalfAHarness:
            version = 1

            async def start(self):
                pass

        @pytest.fixture
        def broker_harness():
            return HalfAHarness()

        class TestHalf(BrokerConformanceSuite):
            pass
        """
    )

    result = pytester.runpytest("-k", "if1")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*HalfAHarness, which is not a ConformanceHarness (missing: *backend_orders*"]
    )
