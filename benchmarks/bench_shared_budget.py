"""Processes sharing one budget through Redis (RedisRateLimiter), counted at a reference bridge.

    python -m benchmarks.bench_shared_budget [--processes 2 4 8] [--seconds 10] [--limit 50/1.0]
        [--callers 4] [--margin 0.01] [--json PATH]

One table (`_common`): bare is the baseline below, ours the processes sharing Redis.

For each number of processes, that many client processes (bare grpc stubs doing GetQuote, each
under a RedisRateLimiter on one budget) saturate `--limit` for `--seconds`, while a reference bridge
in a process of its own (budget off) records every arrival. Per run:

- windows over the limit: windows of one period at the bridge, one starting at each arrival, that
  hold more than max_calls (goal 0), also counted 10 ms + 10% shorter as the conformance suite does
  (calls granted a window apart reach the bridge a little closer), and the most any window held;
- utilisation: calls in the whole periods after the first arrival, over what the limit allows in
  them (goal >= 95%);
- fairness: Jain's index of the processes' calls while all of them were running (goal >= 0.95).

The first row is the baseline: one process under the in-process RateLimiter, with as many callers
as the four-process run, measured the same way. The burst spread (how long the first window's calls,
granted at once, took to reach the bridge) is what a limiter's margin has to cover.

Then the cost of one permit with capacity available, RedisRateLimiter against the in-process
RateLimiter in this process, rounds alternated, and the ratio. redis-server runs on a unix socket
in a temporary directory, without persistence.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

from benchmarks._common import REPO, Row, at_least, at_most, parser, report
from benchmarks._redis import redis_server
from broker_plugins import RateLimit, RateLimiter, RedisRateLimiter

STARTUP = 60.0  # seconds a process may take to say it is ready, on a busy machine
HUGE = 10**12


def _child(module: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
    )


def _line(process: subprocess.Popen[str], within: float = STARTUP) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], within)
    if not ready:
        raise RuntimeError("a child process said nothing in time")
    return process.stdout.readline().strip()


def _say(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(f"{line}\n")
    process.stdin.flush()


class RecordingBridge:
    """`benchmarks._recording_bridge` in its own process: the reference bridge, budget off."""

    def __init__(self, accounts: int) -> None:
        tokens = ",".join(f"t{index}" for index in range(accounts))
        self.process = _child(
            "benchmarks._recording_bridge",
            *("--host", "127.0.0.1", "--port", "0", "--no-budget"),
            env={"BRIDGE_TOKENS": tokens},
        )
        line = _line(self.process)
        if not line.startswith("listening on "):
            raise RuntimeError(f"bridge did not start: {line!r}")
        self.address = line.removeprefix("listening on ")

    def clear(self) -> None:
        _say(self.process, "clear")
        _say(self.process, "dump")
        json.loads(_line(self.process))  # the clear was done: the dump after it answered

    def arrivals(self) -> list[tuple[str, float]]:
        _say(self.process, "dump")
        return [(account, at) for account, at in json.loads(_line(self.process))]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            _say(self.process, "stop")
        self.process.wait(30)


@contextlib.contextmanager
def recording_bridge(accounts: int) -> Iterator[RecordingBridge]:
    bridge = RecordingBridge(accounts)
    try:
        yield bridge
    finally:
        bridge.close()


def windows_over(times: list[float], limit: RateLimit, allowance: float = 0.0) -> tuple[int, int]:
    """(windows holding more than max_calls, the most any held), one window starting at each call."""
    ordered = sorted(times)
    over = most = 0
    last = 0
    for first, start in enumerate(ordered):
        last = max(last, first)
        while last + 1 < len(ordered) and ordered[last + 1] - start < limit.period - allowance:
            last += 1
        held = last - first + 1
        most = max(most, held)
        over += held > limit.max_calls
    return over, most


def utilisation(times: list[float], limit: RateLimit, stopped: float) -> float:
    """Calls in the whole periods from the first call to the stop, over what the limit allows there."""
    start = min(times)
    periods = int((stopped - start) // limit.period)
    end = start + periods * limit.period
    return sum(start <= t < end for t in times) / (periods * limit.max_calls)


def jain(seen: list[tuple[str, float]], processes: int, limit: RateLimit, stopped: float) -> float:
    """Jain's index of the calls per process from one period after the last one started, to the stop."""
    firsts: dict[str, float] = {}
    for account, at in seen:
        firsts[account] = min(at, firsts.get(account, at))
    if len(firsts) < processes:
        return 0.0
    since = max(firsts.values()) + limit.period
    counts = Counter(account for account, at in seen if since <= at < stopped)
    shares = [counts[account] for account in firsts]
    return sum(shares) ** 2 / (len(shares) * sum(x * x for x in shares)) if any(shares) else 0.0


