"""Running bridges and the kit for the kit's self-tests.

A bridge runs in a thread with its own event loop (`BridgeThread`), so that the kit, which speaks
synchronous gRPC, can run in this process's main thread against it, inline under pytester (a
fresh interpreter per run would cost more than the runs themselves). The kit's verdicts are read
from the JUnit report, by the `clause` property each test records.
"""

from __future__ import annotations

import asyncio
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest

from grpc_plugin.bridge import BridgeConfig, BridgeServer

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "kit-token-0123456789"
_CLAUSE_IN_NAME = re.compile(r"test_bk_([a-z]+)(\d+)_")


@attrs.frozen
class Verdict:
    """What the kit decided on one clause."""

    outcome: str  # passed, failed, skipped, error
    text: str = ""


class BridgeThread:
    """A BridgeServer (of any subclass) serving from a thread of its own."""

    def __init__(self, server_type: type[BridgeServer], config: BridgeConfig) -> None:
        self._server_type = server_type
        self._config = config
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.address = ""
        self._thread = threading.Thread(target=self._run, name="bridge-under-test", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = self._server_type(self._config)
        try:
            await server.start()
        except BaseException as error:
            self._failure = error
            self._ready.set()
            raise
        self.address = server.address
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.stop(grace=0)

    def __enter__(self) -> BridgeThread:
        self._thread.start()
        assert self._ready.wait(20), "the bridge did not start"
        if self._failure is not None:
            raise self._failure
        return self

    def __exit__(self, *_: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        assert not self._thread.is_alive(), "the bridge did not stop"


@contextmanager
def bridge_thread(server_type: type[BridgeServer], **config: object) -> Iterator[BridgeThread]:
    """A bridge of `server_type` on 127.0.0.1, with the kit's token unless `tokens` is given."""
    config.setdefault("host", "127.0.0.1")
    config.setdefault("tokens", {TOKEN: "paper"})
    config.setdefault("budget", ())
    config.setdefault("tick_rate", 20.0)
    with BridgeThread(server_type, BridgeConfig(**config)) as running:  # type: ignore[arg-type]
        yield running


def prepare(pytester: pytest.Pytester) -> None:
    """An outsider's configuration: only this project importable, nothing of its pytest settings."""
    pytester.makeini(
        "[pytest]\n"
        "asyncio_default_fixture_loop_scope = function\n"
        f"pythonpath = {ROOT}\n"
        # The outer run imported the kit's plugin already; the kit does not rely on assert rewriting.
        "filterwarnings = ignore::pytest.PytestAssertRewriteWarning\n"
    )


def kit_arguments(target: str, *flags: str, token: str | None = TOKEN) -> list[str]:
    """The kit's command line against `target`."""
    arguments = ["-p", "no:cacheprovider", "--pyargs", "conformance_tests.bridge", "--bridge-target", target]
    if token is not None:
        arguments += ["--bridge-token", token]
    return [*arguments, *flags, "--junitxml=report.xml"]


def verdicts(report: Path) -> dict[str, Verdict]:
    """Each clause's verdict in a JUnit report of the kit."""
    found: dict[str, Verdict] = {}
    for case in ET.parse(report).iter("testcase"):
        named = _CLAUSE_IN_NAME.match(case.get("name", ""))
        clause = next(
            (p.get("value", "") for p in case.iter("property") if p.get("name") == "clause"),
            f"BK-{named[1].upper()}-{named[2]}" if named else case.get("name", ""),
        )
        outcome, text = "passed", ""
        for kind in ("skipped", "error", "failure"):
            element = case.find(kind)
            if element is not None:
                outcome = "failed" if kind == "failure" else kind
                text = f"{element.get('message', '')}\n{element.text or ''}"
        found[clause] = Verdict(outcome, text)
    return found


def run_kit_inline(
    pytester: pytest.Pytester, target: str, *flags: str, token: str | None = TOKEN
) -> dict[str, Verdict]:
    """Run the kit in this process against `target`; each clause's verdict."""
    prepare(pytester)
    pytester.runpytest_inprocess(*kit_arguments(target, *flags, token=token))
    return verdicts(pytester.path / "report.xml")
