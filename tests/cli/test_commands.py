"""Every command, in-process, against the embedded reference bridge or a `brokerctl serve` subprocess."""

from __future__ import annotations

import itertools
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from broker_plugins.cli import ExitCode, _candles
from broker_plugins.cli._output import Progress
from tests.bridge.conftest import Pki
from tests.cli.conftest import TOKEN, RunCli, Served
from tests.cli.test_output import FakeTerminal

EMBEDDED_NOTE = "no broker named: using the embedded reference bridge on 127.0.0.1:"


@pytest.fixture
def bridge(serve: Callable[..., Served]) -> Served:
    """A bridge in a subprocess that outlives one command, so orders persist between commands."""
    return serve("--token", TOKEN, "--no-budget")


def error_line(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith("brokerctl: error:")]
    return line


# -- market data on the embedded bridge -------------------------------------------------------------


def test_quote_uses_the_embedded_bridge_and_says_so(cli: RunCli) -> None:
    result = cli("quote", "AAPL", "005930", "--json")
    assert result.code == ExitCode.OK, result.err
    assert EMBEDDED_NOTE in result.err
    quotes = result.json()
    assert [q["symbol"] for q in quotes] == ["AAPL", "005930"]
    for quote in quotes:
        assert isinstance(quote["bid"], str)
        assert Decimal(quote["bid"]) < Decimal(quote["ask"])
    table = cli("quote", "MSFT").out.splitlines()
    assert table[0].split() == ["SYMBOL", "BID", "BID", "SIZE", "ASK", "ASK", "SIZE", "LAST", "TIME"]
    assert table[1].startswith("MSFT")


def test_an_unknown_symbol_is_not_found(cli: RunCli) -> None:
    result = cli("quote", "NOPE")
    assert result.code == ExitCode.NOT_FOUND
    assert "unknown symbol 'NOPE'" in error_line(result.err)
    assert "Traceback" not in result.err


def test_a_malformed_symbol_is_refused_before_anything_starts(cli: RunCli) -> None:
    result = cli("instrument", "no spaces!")
    assert result.code == ExitCode.USAGE
    assert "is malformed" in error_line(result.err)
    assert "embedded" not in result.err


def test_instrument_shows_the_trading_rules(cli: RunCli) -> None:
    result = cli("instrument", "005930", "--json")
    assert result.json() == {
        "symbol": "005930",
        "name": "Samsung Electronics",
        "exchange": "KRX",
        "currency": "KRW",
        "tick_size": "100",
        "lot_size": "1",
        "tick_schedule": {
            "bands": [
                {"price_from": price_from, "tick": tick}
                for price_from, tick in [
                    ("0", "1"),
                    ("2000", "5"),
                    ("5000", "10"),
                    ("20000", "50"),
                    ("50000", "100"),
                    ("200000", "500"),
                    ("500000", "1000"),
                ]
            ]
        },
    }
    shown = cli("instrument", "005930").out
    assert "tick size      100" in shown
    assert "tick schedule  1 from 0\n" in shown
    assert "               1000 from 500000" in shown
    assert "tick schedule" not in cli("instrument", "AAPL").out  # one tick: the tick size says it
    assert re.search(r"\nprice limits   \d+ to \d+ today\n", shown), shown
    assert "price limits" not in cli("instrument", "AAPL").out  # no daily limits on NASDAQ


def test_a_stop_order_is_placed_and_shows_its_stop(cli: RunCli) -> None:
    result = cli("order", "buy", "AAPL", "1", "--stop", "50000", "--tif", "gtc", "--json")
    assert result.code == ExitCode.OK, result.err
    order = result.json()
    assert isinstance(order, dict)
    assert (order["order_type"], order["stop_price"], order["stop_triggered"]) == ("stop", "50000", False)
    shown = cli("order", "buy", "AAPL", "1", "--stop", "0.01", "--price", "0.01").out
    assert "type                stop_limit" in shown
    assert "stop price          0.01" in shown
    assert "triggered           yes" in shown


