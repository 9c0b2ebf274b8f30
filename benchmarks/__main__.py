"""Run every benchmark, one after another, each in its own process: `python -m benchmarks`.

    python -m benchmarks [NAME ...]

Each prints its table and writes `benchmarks/results/<name>.json`; with names, only those run
(for example `python -m benchmarks candles stream`). Meant for a quiet machine: nothing else should
run meanwhile, since every figure is a ratio of two sides measured in turn in the same run.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks._common import REPO

BENCHMARKS = [
    "quote",
    "candles",
    "stream",
    "idle",
    "reconnect",
    "cli_start",
    "loop_stall",
    "ratelimit",
    "shared_budget",
    "conformance",
]


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names or BENCHMARKS:
        print(f"\n== python -m benchmarks.bench_{name}", flush=True)
        if subprocess.run(
            [sys.executable, "-m", f"benchmarks.bench_{name}"], cwd=REPO, check=False
        ).returncode:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
