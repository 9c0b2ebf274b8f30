"""A redis-server of the benchmark's own, on a unix socket in a temporary directory, without persistence."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Start `redis-server` and yield its URL (`unix:///...`); stopped on exit."""
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    import redis  # noqa: PLC0415 - the benchmark's own dependency, from the redis extra

    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        socket_path = Path(directory) / "redis.sock"
        config = Path(directory) / "redis.conf"
        config.write_text(
            f'port 0\nunixsocket {socket_path}\nunixsocketperm 700\nsave ""\nappendonly no\n'
            f"dir {directory}\nloglevel warning\n"
        )
        process = subprocess.Popen(
            [server, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            client = redis.Redis(unix_socket_path=str(socket_path))
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.ping()
                    break
                except (redis.ConnectionError, OSError):
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.01)
            client.close()
            yield f"unix://{socket_path}"
        finally:
            process.terminate()
            process.wait(10)
