"""Running the conformance suite in fresh processes, side by side, and reading what it decided.

Each run is a pytest process of its own (`SuiteRun.start`), with the example and this project
importable, as an outsider's run would be. They are started together and mostly wait on timers, so
running them side by side costs about as long as the longest; the suite confirms a timing-sensitive
violation before reporting it, so a busy machine does not turn into failures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "memory_broker"

_CLAUSE_IN_NAME = re.compile(r"test_([a-z]{2})(\d+)_")
_CLAUSE_IN_TEXT = re.compile(r"\[([A-Z]{2}-\d+)\]")
_INI = f"[pytest]\nasyncio_default_fixture_loop_scope = function\npythonpath = {EXAMPLE / 'src'} {ROOT}\n"


@attrs.frozen
class ClauseResult:
    """What the suite decided on one clause: its outcome and, unless it passed, the report text."""

    outcome: str
    text: str = ""


Results = dict[str, dict[str, ClauseResult]]
"""By test class name, then by clause id."""


def clause_of(name: str) -> str:
    """`RL-2` for `test_rl2_...`: the clause a test of the suite checks."""
    match = _CLAUSE_IN_NAME.search(name)
    assert match, f"{name} does not name a clause"
    return f"{match[1].upper()}-{match[2]}"


def selector(name: str, clauses: Iterable[str]) -> str:
    """A `-k` expression for the tests of class `name` that check `clauses`."""
    tests = " or ".join(f"test_{clause.replace('-', '').lower()}_" for clause in sorted(clauses))
    return f"({name} and ({tests}))"


def named_clauses(text: str) -> set[str]:
    """The clause ids a failure report names, like `[RC-5]`."""
    return set(_CLAUSE_IN_TEXT.findall(text))


@attrs.frozen
class SuiteRun:
    """One pytest process: a test module (or `--pyargs` arguments) and what to select in it."""

    name: str
    module: str | None = None
    arguments: tuple[str, ...] = ()
    select: str | None = None

    def start(self, directory: Path) -> StartedRun:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "pytest.ini").write_text(_INI)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--junitxml=report.xml"]
        if self.module is not None:
            (directory / f"test_{self.name}.py").write_text(self.module)
            command.append(f"test_{self.name}.py")
        command += list(self.arguments)
        if self.select is not None:
            command += ["-k", self.select]
        environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        environment.pop("PYTEST_ADDOPTS", None)
        log = (directory / "output.txt").open("w")
        process = subprocess.Popen(
            command, cwd=directory, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
        log.close()
        return StartedRun(self.name, directory, process, time.monotonic())


@attrs.define
class StartedRun:
    """A run under way; `results()` waits for it and reads its JUnit report."""

    name: str
    directory: Path
    process: subprocess.Popen[bytes]
    started: float
    finished: float | None = None

    def results(self, timeout: float) -> Results:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"the suite run {self.name} took over {timeout:g} s:\n{self.output()}"
            ) from None
        if self.finished is None:
            self.finished = time.monotonic()
        report = self.directory / "report.xml"
        assert report.exists(), f"the suite run {self.name} wrote no report:\n{self.output()}"
        return results_by_clause(report)

    def output(self) -> str:
        return (self.directory / "output.txt").read_text()[-8000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def results_by_clause(report: Path) -> Results:
    """Each clause's outcome in a JUnit XML report: passed, failed, error (setup/teardown) or skipped."""
    results: Results = {}
    for case in ET.parse(report).iter("testcase"):
        outcome, text = "passed", ""
        for kind in ("skipped", "error", "failure"):  # the last one found wins
            element = case.find(kind)
            if element is not None:
                outcome = "failed" if kind == "failure" else kind
                text = f"{element.get('message', '')}\n{element.text or ''}"
        owner = case.get("classname", "").rpartition(".")[2]
        results.setdefault(owner, {})[clause_of(case.get("name", ""))] = ClauseResult(outcome, text)
    return results


def whole(runs: Mapping[str, StartedRun], names: Iterable[str], timeout: float) -> dict[str, ClauseResult]:
    """The results of runs that each ran part of the suite on one class, joined in the order given."""
    joined: dict[str, ClauseResult] = {}
    for name in names:
        for results in runs[name].results(timeout).values():
            joined.update(results)
    return joined


def describe(results: Mapping[str, ClauseResult]) -> str:
    """Every clause that did not pass, with its report, for an assertion message."""
    return "\n\n".join(
        f"{clause}: {result.outcome}\n{result.text}" for clause, result in results.items() if result.text
    )
