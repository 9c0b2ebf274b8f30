"""`python -m grpc_plugin.bridge` as a real process: startup line, signals, kill -9 and restart."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from grpc_plugin.bridge import DEFAULT_BUDGET, Window
from grpc_plugin.bridge.__main__ import config_from_args, main
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import CALL_TIMEOUT, LOOPBACK, BridgeProcess, Client, Pki, market_order, rpc_error

QUOTE = md.GetQuoteRequest(symbol="005930")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_the_process_serves_and_exits_cleanly_on_a_signal(
    bridge_processes: Callable[..., BridgeProcess], connect: Callable[..., Client], signum: int
) -> None:
    process = bridge_processes("--seed", "3", "--tick-rate", "20")
    host, _, port = process.address.rpartition(":")
    assert host == LOOPBACK
    assert int(port) > 0
    client = connect(process.address)
    assert (await client.market.GetQuote(QUOTE, timeout=CALL_TIMEOUT)).quote.symbol == "005930"
    process.signal(signum)
    assert process.wait() == 0
    assert "stopping" in process.log.read_text()


async def test_an_order_survives_kill_9_and_its_id_stays_taken(
    bridge_processes: Callable[..., BridgeProcess], connect: Callable[..., Client], tmp_path: Path
) -> None:
    state = str(tmp_path / "bridge.sqlite")
    first = bridge_processes("--state", state, "--no-budget")
    client = connect(first.address)
    placed = await client.trading.PlaceOrder(
        market_order("keep-1", "005930", tr.SIDE_BUY, 10), timeout=CALL_TIMEOUT
    )
    assert not placed.duplicate
    first.signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL

    second = bridge_processes("--state", state, "--no-budget")
    client = connect(second.address)
    again = await client.trading.PlaceOrder(
        market_order("keep-1", "005930", tr.SIDE_BUY, 10), timeout=CALL_TIMEOUT
    )
    assert again.duplicate
    assert again.order.order_id == placed.order.order_id
    orders = (await client.trading.ListOrders(tr.ListOrdersRequest(), timeout=CALL_TIMEOUT)).orders
    assert [o.client_order_id for o in orders] == ["keep-1"]
    # Positions, cash and the update sequence came back too.
    positions = (await client.trading.GetPositions(tr.GetPositionsRequest(), timeout=CALL_TIMEOUT)).positions
    filled = orders[0].filled_quantity
    assert [(p.symbol, p.quantity) for p in positions] == ([("005930", filled)] if filled.mantissa else [])
    fresh = await client.trading.PlaceOrder(
        market_order("keep-2", "NOPE", tr.SIDE_BUY, 1), timeout=CALL_TIMEOUT
    )
    assert fresh.order.order_id != placed.order.order_id
    stream = client.trading.StreamOrderUpdates(tr.StreamOrderUpdatesRequest())
    try:
        sequences: list[int] = []
        while not sequences or sequences[-1] < 3:
            batch = await stream.read()
            assert isinstance(batch, tr.StreamOrderUpdatesResponse), batch  # not grpc.aio.EOF
            sequences.extend(u.sequence for u in batch.updates)
    finally:
        stream.cancel()
    assert sequences == list(range(1, len(sequences) + 1))


async def test_a_token_protects_the_process_and_is_never_logged(
    bridge_processes: Callable[..., BridgeProcess], connect: Callable[..., Client]
) -> None:
    process = bridge_processes("--token", "s3cret-token", "--budget", "100/1")
    client = connect(process.address)
    error = await rpc_error(client.market.GetQuote(QUOTE, timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    reply = await client.market.GetQuote(
        QUOTE, metadata=(("authorization", "Bearer s3cret-token"),), timeout=CALL_TIMEOUT
    )
    assert reply.quote.symbol == "005930"
    process.signal(signal.SIGTERM)
    assert process.wait() == 0
    assert "s3cret-token" not in process.log.read_text()


async def test_the_token_can_come_from_a_variable_or_a_file_and_stays_out_of_ps(
    bridge_processes: Callable[..., BridgeProcess],
    connect: Callable[..., Client],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", "from-the-env")
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    for args, token in (
        (("--token-env", "BRIDGE_TEST_TOKEN"), "from-the-env"),
        (("--token-file", str(token_file)), "from-a-file"),
    ):
        process = bridge_processes(*args, "--no-budget")
        command_line = Path(f"/proc/{process.process.pid}/cmdline").read_bytes()
        assert token.encode() not in command_line
        client = connect(process.address)
        error = await rpc_error(client.market.GetQuote(QUOTE, timeout=CALL_TIMEOUT))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        bearer = (("authorization", f"Bearer {token}"),)
        assert (await client.market.GetQuote(QUOTE, metadata=bearer, timeout=CALL_TIMEOUT)).quote.symbol


def test_token_options_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPTY_TOKEN", " ")
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "token").write_text(" t0k \n")
    assert dict(config_from_args(["--token-file", str(tmp_path / "token")]).tokens) == {"t0k": "paper"}
    monkeypatch.setenv("GOOD_TOKEN", "from-env")
    assert dict(config_from_args(["--token-env", "GOOD_TOKEN"]).tokens) == {"from-env": "paper"}
    for bad in (
        ["--token-env", "NO_SUCH_TOKEN"],
        ["--token-env", "EMPTY_TOKEN"],
        ["--token-file", str(tmp_path / "empty")],
        ["--token-file", str(tmp_path / "missing")],
        ["--token", "a", "--token-env", "EMPTY_TOKEN"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            config_from_args(bad)
        assert exit_info.value.code == 2


def test_command_line_options_become_the_config(tmp_path: Path) -> None:
    config = config_from_args(
        ["--port", "5005", "--token", "t", "--state", str(tmp_path / "s.db"), "--seed", "9"]
    )
    assert (config.port, dict(config.tokens), config.state_path, config.seed) == (
        5005,
        {"t": "paper"},
        tmp_path / "s.db",
        9,
    )
    assert config.budget == DEFAULT_BUDGET
    assert config.tls is None
    assert config_from_args(["--budget", "5/1", "--budget", "50/60"]).budget == (
        Window(5, 1.0),
        Window(50, 60.0),
    )
    assert config_from_args(["--no-budget", "--tick-rate", "1000"]).budget == ()
    for bad in (
        ["--tls-cert", "c.pem"],
        ["--client-ca", "ca.pem"],
        ["--tick-rate", "0"],
        ["--budget", "x/y"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            config_from_args(bad)
        assert exit_info.value.code == 2


def test_tls_files_are_read_from_the_command_line(pki: Pki) -> None:
    config = config_from_args(
        ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--client-ca", str(pki.ca)]
    )
    assert config.tls is not None
    assert config.tls.client_ca is not None
    assert b"PRIVATE KEY" in config.tls.private_key
    assert "PRIVATE" not in repr(config)


@pytest.fixture
def free_port() -> int:
    """A loopback port nobody listens on (bound once to learn it, then released)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _terminate_when_listening(port: int) -> None:
    """Send this process SIGTERM once `port` accepts connections (the handlers are installed by then)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection((LOOPBACK, port), timeout=0.5).close()
        except OSError:
            time.sleep(0.05)
        else:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def test_main_runs_until_sigterm_in_this_process(free_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    killer = threading.Thread(target=_terminate_when_listening, args=(free_port,), daemon=True)
    killer.start()
    assert main(["--port", str(free_port), "--no-budget"]) == 0
    killer.join(5)
    assert capsys.readouterr().out == f"listening on {LOOPBACK}:{free_port}\n"


def test_main_reports_a_port_it_cannot_bind(free_port: int) -> None:
    with socket.socket() as holder:
        holder.bind((LOOPBACK, free_port))
        holder.listen()
        assert main(["--port", str(free_port)]) == 1
