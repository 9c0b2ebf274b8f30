"""Using the harness: its actions run as the harness's own, its optional members are looked up.

Every harness action (start, break, restore, latency, faults) runs in a context marked as the
harness's, so that the tasks it starts, and the tasks those start, are told apart from the
gateway's: a leak report (LC-4) then names only tasks the gateway started.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar, cast

import pytest

from conformance_tests._harness import ConformanceHarness

__all__ = ["gateway_tasks", "member", "on_harness"]

_T = TypeVar("_T")
_ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar("broker_conformance_actor", default="suite")
_HARNESS = "harness"


async def on_harness(action: Awaitable[_T]) -> _T:
    """The outcome of a harness action, run as the harness's own; a harness member that is a plain
    function (its result is not awaitable) is accepted too."""
    outcome: object = action
    if not inspect.isawaitable(outcome):
        return cast(_T, outcome)  # a harness that implemented the action as a plain function
    context = contextvars.copy_context()
    context.run(_ACTOR.set, _HARNESS)
    # A task made inside `context.run` starts from a copy of that context: the mark goes with it,
    # and with every task it starts in turn.
    task = context.run(asyncio.ensure_future, outcome)
    return cast(_T, await task)


def _actor(task: asyncio.Task[Any]) -> str:
    context = getattr(task, "get_context", None)
    found = context() if context is not None else getattr(task, "_context", None)  # Python < 3.12
    if not isinstance(found, contextvars.Context):
        return "suite"
    return found.get(_ACTOR, "suite")


def gateway_tasks(tasks: Iterable[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Those of `tasks` that the harness (its backend, its proxy) did not start: the gateway's."""
    return {task for task in tasks if _actor(task) != _HARNESS}


def member(harness: ConformanceHarness, name: str, why: str) -> Any:
    """The harness's optional (protocol version 2) member `name`; the test skips, naming it and
    saying `why` it is needed, when the harness lacks it."""
    found = getattr(harness, name, None)
    if found is None:
        pytest.skip(
            f"the harness has no `{name}` (harness protocol version 2), which this clause needs {why}"
        )
    return found
