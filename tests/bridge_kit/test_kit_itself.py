"""The kit as a package: its options, what it collects, its clause table, its docs, its imports."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conformance_tests.bridge import CLAUSES, clause
from conformance_tests.bridge._settings import BridgeSettings, Budget, SettingsError
from tests.bridge_kit.running import ROOT, prepare

KIT = ROOT / "conformance_tests" / "bridge"
CONTRACT = (ROOT / "docs" / "bridge-contract.md").read_text()
KIT_DOC = (ROOT / "docs" / "bridge-kit.md").read_text()


def _folded(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _section(title: str) -> str:
    start = CONTRACT.index(f"\n## {title}\n")
    end = CONTRACT.find("\n## ", start + 1)
    return CONTRACT[start : end if end > 0 else None]


def test_every_rule_a_clause_quotes_is_in_the_contract_in_its_section() -> None:
    for entry in CLAUSES:
        assert entry.rules, entry.id
        for rule in entry.rules:
            assert _folded(rule.text) in _folded(_section(rule.section)), (entry.id, rule.text)


def test_every_clause_has_one_test_and_a_row_in_the_kit_doc() -> None:
    names = re.findall(
        r"^def (test_bk_([a-z]+)(\d+)_\w+)\(", "".join(p.read_text() for p in KIT.glob("test_*.py")), re.M
    )
    ids = [f"BK-{area.upper()}-{number}" for _, area, number in names]
    assert sorted(ids) == sorted(entry.id for entry in CLAUSES)
    for entry in CLAUSES:
        row = next(line for line in KIT_DOC.splitlines() if line.startswith(f"| {entry.id} |"))
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert cells[1] == ("" if entry.needs.value == "nothing" else entry.needs.value), row
        if entry.per_budget_call and entry.requests:
            assert cells[2] == f"{entry.requests} + {entry.per_budget_call} x CALLS", row
        elif entry.per_budget_call:
            assert cells[2] in (f"{entry.per_budget_call} x CALLS", "(the same)"), row
        else:
            assert cells[2] == str(entry.requests), row
    with pytest.raises(KeyError):
        clause("BK-NOPE-1")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_kit_judges_by_the_wire_and_the_rest_of_the_suite_stays_free_of_grpc() -> None:
    for path in KIT.glob("*.py"):
        for name in _imports(path):
            assert not name.startswith(("grpc_plugin._", "grpc_plugin.bridge", "broker_plugins")), (
                path,
                name,
            )
            if name.startswith("grpc_plugin"):
                assert name.startswith("grpc_plugin.generated"), (path, name)
    light = {"__init__.py", "plugin.py", "_clauses.py", "_settings.py"}  # loaded in every pytest run
    for name in light:
        assert not any(n.startswith(("grpc", "google")) for n in _imports(KIT / name)), name
    for path in (ROOT / "conformance_tests").glob("*.py"):
        assert not any(n.startswith("grpc") for n in _imports(path)), path


def test_options_are_read_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_BRIDGE_TOKEN", " from-default ")
    assert BridgeSettings.from_options(target="h:1").token == "from-default"
    monkeypatch.setenv("KIT_TOKEN", "from-env")
    assert BridgeSettings.from_options(target="h:1", token_env="KIT_TOKEN").token == "from-env"
    (tmp_path / "token").write_text("from-file\n")
    settings = BridgeSettings.from_options(target="h:1", token_file=str(tmp_path / "token"), budget="5/0.5")
    assert (settings.token, settings.budget) == ("from-file", Budget(5, 0.5))
    assert "from-file" not in repr(settings)
    assert str(Budget(20, 1.0)) == "20/1s"
    (tmp_path / "empty").write_text("\n")
    for bad, message in (
        ({"token": "a", "token_env": "KIT_TOKEN"}, "one way"),
        ({"token_env": "NO_SUCH_VARIABLE_HERE"}, "unset or empty"),
        ({"token_file": str(tmp_path / "empty")}, "is empty"),
        ({"token_file": str(tmp_path / "missing")}, "cannot read"),
        ({"tls_cert": str(tmp_path / "token")}, "go together"),
        ({"budget": "20 per second"}, "CALLS/SECONDS"),
        ({"budget": "0/1"}, "CALLS/SECONDS"),
    ):
        with pytest.raises(SettingsError, match=message):
            BridgeSettings.from_options(target="h:1", **bad)  # type: ignore[arg-type]


def test_the_kit_is_not_collected_without_a_target_and_asks_for_one_when_named(
    pytester: pytest.Pytester,
) -> None:
    prepare(pytester)
    listed = pytester.runpytest_inprocess("--pyargs", "conformance_tests", "--collect-only", "-q")
    assert not [line for line in listed.outlines if "test_bk_" in line]
    named = pytester.runpytest_inprocess("--pyargs", "conformance_tests.bridge")
    assert named.ret == pytest.ExitCode.USAGE_ERROR
    named.stderr.fnmatch_lines(["*the bridge kit needs --bridge-target HOST:PORT*"])
    contradictory = pytester.runpytest_inprocess(
        "--pyargs", "conformance_tests.bridge", "--bridge-target", "127.0.0.1:1", "--bridge-budget", "lots"
    )
    assert contradictory.ret == pytest.ExitCode.USAGE_ERROR
    contradictory.stderr.fnmatch_lines(["*--bridge-budget expects CALLS/SECONDS*"])
