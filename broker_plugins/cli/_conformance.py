"""`brokerctl conformance NAME`: run the conformance suite on a gateway and print a verdict per clause.

The suite runs as `pytest --pyargs conformance_tests --broker-gateway NAME` in a child process, in
an empty directory with an empty pytest config, so that the caller's own pytest settings do not
change it. The verdicts are read from pytest's JUnit XML report, the one stable interface it has;
nothing here knows how the suite is written beyond "a failure message starts with [CLAUSE-ID]".
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import attrs

from broker_plugins.cli._context import Context
from broker_plugins.cli._exit import CliError, ExitCode, UsageError
from broker_plugins.cli._output import Column, table
from broker_plugins.cli._output import is_terminal as _is_terminal

__all__ = ["ClauseVerdict", "conformance", "kit_command", "parse_report", "pytest_command"]

_CLAUSE_IN_MESSAGE = re.compile(r"\[([A-Z]{1,8}(?:-[A-Z]{1,8})?-\d+)\]")
_CLAUSE_IN_NAME = re.compile(r"^test_([a-z]{1,8}(?:_[a-z]{1,8})?)(\d+)_")
_TOKEN_VARIABLE = "BROKERCTL_TOKEN"  # noqa: S105 - the name of a variable, not a secret
_PYTEST_USAGE = 4
_NO_TESTS = 5


@attrs.frozen(kw_only=True)
class ClauseVerdict:
    """The outcome of one clause: `passed`, `failed`, `error` or `skipped`, and why."""

    clause: str
    verdict: str
    test: str
    message: str = ""


def pytest_command(gateway_name: str, report: Path, config: Path, extra: list[str]) -> list[str]:
    """The child process that runs the suite on `gateway_name`."""
    return _pytest(["--pyargs", "conformance_tests", "--broker-gateway", gateway_name], report, config, extra)


def kit_command(
    target: str, report: Path, config: Path, extra: list[str], *, token_variable: str | None
) -> list[str]:
    """The child process that runs the bridge kit on the server at `target` (the token, if any, is
    read by the kit from the variable named, so that it never shows in a process list)."""
    kit = ["--pyargs", "conformance_tests.bridge", "--bridge-target", target]
    if token_variable is not None:
        kit += ["--bridge-token-env", token_variable]
    return _pytest(kit, report, config, extra)


def _pytest(what: list[str], report: Path, config: Path, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        *what,
        "-c",
        str(config),
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        "-q",
        *extra,
    ]


def _clause_of(name: str, message: str) -> str:
    found = _CLAUSE_IN_MESSAGE.search(message)
    if found:
        return found.group(1)
    named = _CLAUSE_IN_NAME.match(name)
    if named:
        return f"{named.group(1).upper().replace('_', '-')}-{named.group(2)}"
    return name


def parse_report(xml: str) -> list[ClauseVerdict]:
    """The verdict of every test case in a pytest JUnit XML report, in the order they ran."""
    # The report is written by the child process started just before, not received from outside.
    root = ElementTree.fromstring(xml)  # noqa: S314
    verdicts: list[ClauseVerdict] = []
    for case in root.iter("testcase"):
        name = case.get("name", "")
        declared = case.find("properties/property[@name='clause']")
        verdict, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            outcome = case.find(tag)
            if outcome is not None:
                verdict = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (outcome.get("message") or outcome.text or "").strip()
                break
        first_line = message.splitlines()[0] if message else ""
        clause = declared.get("value", "") if declared is not None else _clause_of(name, message)
        verdicts.append(ClauseVerdict(clause=clause, verdict=verdict, test=name, message=first_line))
    return verdicts


def _explain(stderr: str, stdout: str, gateway_name: str) -> str:
    output = f"{stderr}\n{stdout}"
    if "unrecognized arguments" in output and "--broker-gateway" in output:
        return (
            "the installed conformance_tests has no --broker-gateway option, so it cannot run a suite "
            f"for {gateway_name!r} by name; update broker-plugins"
        )
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR", "error", "E "))]
    reason = (errors or lines or ["pytest gave no reason"])[-1]
    # Said in the words of the suite's pytest option: a brokerctl user never typed it.
    return reason.replace(f"ERROR: --broker-gateway {gateway_name}: ", "", 1)


_PROGRESS = re.compile(r"::(test_\w+)\S* (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)")


def _run(
    command: list[str], workdir: Path, timeout: float, on_line: Callable[[str], None]
) -> tuple[int, str]:
    """Run the suite, handing each line of its output to `on_line`; returns its exit code and output."""
    # The command is this interpreter running pytest; nothing in it comes from a shell.
    with subprocess.Popen(  # noqa: S603
        command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        lines: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                on_line(line)
            code = process.wait()
        finally:
            timer.cancel()
            process.kill()
    if code < 0:  # killed by the timer
        raise subprocess.TimeoutExpired(command, timeout)
    return code, "".join(lines)


def _kit_flags(ctx: Context) -> list[str]:
    args = ctx.args
    if args.bridge is None:
        if args.paper or args.budget or args.tls_ca:
            raise UsageError("--paper, --budget and --tls-ca are for the bridge kit: give --bridge HOST:PORT")
        return []
    flags = ["--bridge-paper"] if args.paper else []
    if args.budget:
        flags += ["--bridge-budget", args.budget]
    if args.tls_ca:
        flags += ["--bridge-tls-ca", str(args.tls_ca)]
    return flags


def conformance(ctx: Context) -> ExitCode:
    """Run the suite on gateway `NAME`, or the bridge kit on `--bridge HOST:PORT`; exit 0 when no
    clause failed, 1 when one did."""
    bridge: str | None = ctx.args.bridge
    if (bridge is None) == (ctx.args.name is None):
        raise UsageError("conformance takes a gateway NAME, or --bridge HOST:PORT for the bridge kit")
    name: str = bridge or ctx.args.name
    what = f"the bridge kit on {bridge}" if bridge else f"the conformance suite on gateway {name!r}"
    show = not ctx.json and _is_terminal(ctx.err)
    ctx.note(f"running {what} (a minute or two) ...")

    def on_line(line: str) -> None:
        found = _PROGRESS.search(line)
        if show and found:
            clause = _clause_of(found.group(1), "")
            print(f"  {clause:<8} {found.group(2).lower()}", file=ctx.err, flush=True)

    with tempfile.TemporaryDirectory(prefix="brokerctl-conformance-") as directory:
        workdir = Path(directory)
        report, config = workdir / "report.xml", workdir / "pytest.ini"
        config.write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n", encoding="utf-8")
        extra = ["-v", *_kit_flags(ctx), *ctx.args.pytest_args]
        if bridge is None:
            command = pytest_command(name, report, config, extra)
        else:
            token = _TOKEN_VARIABLE if ctx.environ.get(_TOKEN_VARIABLE) else None
            command = kit_command(bridge, report, config, extra, token_variable=token)
        try:
            code, output = _run(command, workdir, ctx.args.suite_timeout, on_line)
        except subprocess.TimeoutExpired:
            raise CliError(
                f"the conformance suite did not finish within {ctx.args.suite_timeout:g} s", ExitCode.FAILURE
            ) from None
        if code in (_PYTEST_USAGE, _NO_TESTS) or not report.exists():
            raise CliError(f"conformance {name}: {_explain(output, '', name)}", ExitCode.PLUGIN)
        verdicts = parse_report(report.read_text(encoding="utf-8"))
    failed = [v for v in verdicts if v.verdict in ("failed", "error")]
    counts = {
        kind: sum(1 for v in verdicts if v.verdict == kind)
        for kind in ("passed", "failed", "error", "skipped")
    }
    summary = ", ".join(f"{count} {kind}" for kind, count in counts.items() if count)

    def render() -> str:
        columns = [
            Column("CLAUSE", lambda v: v.clause),
            Column("VERDICT", lambda v: v.verdict.upper()),
            Column("DETAIL", lambda v: v.message[:100] or v.test),
        ]
        verdict = "FAILED" if failed else "PASSED"
        return f"{table(columns, verdicts)}\n\n{verdict}: gateway {name!r}: {summary or 'no clauses ran'}"

    ctx.emit({"gateway": name, "passed": not failed, "counts": counts, "clauses": verdicts}, render)
    return ExitCode.FAILURE if failed else ExitCode.OK