def test_instruments_are_listed_and_filtered_by_exchange(cli: RunCli) -> None:
    listed = cli("instruments", "--json").json()
    assert len(listed) == 12
    assert [i["symbol"] for i in listed] == sorted(i["symbol"] for i in listed)
    table = cli("instruments", "--exchange", "NASDAQ").out.splitlines()
    assert table[0].split() == ["SYMBOL", "NAME", "EXCHANGE", "CURRENCY", "TICK", "LOT"]
    assert [line.split()[0] for line in table[1:]] == ["AAPL", "AMZN", "GOOGL", "MSFT", "NVDA", "TSLA"]
    unknown = cli("instruments", "--exchange", "LSE")
    assert unknown.code == ExitCode.OK
    assert "no instruments on exchange 'LSE'" in unknown.err
    malformed = cli("instruments", "--exchange", "no spaces")
    assert malformed.code == ExitCode.USAGE
    assert "exchange must be" in error_line(malformed.err)


def test_calendar_shows_the_sessions_and_holidays_of_an_exchange(cli: RunCli) -> None:
    result = cli("calendar", "KRX", "--from", "2026-01-01", "--to", "2026-12-31")
    assert result.code == ExitCode.OK, result.err
    lines = result.out.splitlines()
    assert lines[1].split() == ["time", "zone", "Asia/Seoul"]
    assert lines[2].startswith("now")
    assert "regular                    regular      09:00  15:30" in lines
    assert "2026-05-05" in lines
    by_symbol = cli("calendar", "--symbol", "AAPL", "--json").json()
    assert by_symbol["time_zone"] == "America/New_York"
    assert [s["open"] for s in by_symbol["sessions"]] == ["04:00:00", "09:30:00", "16:00:00"]
    assert "2026-11-26" in cli("calendar", "NASDAQ", "--from", "2026-11-01", "--to", "2026-11-30").out
    unknown = cli("calendar", "LSE")
    assert unknown.code == ExitCode.NOT_FOUND
    assert "no calendar for exchange 'LSE'" in error_line(unknown.err)
    wrongs = (["calendar"], ["calendar", "KRX", "--symbol", "AAPL"], ["calendar", "KRX", "--from", "May"])
    for wrong in wrongs:
        assert cli(*wrong).code == ExitCode.USAGE


def test_candles_come_oldest_first_with_exact_prices(cli: RunCli) -> None:
    result = cli("candles", "AAPL", "--interval", "5m", "--limit", "4", "--json")
    assert result.code == ExitCode.OK, result.err
    bars = result.json()
    assert isinstance(bars, list)
    assert len(bars) == 4
    starts = [datetime.fromisoformat(bar["start"].replace("Z", "+00:00")) for bar in bars]
    assert all(later - earlier == timedelta(minutes=5) for earlier, later in itertools.pairwise(starts))
    assert all(bar["interval"] == "5m" and "." in bar["close"] for bar in bars)
    table = cli("candles", "AAPL", "--limit", "2").out.splitlines()
    assert table[0].split() == ["START", "OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"]
    assert len(table) == 3


