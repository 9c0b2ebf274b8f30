"""The committed stubs are exactly what `scripts/generate_stubs.py` produces from protos/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.bridge.conftest import REPO_ROOT

GENERATED = REPO_ROOT / "grpc_plugin" / "generated"


def _tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_regenerating_the_stubs_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "generate_stubs.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    fresh, committed = _tree(out), _tree(GENERATED)
    assert sorted(fresh) == sorted(committed), (
        "the set of generated files differs: run scripts/generate_stubs.py"
    )
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated files {stale}: run scripts/generate_stubs.py"


def test_generated_modules_import_inside_the_package() -> None:
    from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, trading_pb2  # noqa: PLC0415

    # The contract's own imports were rewritten to relative ones and resolve within the package.
    assert "from . import common_pb2" in (GENERATED / "broker/bridge/v1/trading_pb2.py").read_text()
    assert trading_pb2.DESCRIPTOR.package == "broker.bridge.v1"
    assert set(market_data_pb2.DESCRIPTOR.services_by_name) == {"MarketDataService"}
    assert set(trading_pb2.DESCRIPTOR.services_by_name) == {"TradingService"}


def test_the_script_refuses_to_clear_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "generate_stubs.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "not touching it" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
