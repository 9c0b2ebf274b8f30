"""Fixtures of the `brokerctl` tests: the command in-process and as a real console script, and bridges.

In-process runs (`cli`) call `main(argv)` and read what it printed; they carry most of the logic,
because coverage cannot see into subprocesses. Subprocess runs (`console`) start the installed
`brokerctl` script itself. Every process a test starts is killed at teardown.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from broker_plugins import BrokerRegistry
from broker_plugins.cli import main
from tests.bridge.conftest import pki  # noqa: F401 - shared TLS fixture

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cli-test-token-7f3a"


@attrs.frozen
class Result:
    """What one run of brokerctl returned and printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout as one JSON document."""
        return json.loads(self.out)

    def lines(self) -> list[dict[str, Any]]:
        """stdout as JSON lines."""
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


RunCli = Callable[..., Result]


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user config, token or plugin filter leaks into a test; returns the config directory."""
    config_home = tmp_path / "config-home"
    config_home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    for name in ("BROKERCTL_CONFIG", "BROKERCTL_TOKEN", "BROKER_PLUGINS_ALLOW", "BROKER_PLUGINS_DENY"):
        monkeypatch.delenv(name, raising=False)
    return config_home / "brokerctl"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run `main(argv)` in this process; returns its exit code and output."""

    def run(*argv: str, registry: BrokerRegistry | None = None) -> Result:
        capsys.readouterr()
        code = main(list(argv), registry=registry)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def console_script() -> str:
    """The installed `brokerctl` of this environment."""
    found = shutil.which("brokerctl", path=str(Path(sys.executable).parent))
    assert found, "brokerctl is not installed in this environment: pip install -e ."
    return found


def child_environment(**extra: str) -> dict[str, str]:
    """The environment of a child brokerctl: this one, minus anything that would change its choices."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BROKERCTL_", "BROKER_PLUGINS_", "COV_CORE_", "PYTEST_"))
    }
    return {**environment, **extra}


@pytest.fixture
def console(tmp_path: Path) -> RunCli:
    """Run the real console script; a run that outlives its timeout is killed and fails the test."""

    def run(*argv: str, timeout: float = 30.0, env: dict[str, str] | None = None) -> Result:
        environment = child_environment(XDG_CONFIG_HOME=str(tmp_path / "no-config"), **(env or {}))
        finished = subprocess.run(
            [console_script(), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            cwd=tmp_path,
            check=False,
        )
        return Result(finished.returncode, finished.stdout, finished.stderr)

    return run


@attrs.define
class Served:
    """A `brokerctl serve` subprocess and the address it printed."""

    process: subprocess.Popen[str]
    address: str


def spawn(argv: Sequence[str], tmp_path: Path, *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start a child whose stdout is read line by line; stderr goes to a file."""
    log = (tmp_path / f"child-{len(list(tmp_path.glob('child-*.log')))}.log").open("w")
    try:
        return subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=child_environment(XDG_CONFIG_HOME=str(tmp_path / "no-config"), **(env or {})),
            cwd=tmp_path,
        )
    finally:
        log.close()


def read_line(process: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """The next line the child prints, or "" if none comes within `timeout`."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline() if ready else ""


def stop(process: subprocess.Popen[str]) -> None:
    """Kill the child if it still runs, and reap it."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start child processes that are all killed at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(*argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = spawn(argv, tmp_path, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        stop(process)


@pytest.fixture
def serve(children: Callable[..., subprocess.Popen[str]]) -> Callable[..., Served]:
    """`brokerctl serve --port 0 ARGS...`; waits for its `listening on HOST:PORT` line."""

    def start(*args: str) -> Served:
        process = children(console_script(), "serve", "--host", "127.0.0.1", "--port", "0", *args)
        line = read_line(process)
        assert line.startswith("listening on "), f"serve did not start: {line!r}"
        return Served(process, line.removeprefix("listening on ").strip())

    return start