def test_a_large_download_shows_progress_on_a_terminal_and_returns_the_same_candles(
    cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = (datetime.now(timezone.utc) - timedelta(days=1)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=250)
    argv = ("candles", "005930", "--start", start.isoformat(), "--end", end.isoformat(), "--json")
    whole = cli(*argv)
    assert whole.code == ExitCode.OK, whole.err
    monkeypatch.setattr(_candles, "CHUNK_CANDLES", 60)
    monkeypatch.setattr(Progress, "_REDRAW_EVERY", 0.0)  # draw every chunk, not ten times a second
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    chunked = cli(*argv)
    assert chunked.code == ExitCode.OK, terminal.getvalue()
    assert chunked.json() == whole.json()
    assert len(whole.json()) == 250
    assert "005930 1m candles: 60 / 250 (24%" in terminal.getvalue()
    limited = cli(*argv[:-1], "--limit", "130", "--json")
    assert limited.json() == whole.json()[:130]


def test_a_bad_time_is_a_usage_error(cli: RunCli) -> None:
    result = cli("candles", "AAPL", "--start", "yesterday")
    assert result.code == ExitCode.USAGE
    assert "is not ISO 8601" in result.err


# -- trading -----------------------------------------------------------------------------------------


def test_a_market_order_placed_and_waited_for_is_filled(cli: RunCli) -> None:
    result = cli("order", "buy", "AAPL", "2", "--wait", "5", "--client-order-id", "cli-test-1", "--json")
    assert result.code == ExitCode.OK, result.err
    order = result.json()
    assert isinstance(order, dict)
    assert (order["status"], order["filled_quantity"], order["client_order_id"]) == (
        "filled",
        "2",
        "cli-test-1",
    )


def test_a_negative_quantity_is_a_usage_error_and_nothing_starts(cli: RunCli) -> None:
    result = cli("order", "sell", "AAPL", "-5")
    assert result.code == ExitCode.USAGE
    assert error_line(result.err) == "brokerctl: error: quantity must be greater than zero, got -5"
    assert "embedded" not in result.err


def test_an_order_the_broker_refuses_is_rejected(cli: RunCli) -> None:
    result = cli("order", "buy", "005930", "1000000000")
    assert result.code == ExitCode.ORDER_REJECTED
    assert "insufficient cash" in error_line(result.err)


def test_a_working_order_is_listed_and_cancelled(cli: RunCli, bridge: Served) -> None:
    target = ("--target", bridge.address, "--token", TOKEN)
    placed = cli(*target, "order", "buy", "AAPL", "1", "--price", "1.00", "--tif", "gtc", "--json")
    assert placed.code == ExitCode.OK, placed.err
    order = placed.json()
    assert isinstance(order, dict)
    assert (order["status"], order["price"], order["time_in_force"]) == ("new", "1.00", "gtc")
    listed = cli(*target, "orders", "--open", "--symbol", "AAPL", "--json").json()
    assert [o["order_id"] for o in listed] == [order["order_id"]]
    cancelled = cli(*target, "cancel", order["order_id"])
    assert cancelled.code == ExitCode.OK
    assert "status              cancelled" in cancelled.out
    assert cli(*target, "orders", "--open", "--json").json() == []
    assert order["order_id"] in cli(*target, "orders").out
    missing = cli(*target, "cancel", "no-such-order")
    assert missing.code == ExitCode.NOT_FOUND


def test_positions_and_balance_follow_a_fill(cli: RunCli, bridge: Served) -> None:
    target = ("--target", bridge.address, "--token", TOKEN)
    before = cli(*target, "balance", "--json").json()
    assert isinstance(before, dict)
    bought = cli(*target, "order", "buy", "005930", "3", "--wait", "5", "--json").json()
    assert isinstance(bought, dict)
    assert bought["status"] == "filled"
    [position] = cli(*target, "positions", "--json").json()
    assert (position["symbol"], position["quantity"]) == ("005930", "3")
    assert "unrealized_pnl" in position
    after = cli(*target, "balance", "--json").json()
    assert isinstance(after, dict)
    spent = Decimal(bought["filled_quantity"]) * Decimal(bought["average_fill_price"])
    assert Decimal(before["cash"]) - Decimal(after["cash"]) == spent
    assert "005930" in cli(*target, "positions").out
    assert "buying power" in cli(*target, "balance").out


# -- connections, credentials, health ---------------------------------------------------------------


def test_a_wrong_token_is_an_authentication_failure_that_never_shows_the_token(
    cli: RunCli, bridge: Served
) -> None:
    result = cli("--target", bridge.address, "--token", "not-the-token-123", "balance")
    assert result.code == ExitCode.AUTHENTICATION
    assert "refused the credentials" in error_line(result.err)
    assert "BROKERCTL_TOKEN" in error_line(result.err)
    assert "not-the-token-123" not in result.err + result.out


def test_health_of_a_bridge_that_refuses_the_token_is_not_healthy(cli: RunCli, bridge: Served) -> None:
    result = cli(
        "--target", bridge.address, "--token", "not-the-token-123", "health", "--wait", "2", "--json"
    )
    assert result.code == ExitCode.UNAVAILABLE
    [row] = result.json()
    assert row["healthy"] is False
    assert row["budget"]["categories"][0]["category"] == "market_data"
    assert "refused the credentials" in row["error"]
    assert "BROKERCTL_TOKEN" in row["error"]
    assert "not-the-token-123" not in result.out + result.err


def test_the_token_can_come_from_the_environment(
    cli: RunCli, bridge: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKERCTL_TOKEN", TOKEN)
    assert cli("--target", bridge.address, "balance").code == ExitCode.OK


def test_an_unreachable_target_is_unavailable_within_the_timeout(cli: RunCli) -> None:
    started = time.monotonic()
    result = cli("--target", "127.0.0.1:1", "--timeout", "0.5", "quote", "AAPL")
    assert result.code == ExitCode.UNAVAILABLE
    assert time.monotonic() - started < 5
    assert "cannot connect to 127.0.0.1:1" in error_line(result.err)


def test_a_configured_connection_is_used_and_flags_override_it(
    cli: RunCli, bridge: Served, isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_environment.mkdir()
    (isolated_environment / "config.toml").write_text(
        f'default = "paper"\n[connections.paper]\ntarget = "{bridge.address}"\ntoken_env = "PAPER_TOKEN"\n'
        '[connections.down]\ntarget = "127.0.0.1:1"\ntimeout = 0.5\n'
    )
    monkeypatch.setenv("PAPER_TOKEN", TOKEN)
    assert cli("balance").code == ExitCode.OK
    assert cli("--connection", "down", "balance").code == ExitCode.UNAVAILABLE
    overridden = cli("--connection", "paper", "--token", "wrong-token-456", "balance")
    assert overridden.code == ExitCode.AUTHENTICATION
    assert cli("--connection", "nope", "balance").code == ExitCode.USAGE


@pytest.mark.slow
def test_health_reports_every_configured_connection(cli: RunCli, bridge: Served, tmp_path: Path) -> None:
    config = tmp_path / "brokers.toml"
    config.write_text(
        f'[connections.paper]\ntarget = "{bridge.address}"\ntoken = "{TOKEN}"\n'
        '[connections.down]\ntarget = "127.0.0.1:1"\n'
        '[connections.broken]\ntarget = "127.0.0.1:2"\n[connections.broken.options]\ncolour = "blue"\n'
    )
    result = cli("--config", str(config), "--timeout", "1", "health", "--json")
    assert result.code == ExitCode.UNAVAILABLE
    rows = {row["connection"]: row for row in result.json()}
    assert rows["paper"]["healthy"] is True
    assert rows["paper"]["state"] == "connected"
    assert rows["down"]["healthy"] is False
    assert "unknown option 'colour'" in rows["broken"]["error"]
    assert TOKEN not in result.out + result.err
    single = cli("--config", str(config), "--connection", "paper", "health")
    assert single.code == ExitCode.OK
    assert single.out.splitlines()[0].split()[:3] == ["CONNECTION", "GATEWAY", "STATE"]


def test_health_of_the_embedded_bridge(cli: RunCli) -> None:
    result = cli("health", "--json")
    assert result.code == ExitCode.OK
    [row] = result.json()
    assert (row["connection"], row["healthy"]) == ("embedded", True)


@pytest.mark.slow
def test_tls_options_reach_a_tls_bridge(cli: RunCli, serve: Callable[..., Served], pki: Pki) -> None:
    served = serve("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    result = cli("--target", served.address, "--ca-cert", str(pki.ca), "quote", "AAPL", "--json")
    assert result.code == ExitCode.OK, result.err
    plain = cli("--target", served.address, "--timeout", "1", "quote", "AAPL")
    assert plain.code == ExitCode.UNAVAILABLE


def test_credentials_without_a_target_are_ignored_with_a_note(cli: RunCli) -> None:
    result = cli("--token", "abc", "--tls", "health")
    assert result.code == ExitCode.OK
    assert "ignoring --token, --tls: they choose a broker, and none was named" in result.err
