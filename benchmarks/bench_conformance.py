"""How long each clause of the conformance suite takes: a gateway next to the in-memory example.

    python -m benchmarks.bench_conformance [--broker-gateway NAME] [--rounds R] [--json PATH]

Each round runs the whole suite once against the example plugin (the baseline: a broker in memory,
no network) and once against `--broker-gateway` (default `grpc`: the reference bridge in-process
behind a fault proxy), in a fresh pytest process each, the order flipped every other round. Each
clause's figure is its median time over the rounds (the test's own duration in pytest's JUnit
report, setup and teardown included); the ratio says how much longer a clause takes against the
gateway than in memory. The total's goal is the suite's own: under 60 s against the grpc gateway.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from benchmarks._common import REPO, Row, at_most, parser, report

EXAMPLE = REPO / "examples" / "memory_broker"
_INI = f"[pytest]\nasyncio_default_fixture_loop_scope = function\npythonpath = {EXAMPLE / 'src'} {REPO}\n"
_GOAL = 60.0
BASELINE = "memory (example)"


def _suite_times(arguments: list[str]) -> dict[str, tuple[float, str]]:
    """One run of the suite in a fresh process: seconds and outcome per clause, in the order they ran."""
    with tempfile.TemporaryDirectory() as directory:
        where = Path(directory)
        (where / "pytest.ini").write_text(_INI)
        report_path = where / "report.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(where / "pytest.ini"),
        ]
        command.append(f"--junitxml={report_path}")
        subprocess.run(
            [*command, *arguments],
            cwd=where,
            check=False,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        times: dict[str, tuple[float, str]] = {}
        for case in ET.parse(report_path).iter("testcase"):
            name = case.get("name", "")
            clause = name.split("_")[1].upper() if name.startswith("test_") else name
            outcome = "skipped" if case.find("skipped") is not None else "failed" if len(case) else "passed"
            times[f"{clause[:2]}-{clause[2:]}"] = (float(case.get("time", "nan")), outcome)
        return times


def main() -> None:
    arguments = parser("conformance", __doc__)
    arguments.add_argument("--broker-gateway", default="grpc", help="the gateway whose harness is timed")
    arguments.add_argument("--rounds", type=int, default=2, help="runs of the suite on each side")
    options = arguments.parse_args()
    sides = {
        BASELINE: [str(EXAMPLE / "tests" / "test_conformance.py")],
        options.broker_gateway: ["--pyargs", "conformance_tests", "--broker-gateway", options.broker_gateway],
    }
    samples: dict[str, dict[str, list[float]]] = {side: defaultdict(list) for side in sides}
    not_passed: dict[str, set[str]] = defaultdict(set)
    order = list(sides)
    for number in range(options.rounds):
        for side in order if number % 2 == 0 else reversed(order):
            print(f"round {number + 1}: the suite against {side}", file=sys.stderr, flush=True)
            for clause, (seconds, outcome) in _suite_times(sides[side]).items():
                samples[side][clause].append(seconds)
                if outcome != "passed":
                    not_passed[clause].add(f"{outcome} against {side}")
    bare, gateway = (samples[side] for side in sides)
    rows = [
        Row(
            clause + (f" ({', '.join(sorted(not_passed[clause]))})" if not_passed[clause] else ""),
            statistics.median(bare[clause]) if bare.get(clause) else None,
            statistics.median(gateway[clause]) if gateway.get(clause) else None,
            "s",
        )
        for clause in [*gateway, *(clause for clause in bare if clause not in gateway)]
    ]
    rows.append(
        Row(
            "whole suite",
            statistics.median(sum(run) for run in zip(*bare.values(), strict=True)),
            statistics.median(sum(run) for run in zip(*gateway.values(), strict=True)),
            "s",
            at_most(_GOAL),
        )
    )
    title = f"Conformance suite, seconds per clause: {BASELINE} (bare) and {options.broker_gateway} (gateway)"
    report(
        "conformance",
        title,
        rows,
        options.json,
        {"rounds": options.rounds, "gateway": options.broker_gateway},
    )


if __name__ == "__main__":
    main()
