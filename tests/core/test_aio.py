"""wait_for: a timeout that never eats a cancellation (asyncio.wait_for on 3.10/3.11 can)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from broker_plugins._aio import wait_for


async def test_it_times_out() -> None:
    with pytest.raises(asyncio.TimeoutError):
        await wait_for(asyncio.sleep(10), 0.01)


async def test_it_returns_the_result_in_time() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await wait_for(answer(), 1) == 42


async def cancellation_survives(waiter: Callable[[Awaitable[Any], float], Awaitable[Any]]) -> bool:
    """Cancel a task at the moment its awaited call completes; True if the task really stops."""
    done = asyncio.Event()

    async def quick() -> None:
        done.set()

    async def supervisor() -> None:
        for _ in range(10_000):  # bounded, so a swallowed cancel fails the test instead of hanging it
            await waiter(quick(), 1)
            await asyncio.sleep(0)

    task = asyncio.create_task(supervisor())
    await done.wait()  # quick() has run: the next step of the supervisor completes the wait
    task.cancel()
    try:
        await asyncio.wait_for(asyncio.shield(task), 0.5)
    except asyncio.CancelledError:
        return True
    except asyncio.TimeoutError:
        task.cancel()
        return False
    return False


async def test_a_cancellation_that_races_completion_is_kept() -> None:
    assert await cancellation_survives(wait_for)
