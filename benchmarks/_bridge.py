"""A reference bridge in a separate process, for benchmarks (loopback only)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def bridge_process(*args: str) -> Iterator[str]:
    """Start `python -m grpc_plugin.bridge` on 127.0.0.1 and yield its address; killed on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "grpc_plugin.bridge", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            raise RuntimeError(f"bridge did not start: {line!r}")
        yield line.removeprefix("listening on ").strip()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def percentile(samples: list[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank) of `samples`."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
