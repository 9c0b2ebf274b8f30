"""In-process `watch`, `demo` and `conformance`: streams across a reconnect, and verdicts per clause."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from broker_plugins.cli import ExitCode
from broker_plugins.cli._conformance import _explain, parse_report
from tests.cli.conftest import TOKEN, RunCli, Served, read_line

REPO_ROOT = Path(__file__).resolve().parents[2]
MEMORY_EXAMPLE = REPO_ROOT / "examples" / "memory_broker" / "src"


def test_watch_prints_quotes_as_json_lines_and_stops_after_count(cli: RunCli) -> None:
    result = cli("watch", "AAPL", "MSFT", "--count", "6", "--json")
    assert result.code == ExitCode.OK, result.err
    events = result.lines()
    assert len(events) == 6
    assert {event["symbol"] for event in events} == {"AAPL", "MSFT"}
    assert all(event["type"] == "quote" and event["connection"] == "connected" for event in events)
    assert "watching AAPL, MSFT" in result.err


def test_watch_stops_after_a_duration(cli: RunCli) -> None:
    started = time.monotonic()
    result = cli("watch", "005930", "--duration", "0.5")
    assert result.code == ExitCode.OK
    assert time.monotonic() - started < 5
    assert "[connected]" in result.out.splitlines()[0]


@pytest.mark.slow
def test_watch_shows_a_reconnect_and_resumes(
    cli: RunCli, serve: Callable[..., Served], tmp_path: Path
) -> None:
    state = str(tmp_path / "bridge.sqlite")
    first = serve("--state", state)
    port = first.address.rsplit(":", 1)[1]
    restarted: list[Served] = []

    def restart() -> None:
        time.sleep(1.0)
        first.process.kill()  # the bridge dies without a word
        first.process.wait(10)
        time.sleep(0.5)
        restarted.append(serve("--state", state, "--port", port))

    outage = threading.Thread(target=restart)
    outage.start()
    try:
        result = cli("--target", first.address, "watch", "AAPL", "--duration", "6", "--json")
    finally:
        outage.join(30)
    assert restarted, "the bridge was not restarted"
    assert result.code == ExitCode.OK, result.err
    events = result.lines()
    kinds = [event["type"] if event["type"] == "quote" else event["state"] for event in events]
    assert "reconnecting" in kinds
    lost = kinds.index("reconnecting")
    assert "quote" in kinds[:lost]
    back = kinds.index("connected", lost)
    assert "quote" in kinds[back:], "quotes did not resume after the reconnect"


def test_demo_runs_every_step_and_shows_the_reconnect(cli: RunCli) -> None:
    result = cli("demo", "--json", "--outage", "0.2", "--symbol", "AAPL", "--quantity", "2")
    assert result.code == ExitCode.OK, result.err
    report = result.json()
    assert isinstance(report, dict)
    assert report["instrument"]["symbol"] == "AAPL"
    assert len(report["candles"]) == 5
    assert report["filled_order"]["status"] == "filled"
    assert report["order_after_restart"]["order_id"] == report["order"]["order_id"]
    assert [p["symbol"] for p in report["positions"]] == ["AAPL"]
    assert set(report["balance"]) == {"currency", "cash", "buying_power", "equity"}
    assert report["reconnect"]["quotes_before"] >= 3
    assert report["reconnect"]["quotes_after"] >= 3
    states = [change["state"] for change in report["connection_states"]]
    assert states[:2] == ["connecting", "connected"]
    assert states[2:4] == ["reconnecting", "connected"]
    assert states[-1] == "closed"


def test_demo_refuses_a_target_and_bad_input_before_starting(cli: RunCli) -> None:
    assert cli("--target", "127.0.0.1:9", "demo").code == ExitCode.USAGE
    negative = cli("demo", "--quantity", "-1")
    assert negative.code == ExitCode.USAGE
    assert "embedded" not in negative.err


def test_the_demo_text_walks_through_each_step(cli: RunCli) -> None:
    result = cli("demo", "--outage", "0.1")
    assert result.code == ExitCode.OK, result.err
    for heading in ("Instrument 005930", "Place a market order", "Positions", "Balance", "Reconnect"):
        assert heading in result.out
    assert "-- connection reconnecting" in result.out
    assert "reconnected: the same stream resumed" in result.out


# -- conformance -------------------------------------------------------------------------------------

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="conformance_tests.test_conformance.TestGatewayConformance"
  name="test_rl1_sequential_calls_keep_the_limit" time="1.0"/>
<testcase classname="c" name="test_rc2_recover_alone" time="2.0">
  <failure message="AssertionError: [RC-2] not connected within 5 s&#10;second line">tb</failure>
</testcase>
<testcase classname="c" name="test_lc5_no_fds_left" time="0.1">
  <error message="fixture broke">tb</error>
</testcase>
<testcase classname="c" name="test_bh1_silent_peer" time="0.0">
  <skipped message="BLACKHOLE is not supported by this harness" type="pytest.skip"/>
</testcase>
<testcase classname="c" name="helper_check" time="0.0"/>
</testsuite></testsuites>
"""


