"""A real redis-server for the shared-limiter tests: Debian's `redis-server`, started by the tests on a
unix socket in a temporary directory (or on a free loopback port) and stopped after.

Without `redis-server` (or redis-py) these tests skip, naming the install command; under CI (the
`CI` environment variable set, as `.ci/run` does) they fail instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER = shutil.which("redis-server")


def require(found: bool, what: str, install: str) -> None:
    """Skip (or, under CI, fail) when `what` is missing."""
    if found:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI: {install}")
    pytest.skip(f"{what} is not installed: {install}")


def require_redis() -> None:
    require(SERVER is not None, "redis-server", "apt-get install redis-server")
    try:
        import redis  # noqa: F401, PLC0415
    except ImportError:
        require(False, "redis-py", "pip install -e '.[redis]'")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process of our own, without persistence: `start()`, `stop()`, `restart()`.

    Its settings (and password) go in a config file only it can read, never on the command line.
    """

    def __init__(self, directory: Path, *, password: str | None = None, tcp: bool = False) -> None:
        self.directory = directory
        self.password = password
        self.socket_path = directory / "redis.sock"
        self.port = free_port() if tcp else 0
        self.process: subprocess.Popen[bytes] | None = None
        config = directory / "redis.conf"
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"unixsocket {self.socket_path}",
            "unixsocketperm 700",
            'save ""',
            "appendonly no",
            f"dir {directory}",
            "loglevel warning",
        ]
        if password:
            lines.append(f"requirepass {password}")
        config.write_text("\n".join(lines) + "\n")
        config.chmod(0o600)
        self.config = config

    @property
    def url(self) -> str:
        """Where the limiter connects: the unix socket (the password, if any, goes apart)."""
        return f"unix://{self.socket_path}"

    def tcp_url(self, password: str | None = None) -> str:
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert SERVER is not None
        self.process = subprocess.Popen(
            [SERVER, str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.wait_ready()

    def wait_ready(self, within: float = 10.0) -> None:
        import redis  # noqa: PLC0415

        client = redis.Redis(unix_socket_path=str(self.socket_path), password=self.password)
        deadline = time.monotonic() + within
        try:
            while True:
                assert self.process is not None
                assert self.process.poll() is None, f"redis-server exited with {self.process.returncode}"
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, OSError):
                    pass
                assert time.monotonic() < deadline, f"redis-server not ready within {within} s"
                time.sleep(0.01)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> object:
        """A synchronous redis-py client, to look at what the limiter stored."""
        import redis  # noqa: PLC0415

        return redis.Redis(
            unix_socket_path=str(self.socket_path), password=self.password, decode_responses=True
        )


def _server(**options: object) -> Iterator[RedisServer]:
    require_redis()
    # A short path: a unix socket's path must stay under about 100 characters.
    with tempfile.TemporaryDirectory(prefix="rl-redis-") as directory:
        server = RedisServer(Path(directory), **options)  # type: ignore[arg-type]
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server shared by a module's tests; each test uses a budget of its own."""
    yield from _server()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A redis-server for one test, which may stop, restart or flush it."""
    yield from _server()


@pytest.fixture
def budget() -> str:
    """A budget name no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"
