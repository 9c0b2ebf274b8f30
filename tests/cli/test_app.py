"""The parser and the run loop: option checks, `--`, help and version, threads, `python -m`."""

from __future__ import annotations

import runpy
import sys
import threading
from pathlib import Path

import pytest

import broker_plugins
from broker_plugins.cli import ExitCode, main
from tests.cli.conftest import RunCli


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--timeout", "-1", "balance"), "option 'timeouts' must give market_data a number of seconds"),
        (("--timeout", "soon", "balance"), "option 'timeouts' must be a number, got 'soon'"),
        (("health", "--wait", "0"), "expected a positive number, got '0'"),
        (("watch", "AAPL", "--count", "0"), "expected a whole number of at least 1, got '0'"),
        (("candles", "AAPL", "--limit", "many"), "expected a whole number of at least 1, got 'many'"),
        (("quote", "AAPL", "--", "extra"), "arguments after -- are only for conformance: extra"),
        (("candles", "AAPL", "--interval", "2m"), "invalid choice: '2m'"),
    ],
)
def test_bad_arguments_are_usage_errors(cli: RunCli, argv: tuple[str, ...], message: str) -> None:
    result = cli(*argv)
    assert result.code == ExitCode.USAGE
    assert message in result.err


def test_global_options_go_before_or_after_the_command(cli: RunCli) -> None:
    before = cli("--json", "instrument", "AAPL")
    after = cli("instrument", "AAPL", "--json")
    assert before.code == after.code == ExitCode.OK
    assert before.json() == after.json()


def test_help_and_version_exit_zero(cli: RunCli) -> None:
    helped = cli("--help")
    assert helped.code == ExitCode.OK
    assert "exit codes: 0 ok" in helped.out
    assert cli("--version").out.startswith("brokerctl ")


def test_serve_shows_the_bridge_options_and_passes_its_usage_errors_on(cli: RunCli) -> None:
    helped = cli("serve", "--help")
    assert helped.code == ExitCode.OK
    assert "--tick-rate" in helped.out
    assert cli("serve", "--port", "not-a-port").code == ExitCode.USAGE


def test_a_command_runs_outside_the_main_thread_without_a_signal_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(main(["instrument", "AAPL"])))
    worker.start()
    worker.join(30)
    assert codes == [ExitCode.OK]
    assert "NASDAQ" in capsys.readouterr().out


def test_python_dash_m_runs_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["brokerctl", "--version"])
    with pytest.raises(SystemExit) as done:
        # run_path, not run_module: under coverage, pytest's import hook cannot hand runpy the code.
        runpy.run_path(str(Path(broker_plugins.__file__).parent / "__main__.py"), run_name="__main__")
    assert done.value.code == ExitCode.OK
    assert capsys.readouterr().out.startswith("brokerctl ")


def test_a_suite_that_outlives_its_timeout_is_a_failure(cli: RunCli) -> None:
    result = cli("conformance", "grpc", "--suite-timeout", "0.01")
    assert result.code == ExitCode.FAILURE
    assert "did not finish within 0.01 s" in result.err


def test_a_usage_error_is_one_line(cli: RunCli) -> None:
    result = cli("quote")
    assert result.code == ExitCode.USAGE
    assert result.err.count("\n") == 1
    assert result.err.startswith("brokerctl: error: the following arguments are required: SYMBOL")


def test_connection_options_are_the_gateways_own_and_only_where_a_command_connects(cli: RunCli) -> None:
    quote_help = cli("quote", "--help").out
    assert "options of the grpc gateway (declared by its plugin)" in quote_help
    assert "--target HOST:PORT" in quote_help
    assert "BROKERCTL_TOKEN" in quote_help  # a secret says where else it may come from
    plugins_help = cli("plugins", "--help").out
    assert "--target" not in plugins_help
    assert "--json" in plugins_help


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_know_the_commands_and_their_options(cli: RunCli, shell: str) -> None:
    result = cli("completion", shell)
    assert result.code == ExitCode.OK
    script = result.out
    assert "complete -o default -F _brokerctl_complete brokerctl" in script
    for word in ("quote", "--target", "--interval"):
        assert word in script
    assert ("bashcompinit" in script) == (shell == "zsh")


def test_an_empty_table_of_the_embedded_backend_says_why(cli: RunCli) -> None:
    result = cli("orders")
    assert result.code == ExitCode.OK
    assert "no orders: the embedded backend starts with an empty paper account" in result.err
    assert "brokerctl serve" in result.err


def test_prices_show_in_the_instruments_tick(cli: RunCli) -> None:
    [line] = cli("quote", "005930").out.splitlines()[1:]
    bid, ask = line.split()[1], line.split()[3]
    assert "." not in bid  # a 100-won tick: whole numbers, whatever the exponent
    assert "." not in ask
    [us] = cli("quote", "AAPL").out.splitlines()[1:]
    assert all(len(field.split(".")[1]) == 2 for field in (us.split()[1], us.split()[3]))