def test_a_junit_report_becomes_one_verdict_per_clause() -> None:
    verdicts = [(v.clause, v.verdict, v.message) for v in parse_report(REPORT)]
    assert verdicts == [
        ("RL-1", "passed", ""),
        ("RC-2", "failed", "AssertionError: [RC-2] not connected within 5 s"),
        ("LC-5", "error", "fixture broke"),
        ("BH-1", "skipped", "BLACKHOLE is not supported by this harness"),
        ("helper_check", "passed", ""),
    ]


def test_a_suite_without_the_gateway_option_gets_a_clear_explanation() -> None:
    stderr = (
        "ERROR: usage: pytest [options]\npytest: error: unrecognized arguments: --broker-gateway memory\n"
    )
    assert "has no --broker-gateway option" in _explain(stderr, "", "memory")
    assert _explain("", "", "x") == "pytest gave no reason"
    assert _explain("collected 0 items\nERROR: file not found: x\n", "", "x") == "ERROR: file not found: x"


def test_conformance_of_a_gateway_without_a_harness_is_a_plugin_error(cli: RunCli) -> None:
    result = cli("conformance", "no-such-gateway")
    assert result.code == ExitCode.PLUGIN
    assert "no installed plugin provides a conformance harness for gateway 'no-such-gateway'" in result.err


@pytest.mark.skipif(not MEMORY_EXAMPLE.is_dir(), reason="the memory_broker example is not in this tree")
@pytest.mark.slow
def test_conformance_runs_the_suite_and_prints_each_clause(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The example plugin, made discoverable by an entry point, as `pip install` would.
    dist_info = tmp_path / "memory_example-0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: memory-example\nVersion: 0\n")
    (dist_info / "entry_points.txt").write_text("[broker_plugins]\nmemory = memory_broker.plugin\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(MEMORY_EXAMPLE), str(REPO_ROOT)]))
    result = cli("conformance", "memory", "--json", "--", "-k", "if1 or lc1_")
    assert result.code == ExitCode.OK, result.err
    report = result.json()
    assert isinstance(report, dict)
    assert report["passed"] is True
    assert {(c["clause"], c["verdict"]) for c in report["clauses"]} == {
        ("IF-1", "passed"),
        ("LC-1", "passed"),
    }
    table = cli("conformance", "memory", "--", "-k", "if1").out
    assert "IF-1    PASSED" in table
    assert "PASSED: gateway 'memory': 1 passed" in table


def test_serve_prints_its_address_and_stops_on_sigterm(serve: Callable[..., Served]) -> None:
    served = serve()
    assert served.address.startswith("127.0.0.1:")
    served.process.terminate()
    assert served.process.wait(15) == 0
    assert read_line(served.process, 1) == ""


def test_the_progress_of_a_suite_names_each_clause_as_it_finishes() -> None:
    from broker_plugins.cli._conformance import _PROGRESS, _clause_of  # noqa: PLC0415

    line = "conformance_tests/test_conformance.py::TestX::test_rl2_fifty_callers PASSED [ 12%]"
    found = _PROGRESS.search(line)
    assert found is not None
    assert (_clause_of(found.group(1), ""), found.group(2)) == ("RL-2", "PASSED")
    assert _PROGRESS.search("collected 23 items") is None


def test_conformance_runs_the_bridge_kit_on_a_server_with_the_token_from_the_environment(
    cli: RunCli, serve: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    served = serve("--token", TOKEN, "--no-budget")
    monkeypatch.setenv("BROKERCTL_TOKEN", TOKEN)
    result = cli("conformance", "--bridge", served.address, "--json", "--", "-k", "bk_health or bk_auth")
    assert result.code == ExitCode.OK, result.err
    report = result.json()
    clauses = {verdict["clause"]: verdict["verdict"] for verdict in report["clauses"]}
    assert clauses
    assert all(clause.startswith(("BK-HEALTH-", "BK-AUTH-")) for clause in clauses)
    assert set(clauses.values()) == {"passed"}
    assert TOKEN not in result.out + result.err
    misuse = cli("conformance", "grpc", "--bridge", served.address)
    assert misuse.code == ExitCode.USAGE
    assert cli("conformance", "grpc", "--paper").code == ExitCode.USAGE
