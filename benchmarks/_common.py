"""Plumbing shared by every benchmark: servers in their own process, alternated sides, tables, results.

A benchmark measures the gateway next to a bare baseline doing the same work in the same run. The
sides take turns (the order flips every round, so neither always runs first on a warmer or quieter
machine), and each benchmark prints one table, bare / gateway / ratio / goal, and writes the same
figures as JSON to `benchmarks/results/<name>.json` with the commit, Python and grpcio versions.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import select
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google import protobuf

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


# -- processes ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def serving_process(argv: Sequence[str], *, startup: float = 60.0) -> Iterator[str]:
    """Run `argv` until it prints `listening on HOST:PORT`; yield that address; SIGKILL on exit."""
    process = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], startup)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            raise RuntimeError(f"{argv[2:4]} did not start: {line!r}")
        yield line.removeprefix("listening on ").strip()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def bridge_process(*args: str) -> contextlib.AbstractContextManager[str]:
    """The reference bridge (`python -m grpc_plugin.bridge`) on 127.0.0.1; yields its address."""
    return serving_process(
        [sys.executable, "-m", "grpc_plugin.bridge", "--host", "127.0.0.1", "--port", "0", *args]
    )


# -- measuring ---------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank) of `samples`."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def alternate(
    sides: Mapping[str, Callable[[], Awaitable[float]]], rounds: int
) -> dict[str, list[float]]:
    """Run every side once a round, in reverse order every other round; collect what each returns.

    With two sides the order goes AB BA AB ..., so drift in the machine (another session starting
    its tests, caches warming) falls on both sides alike.
    """
    samples: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for round_number in range(rounds):
        for name in order if round_number % 2 == 0 else reversed(order):
            samples[name].append(await sides[name]())
    return samples


# -- reporting ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """What a row must show: a ratio (gateway / bare) or the gateway's own figure, bounded."""

    bound: float
    on_ratio: bool = True
    at_least: bool = False

    def met(self, row: Row) -> bool | None:
        value = row.ratio if self.on_ratio else row.gateway
        if value is None:
            return None
        return value >= self.bound if self.at_least else value <= self.bound

    def __str__(self) -> str:
        sign = ">=" if self.at_least else "<="
        if self.on_ratio:
            return f"{sign} {self.bound:.2f}"
        return f"{sign} {_format(self.bound, None)}"


def ratio_at_most(bound: float) -> Goal:
    return Goal(bound)


def at_most(bound: float) -> Goal:
    return Goal(bound, on_ratio=False)


def at_least(bound: float) -> Goal:
    return Goal(bound, on_ratio=False, at_least=True)


@dataclass(frozen=True)
class Row:
    """One line of a benchmark's table; figures in `unit` (ms, us, s, %core, quotes/s, ...)."""

    name: str
    bare: float | None
    gateway: float | None
    unit: str
    goal: Goal | None = None

    @property
    def ratio(self) -> float | None:
        if self.bare is None or self.gateway is None or self.bare == 0:
            return None
        return self.gateway / self.bare

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "bare": self.bare,
            "gateway": self.gateway,
            "ratio": self.ratio,
            "goal": str(self.goal) if self.goal else None,
            "goal_met": self.goal.met(self) if self.goal else None,
        }


def _format(value: float | None, unit: str | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    magnitude = abs(value)
    text = f"{value:,.0f}" if magnitude >= 1000 else f"{value:.3g}" if magnitude < 100 else f"{value:.1f}"
    return f"{text} {unit}" if unit else text


def print_table(title: str, rows: Sequence[Row]) -> None:
    """The table every benchmark prints: bare / gateway / ratio / goal (and whether it is met)."""
    width = max(len(row.name) for row in rows)
    print(f"\n{title}")
    print(f"{'benchmark':{width}}  {'bare':>16}  {'gateway':>16}  {'ratio':>6}  {'goal':>14}  met")
    for row in rows:
        met = row.goal.met(row) if row.goal else None
        print(
            f"{row.name:{width}}  {_format(row.bare, row.unit):>16}  {_format(row.gateway, row.unit):>16}  "
            f"{_format(row.ratio, None):>6}  {row.goal or ''!s:>14}  "
            f"{'' if met is None else 'yes' if met else 'NO'}"
        )


def environment() -> dict[str, Any]:
    """What a figure depends on: the commit (and whether the tree had changes), Python, grpcio."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "unknown"

    return {
        "commit": git("rev-parse", "HEAD"),
        "tree_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "grpcio": grpc.__version__,
        "protobuf": protobuf.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
    }


def report(
    name: str, title: str, rows: Sequence[Row], json_path: Path, details: Mapping[str, Any] | None = None
) -> None:
    """Print the table and write the figures, with `environment()`, to `json_path`."""
    print_table(title, rows)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "environment": environment(),
        "rows": [row.as_json() for row in rows],
        "details": dict(details or {}),
    }
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"figures written to {json_path}")


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark has (`--json`)."""
    text = doc or name
    result = argparse.ArgumentParser(
        description=text.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    result.add_argument(
        "--json", type=Path, default=RESULTS / f"{name}.json", help="where the figures are written"
    )
    return result