def run_budget(
    url: str, bridge: RecordingBridge, processes: int, args: argparse.Namespace, *, local: bool = False
) -> dict[str, Any]:
    calls, period = args.limit.split("/")
    limit = RateLimit(int(calls), float(period))
    budget = f"bench-{processes}-{uuid.uuid4().hex[:8]}"
    callers = args.callers * 4 if local else args.callers
    clients = [
        _child(
            "benchmarks._budget_client",
            *(f"--url={url}", f"--budget={budget}", f"--limit={args.limit}", f"--target={bridge.address}"),
            *(f"--callers={callers}", f"--margin={args.margin}", *(["--local"] if local else [])),
            env={"BRIDGE_TOKEN": f"t{index}"},
        )
        for index in range(processes)
    ]
    try:
        for client in clients:
            if _line(client) != "ready":
                raise RuntimeError("a client did not start")
        bridge.clear()
        for client in clients:
            _say(client, "go")
        time.sleep(args.seconds)
        for client in clients:
            _say(client, "stop")
        stopped = time.monotonic()
        results = [json.loads(_line(client)) for client in clients]
    finally:
        for client in clients:
            client.wait(30)
    seen = bridge.arrivals()
    times = [at for _, at in seen]
    over, most = windows_over(times, limit)
    over_allowed, _ = windows_over(times, limit, 0.010 + 0.1 * limit.period)
    return {
        "limiter": "RateLimiter" if local else "RedisRateLimiter",
        "processes": processes,
        "windows_over_allowance": over_allowed,
        "calls": len(seen),
        "windows_over_limit": over,
        "most_in_a_window": most,
        "limit": str(limit),
        "utilisation": utilisation(times, limit, stopped),
        "jain": jain(seen, processes, limit, stopped),
        "permits_refused": sum(result["failed"] for result in results),
        # How long the first burst (granted at once) took to reach the bridge: what a margin must cover.
        "burst_spread_ms": (sorted(times)[limit.max_calls - 1] - min(times)) * 1e3,
    }


async def permit_cost(url: str, permits: int, rounds: int) -> dict[str, float]:
    """Seconds per permit with capacity available: RedisRateLimiter and RateLimiter, best round."""
    local = RateLimiter(RateLimit(HUGE, 1.0))
    best = {"RateLimiter": float("inf"), "RedisRateLimiter": float("inf")}
    async with RedisRateLimiter(url, RateLimit(HUGE, 1.0), budget=f"cost-{uuid.uuid4().hex[:8]}") as shared:
        await shared.acquire("market_data")  # connected
        for _ in range(rounds):
            for name, limiter in (("RateLimiter", local), ("RedisRateLimiter", shared)):
                started = time.perf_counter()
                for _ in range(permits):
                    await limiter.acquire("market_data")
                best[name] = min(best[name], (time.perf_counter() - started) / permits)
    return best


def rows_of(baseline: dict[str, Any], runs: list[dict[str, Any]], cost: dict[str, float]) -> list[Row]:
    rows = []
    for run in runs:
        n = run["processes"]
        rows += [
            Row(
                f"windows over the limit, {n} processes",
                baseline["windows_over_limit"],
                run["windows_over_limit"],
                "windows",
                at_most(0),
            ),
            Row(
                f"  counted 10 ms + 10% short, {n} processes",
                baseline["windows_over_allowance"],
                run["windows_over_allowance"],
                "windows",
                at_most(0),
            ),
            Row(
                f"utilisation, {n} processes",
                100 * baseline["utilisation"],
                100 * run["utilisation"],
                "%",
                at_least(95),
            ),
            Row(f"Jain's index, {n} processes", None, run["jain"], "", at_least(0.95)),
        ]
    rows.append(
        Row("one permit, capacity available", cost["RateLimiter"] * 1e6, cost["RedisRateLimiter"] * 1e6, "us")
    )
    return rows


def main() -> None:
    arguments = parser("shared_budget", __doc__)
    arguments.add_argument("--processes", type=int, nargs="+", default=[2, 4, 8])
    arguments.add_argument("--seconds", type=float, default=10.0)
    arguments.add_argument("--limit", default="50/1.0", help="CALLS/SECONDS (default 50/1.0)")
    arguments.add_argument("--callers", type=int, default=4, help="concurrent callers per process")
    arguments.add_argument(
        "--margin", type=float, default=0.01, help="the limiters' margin (default: a gateway's, 0.01)"
    )
    args = arguments.parse_args()
    with redis_server() as url, recording_bridge(max(args.processes)) as bridge:
        baseline = run_budget(url, bridge, 1, args, local=True)
        runs = [run_budget(url, bridge, processes, args) for processes in args.processes]
        cost = asyncio.run(permit_cost(url, 2000, 5))
    title = (
        f"{args.limit} shared through Redis for {args.seconds:g} s, counted at the bridge,"
        f" margin {args.margin:g} s (bare: one process under RateLimiter, {4 * args.callers} callers)"
    )
    spread = ", ".join(f"{run['processes']}: {run['burst_spread_ms']:.0f} ms" for run in [baseline, *runs])
    report("shared_budget", title, rows_of(baseline, runs, cost), args.json, {"runs": [baseline, *runs]})
    print(f"first burst took to reach the bridge (what a margin must cover): {spread}")


if __name__ == "__main__":
    main()
