"""The fixture every clause runs on, and the `clause` decorator that names what a test proves."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar, cast

import pytest
import pytest_asyncio

from broker_plugins import RateLimit
from conformance_tests._backdoor import on_harness
from conformance_tests._harness import HARNESS_VERSION, BreakMode, ConformanceHarness
from conformance_tests._support import bounded

__all__ = ["GENEROUS", "SuiteBase", "check_harness", "clause"]

_Test = TypeVar("_Test", bound=Callable[..., Coroutine[Any, Any, None]])

GENEROUS = RateLimit(1000, 1.0)
"""Limits for clauses that are not about rate limiting: high enough never to be the thing waited on."""

_HARNESS_BOUND = 60.0
_MEMBERS = tuple(name for name in dir(ConformanceHarness) if not name.startswith("_"))


def check_harness(harness: object) -> ConformanceHarness:
    """`harness` if it speaks this suite's harness protocol; otherwise the test errors, saying why."""
    __tracebackhide__ = True
    if not isinstance(harness, ConformanceHarness):
        missing = ", ".join(name for name in _MEMBERS if not hasattr(harness, name))
        pytest.fail(
            f"broker_harness gave a {type(harness).__name__}, which is not a ConformanceHarness "
            f"(missing: {missing})",
            pytrace=False,
        )
    if harness.version not in range(1, HARNESS_VERSION + 1):
        pytest.fail(
            f"the harness speaks protocol version {harness.version!r}; this suite speaks 1 to "
            f"{HARNESS_VERSION}",
            pytrace=False,
        )
    if BreakMode.CUT not in harness.break_modes:
        pytest.fail("the harness must offer BreakMode.CUT in break_modes", pytrace=False)
    return harness


def clause(clause_id: str) -> Callable[[_Test], _Test]:
    """Make an async test the check of clause `clause_id`.

    It runs on its own event loop (pytest-asyncio, function scope, whatever the project's asyncio
    mode), and an error nobody expected, from the gateway or the harness, fails it under the clause
    with the original traceback chained.
    """

    def decorate(test: _Test) -> _Test:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            __tracebackhide__ = True
            try:
                await test(*args, **kwargs)
            except Exception as exc:
                raise AssertionError(f"[{clause_id}] unexpected {type(exc).__name__}: {exc}") from exc

        marked = pytest.mark.asyncio(loop_scope="function")(run)
        return cast(_Test, marked)

    return decorate


class SuiteBase:
    """What every group of clauses shares: the started harness."""

    __test__ = False

    @pytest_asyncio.fixture(loop_scope="function")
    async def started_broker_harness(self, broker_harness: object) -> AsyncIterator[ConformanceHarness]:
        """The implementer's `broker_harness`, started for one test and stopped after it."""
        candidate = await broker_harness if inspect.isawaitable(broker_harness) else broker_harness
        harness = check_harness(candidate)
        await bounded("harness", on_harness(harness.start()), _HARNESS_BOUND, "the harness's start()")
        try:
            yield harness
        finally:
            await bounded("harness", on_harness(harness.stop()), _HARNESS_BOUND, "the harness's stop()")
