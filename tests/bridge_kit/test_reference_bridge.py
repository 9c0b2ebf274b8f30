"""The reference bridge, as a separate process, passes the whole kit; without flags the kit stays
read-only and says what it skipped."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

import pytest

from conformance_tests.bridge import CLAUSES, Needs
from conformance_tests.bridge._settings import BridgeSettings, Budget
from conformance_tests.bridge.plugin import request_bound
from grpc_plugin.bridge import BridgeServer
from tests.bridge.conftest import BridgeProcess
from tests.bridge_kit.running import TOKEN, bridge_thread, kit_arguments, prepare, run_kit_inline, verdicts


@pytest.mark.slow
def test_the_reference_bridge_passes_the_whole_kit(
    bridge_processes: Callable[..., BridgeProcess], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BK_KIT_TOKEN", TOKEN)
    bridge = bridge_processes("--token-env", "BK_KIT_TOKEN", "--budget", "10/0.5", "--tick-rate", "20")
    prepare(pytester)
    flags = ["--bridge-token-env", "BK_KIT_TOKEN", "--bridge-paper", "--bridge-budget", "10/0.5"]
    result = pytester.runpytest_inprocess(*kit_arguments(bridge.address, *flags, token=None))
    found = verdicts(pytester.path / "report.xml")
    assert {clause: verdict.outcome for clause, verdict in found.items()} == {
        c.id: "passed" for c in CLAUSES
    }, "\n".join(f"{c}: {v.text[:400]}" for c, v in found.items() if v.outcome != "passed")
    settings = BridgeSettings(target=bridge.address, token=TOKEN, paper=True, budget=Budget(10, 0.5))
    result.stdout.fnmatch_lines(
        [f"bridge kit: at most {request_bound(settings)} requests, plus at most 3 retries*"]
    )
    bridge.signal(signal.SIGTERM)
    assert bridge.wait() == 0
    assert TOKEN not in bridge.log.read_text()


def test_without_flags_the_kit_is_read_only_and_says_what_it_skipped(pytester: pytest.Pytester) -> None:
    with bridge_thread(BridgeServer, tokens={}) as bridge:
        # A clause or two of each kind: the read-only ones pass, the others skip and say why.
        chosen = "bk_health or bk_auth or bk_md1 or bk_ou or bk_ord1 or bk_bad6 or bk_bud"
        found = run_kit_inline(pytester, bridge.address, "-k", chosen, token=None)
    assert len(found) == 13
    for clause in CLAUSES:
        verdict = found.get(clause.id)
        if verdict is None:
            continue
        if clause.needs is Needs.NOTHING:
            assert verdict.outcome == "passed", (clause.id, verdict)
            continue
        assert verdict.outcome == "skipped", (clause.id, verdict)
        flag = {Needs.TOKEN: "--bridge-token", Needs.PAPER: "--bridge-paper", Needs.BUDGET: "--bridge-budget"}
        assert f"[{clause.id}]" in verdict.text
        assert flag[clause.needs] in verdict.text


def test_a_bridge_refusing_the_kits_token_is_reported_on_every_clause(pytester: pytest.Pytester) -> None:
    with bridge_thread(BridgeServer, tokens={"another-token": "paper"}) as bridge:
        found = run_kit_inline(pytester, bridge.address, "-k", "bk_md or bk_health1")
    assert {v.outcome for v in found.values()} == {"error"}
    assert all("refuses the kit's token" in v.text for v in found.values())


def test_an_unreachable_bridge_is_reported_on_every_clause(pytester: pytest.Pytester) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    found = run_kit_inline(pytester, f"127.0.0.1:{port}", "-k", "bk_md1 or bk_health1")
    assert {v.outcome for v in found.values()} == {"error"}
    assert all("does not answer Health.Check: UNAVAILABLE" in v.text for v in found.values())
