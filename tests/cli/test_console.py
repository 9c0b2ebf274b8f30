"""The installed `brokerctl` console script and `python -m broker_plugins`, run as real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen

from broker_plugins.cli import ExitCode
from tests.cli.conftest import TOKEN, RunCli, Served, child_environment, console_script, read_line


def test_plugins_json_lists_the_grpc_gateway_from_both_entry_points(console: RunCli) -> None:
    result = console("plugins", "--json")
    assert result.code == ExitCode.OK, result.err
    document = result.json()
    assert isinstance(document, dict)
    [grpc] = [g for g in document["gateways"] if g["name"] == "grpc"]
    assert grpc["distribution"] == "broker-plugins"
    assert grpc["embedded_backend"] is True
    assert "quote_stream" in grpc["capabilities"]
    module = subprocess.run(
        [sys.executable, "-m", "broker_plugins", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_environment(),
        check=False,
    )
    assert module.returncode == ExitCode.OK
    assert json.loads(module.stdout) == document


def test_demo_completes_and_shows_the_reconnect(console: RunCli) -> None:
    started = time.monotonic()
    result = console("demo", "--outage", "0.5", timeout=60)
    assert result.code == ExitCode.OK, result.err
    assert time.monotonic() - started < 30
    assert "-- connection reconnecting" in result.out
    assert "reconnected: the same stream resumed" in result.out
    assert "order PO" in result.out
    assert "Traceback" not in result.err


def test_watch_count_prints_json_lines(console: RunCli) -> None:
    result = console("watch", "AAPL", "--count", "3", "--json")
    assert result.code == ExitCode.OK, result.err
    events = result.lines()
    assert [event["symbol"] for event in events] == ["AAPL"] * 3
    assert "using the embedded reference bridge" in result.err


def test_bad_input_gets_its_exit_code_and_one_line(console: RunCli) -> None:
    unknown = console("quote", "NOPE", "--json")
    assert unknown.code == ExitCode.NOT_FOUND
    assert unknown.out == ""
    negative = console("order", "buy", "AAPL", "-3")
    assert negative.code == ExitCode.USAGE
    assert negative.err.strip() == "brokerctl: error: quantity must be greater than zero, got -3"
    usage = console("frobnicate")
    assert usage.code == ExitCode.USAGE
    assert "invalid choice: 'frobnicate'" in usage.err
    for result in (unknown, negative):
        assert "Traceback" not in result.err


def test_an_unreachable_target_fails_fast_as_unavailable(console: RunCli) -> None:
    started = time.monotonic()
    result = console("--target", "127.0.0.1:1", "--timeout", "1", "balance", "--json")
    assert result.code == ExitCode.UNAVAILABLE
    assert time.monotonic() - started < 10
    assert json.loads(result.err) == {  # with --json, errors are JSON too
        "error": {
            "type": "BrokerUnavailableError",
            "message": "cannot connect to 127.0.0.1:1: "
            "connection refused (is the bridge running, on that port?)",
            "exit_code": 4,
        }
    }


def test_a_wrong_token_is_refused_and_never_echoed(console: RunCli, serve: Callable[..., Served]) -> None:
    served = serve("--token", TOKEN)
    wrong = console("--target", served.address, "--token", "wrong-token-789", "positions")
    assert wrong.code == ExitCode.AUTHENTICATION
    assert "wrong-token-789" not in wrong.out + wrong.err
    right = console("--target", served.address, "positions", "--json", env={"BROKERCTL_TOKEN": TOKEN})
    assert right.code == ExitCode.OK, right.err
    assert right.json() == []


def test_ctrl_c_stops_watch_cleanly(children: Callable[..., Popen[str]], tmp_path: Path) -> None:
    process = children(console_script(), "watch", "AAPL", "--json")
    first = read_line(process)
    assert json.loads(first)["symbol"] == "AAPL"
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == ExitCode.INTERRUPTED
    [log] = tmp_path.glob("child-*.log")
    stderr = log.read_text()
    assert stderr.rstrip().endswith("brokerctl: interrupted")
    assert "Traceback" not in stderr
