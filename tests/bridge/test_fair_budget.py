"""An account's budget shared by several clients: the total holds, and no client starves."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpc_plugin.bridge import BridgeServer, Window, _budget
from grpc_plugin.bridge._budget import CallBudget
from tests.bridge.conftest import LOOPBACK, REPO_ROOT, StartBridge

WINDOW = Window(10, 1.0)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_waiting_clients_are_remembered_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_budget, "_MAX_WANTING", 3)
    clock = _Clock()
    budget = CallBudget((Window(1, 10.0),), clock=clock)
    assert budget.admit("acct", "first") is None
    for client in ("a", "b", "c", "d"):  # each refused while holding nothing: each waits
        clock.now += 0.001
        assert budget.admit("acct", client) is not None
    assert list(budget._accounts["acct"][0].wanting) == ["b", "c", "d"]  # "a", the oldest, forgotten


def test_a_lone_client_gets_the_whole_budget_and_a_newcomer_gets_its_share() -> None:
    clock = _Clock()
    budget = CallBudget((WINDOW,), clock=clock)
    assert all(budget.admit("acct", "a") is None for _ in range(10))
    wait = budget.admit("acct", "b")
    assert wait is not None
    assert 0 < wait <= 1.0  # the window is full: when its oldest call leaves
    clock.now += 1.0  # a's calls leave; b is waiting (refused in the last second, holding nothing)
    admitted = Counter[str]()
    for _ in range(10):  # a, the faster one, asks first each time
        for client in ("a", "b"):
            if budget.admit("acct", client) is None:
                admitted[client] += 1
    assert admitted == {"a": 5, "b": 5}
    # Refused for its share, a is told to wait until its own oldest calls leave, not for nothing.
    advice = budget.admit("acct", "a")
    assert advice is not None
    assert advice > 0


@settings(max_examples=80, deadline=None)
@given(
    calls=st.lists(st.tuples(st.sampled_from("abc"), st.floats(0.0, 0.3)), min_size=1, max_size=120),
)
def test_shares_never_break_the_windows_and_the_advice_is_true(calls: list[tuple[str, float]]) -> None:
    windows = (Window(4, 0.5), Window(9, 2.0))
    clock = _Clock()
    budget = CallBudget(windows, clock=clock)
    admitted: list[float] = []
    for client, gap in calls:
        clock.now += gap
        wait = budget.admit("acct", client)
        if wait is None:
            admitted.append(clock.now)
            continue
        assert wait > 0
        # Nobody else calls meanwhile: after the advised wait, the same call is admitted.
        clock.now += wait + 1e-9
        assert budget.admit("acct", client) is None
        admitted.append(clock.now)
    for window in windows:
        for start in admitted:
            assert sum(1 for t in admitted if start <= t < start + window.period) <= window.max_calls


def _spawn_clients(target: str, count: int, go: Path, seconds: float) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "BUDGET_CLIENT_GO": str(go)}
    clients = []
    for index in range(count):
        argv = [target, "tok", "20", "1", str(seconds), "ignore", str(0.05 * index)]
        clients.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.bridge.budget_client", *argv],
                stdout=subprocess.PIPE,
                text=True,
                cwd=REPO_ROOT,
                env=env,
            )
        )
    return clients


@pytest.mark.slow
async def test_three_processes_on_one_account_each_get_a_share_and_never_more_than_the_budget(
    start_bridge: StartBridge, tmp_path: Path
) -> None:
    server: BridgeServer = await start_bridge(budget=(Window(20, 1.0),), tokens={"tok": "shared"})
    go = tmp_path / "go"
    clients = _spawn_clients(server.address, 3, go, seconds=3.5)
    try:
        for client in clients:
            assert client.stdout is not None
            assert (await asyncio.to_thread(client.stdout.readline)).strip() == "ready"
        go.touch()
        went = time.monotonic()
        reports = []
        for client in clients:
            assert client.stdout is not None
            reports.append(json.loads(await asyncio.to_thread(client.stdout.readline)))
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
            client.wait(10)
            if client.stdout is not None:
                client.stdout.close()
    records = [r for r in server.requests if r.method == "GetQuote" and r.account == "shared"]
    admitted = [r for r in records if r.rejected is None]
    assert all(r.rejected in (None, grpc.StatusCode.RESOURCE_EXHAUSTED) for r in records)
    times = [r.arrived for r in admitted]
    for start in times:  # the budget holds at the bridge, counted by arrival
        assert sum(1 for t in times if start <= t < start + 1.0) <= 20
    # The first second is the first client's head start; the next two, whole budget periods in
    # which every client calls at its own pace, they share.
    by_client = {r.client for r in records}
    assert len(by_client) == 3, by_client
    steady = Counter(r.client for r in admitted if went + 1.0 <= r.arrived < went + 3.0)
    total = sum(steady.values())
    shares = sorted(steady.get(client, 0) / total for client in by_client)
    assert shares[0] >= 0.2, (steady, reports)
    assert sum(r["admitted"] for r in reports) == len(admitted) - 3  # less each client's "ready" call
    assert all(LOOPBACK in client for client in by_client)
    assert max(shares) <= 0.5, (steady, reports)
