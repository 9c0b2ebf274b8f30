"""What the clauses share: failures that name their clause, awaits that cannot hang the suite,
gateways that are always closed, state logs, and snapshots of running tasks and open files."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import ROUND_FLOOR, Decimal
from typing import Any, NamedTuple, NoReturn, TypeVar, cast

import pytest

from broker_plugins import (
    BrokerError,
    ConnectionState,
    IBrokerGateway,
    Instrument,
    Interval,
    OrderRequest,
    Quote,
    RateLimitsSpec,
    StateChange,
)
from conformance_tests._harness import ConformanceHarness

__all__ = [
    "CALL_BOUND",
    "FD_UNAVAILABLE",
    "Outcome",
    "StateLog",
    "attempt",
    "bounded",
    "close_stream",
    "connected",
    "describe_tasks",
    "disconnect_quietly",
    "ending",
    "eventually",
    "expect",
    "first_item",
    "open_fd_count",
    "open_gateway",
    "outcome_of",
    "quiet",
    "read_calls",
    "resting_order",
    "running_tasks",
    "violated",
]

_T = TypeVar("_T")

CALL_BOUND = 10.0
"""Seconds any one call may take before the suite calls it a hang (calls that must be fast have
their own, tighter bounds)."""
_CONNECT_BOUND = 10.0
_DISCONNECT_BOUND = 5.0
FD_UNAVAILABLE = "open files are counted through /proc/self/fd, which this platform does not have"


def violated(clause: str, message: str) -> NoReturn:
    """Fail the running test, naming the clause it broke."""
    __tracebackhide__ = True
    pytest.fail(f"[{clause}] {message}", pytrace=False)


def expect(condition: bool, clause: str, message: str) -> None:
    """`violated(clause, message)` unless `condition` holds."""
    __tracebackhide__ = True
    if not condition:
        violated(clause, message)


class Outcome(NamedTuple):
    """How an awaited call ended: with a value, an error, or not within its bound."""

    finished: bool
    value: object = None
    error: BaseException | None = None


async def outcome_of(awaitable: Awaitable[object], seconds: float) -> Outcome:
    """Await `awaitable` for at most `seconds` and report how it ended; it never raises for the call.

    The awaitable runs as its own task, so a timeout is told apart from a `BrokerTimeoutError` (which
    is a `TimeoutError` too) that the call itself raised.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _pending = await asyncio.wait({task}, timeout=seconds)
    except BaseException:
        task.cancel()
        raise
    if not done:
        task.cancel()
        # A moment to unwind; a call that ignores cancellation is left to the loop's teardown.
        await asyncio.wait({task}, timeout=1.0)
        return Outcome(finished=False)
    if task.cancelled():
        return Outcome(finished=True, error=asyncio.CancelledError())
    error = task.exception()
    return Outcome(finished=True, error=error) if error is not None else Outcome(True, task.result())


async def bounded(clause: str, awaitable: Awaitable[_T], seconds: float, what: str) -> _T:
    """Await `awaitable` for at most `seconds`: a hang fails `clause` instead of hanging the suite.
    Whatever the call raises is raised here."""
    __tracebackhide__ = True
    outcome = await outcome_of(awaitable, seconds)
    if not outcome.finished:
        violated(clause, f"{what} did not finish within {seconds:g} s")
    if outcome.error is not None:
        raise outcome.error
    return cast(_T, outcome.value)


async def attempt(clause: str, awaitable: Awaitable[_T], seconds: float, what: str) -> _T | BrokerError:
    """Like `bounded`, but a `BrokerError` the call raises is returned rather than raised."""
    __tracebackhide__ = True
    try:
        return await bounded(clause, awaitable, seconds, what)
    except BrokerError as exc:
        return exc


async def disconnect_quietly(gateway: IBrokerGateway) -> None:
    """disconnect() for cleanup after a failure: bounded, and whatever it raises is dropped."""
    task = asyncio.ensure_future(gateway.disconnect())
    done, _pending = await asyncio.wait({task}, timeout=_DISCONNECT_BOUND)
    if not done:
        task.cancel()
    elif not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it: the test has already failed


@asynccontextmanager
async def connected(gateway: IBrokerGateway, clause: str) -> AsyncIterator[IBrokerGateway]:
    """`gateway`, connected, and disconnected on the way out however the test ends."""
    finished = False
    try:
        try:
            await bounded(clause, gateway.connect(), _CONNECT_BOUND, "connect()")
        except BrokerError as exc:
            violated(clause, f"connect() to a healthy backend failed: {exc!r}")
        yield gateway
        finished = True
    finally:
        if finished:
            await bounded(clause, gateway.disconnect(), _DISCONNECT_BOUND, "disconnect()")
        else:
            await disconnect_quietly(gateway)


def open_gateway(
    harness: ConformanceHarness, limits: RateLimitsSpec, clause: str
) -> AbstractAsyncContextManager[IBrokerGateway]:
    """A new gateway from the harness, limited by `limits`, connected for the `async with` block."""
    return connected(harness.create_gateway(limits), clause)


class StateLog:
    """The state changes a gateway reports, in order, from the moment the log is attached."""

    def __init__(self, gateway: IBrokerGateway) -> None:
        self.initial = gateway.state
        self.changes: list[StateChange] = []
        self.remove = gateway.add_state_listener(self.changes.append)

    def states(self) -> list[ConnectionState]:
        return [change.current for change in self.changes]

    def describe(self) -> str:
        return " -> ".join(str(state) for state in (self.initial, *self.states()))


async def eventually(predicate: Callable[[], bool], seconds: float, interval: float = 0.005) -> bool:
    """Whether `predicate()` holds at some check within `seconds`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)
    return True


async def quiet(measure: Callable[[], int | None], seconds: float = 2.0) -> int | None:
    """`measure()` once it has held still for 0.2 s (or after `seconds`): a baseline that does not
    count what a previous connection was still winding down."""
    deadline = time.monotonic() + seconds
    value = measure()
    still_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - still_since < 0.2:
        await asyncio.sleep(0.02)
        latest = measure()
        if latest != value:
            value, still_since = latest, time.monotonic()
    return value


def running_tasks() -> set[asyncio.Task[Any]]:
    """Every unfinished task of the running loop but the caller's own."""
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks() if task is not current}


def describe_tasks(tasks: Iterable[asyncio.Task[Any]], most: int = 5) -> str:
    """Names and coroutines of up to `most` tasks, for a failure message."""
    names = sorted(f"{task.get_name()} ({getattr(task.get_coro(), '__qualname__', '?')})" for task in tasks)
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def ending(task: asyncio.Future[Any]) -> str:
    """How a task ended, for a failure message: its error, or that it finished, or is still running."""
    if not task.done():
        return "still running"
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return "finished" if error is None else repr(error)


def open_fd_count() -> int | None:
    """How many file descriptors this process holds, or None where that cannot be told."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


async def first_item(stream: AsyncIterator[_T]) -> _T:
    """The first item of `stream`; the stream is closed afterwards."""
    try:
        return await stream.__anext__()
    finally:
        await close_stream(stream)


async def close_stream(stream: AsyncIterator[Any]) -> None:
    """Close an async generator (a `break` out of `async for` does not)."""
    aclose: Callable[[], Awaitable[None]] | None = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def read_calls(gateway: IBrokerGateway, symbol: str) -> dict[str, Callable[[], Coroutine[Any, Any, object]]]:
    """One harmless call of every read method, by method name."""
    return {
        "get_quote": lambda: gateway.get_quote(symbol),
        "get_candles": lambda: gateway.get_candles(symbol, Interval.M1, limit=5),
        "get_instrument": lambda: gateway.get_instrument(symbol),
        "get_orders": gateway.get_orders,
        "get_positions": gateway.get_positions,
        "get_balance": gateway.get_balance,
    }


def resting_order(quote: Quote, instrument: Instrument, *, client_order_id: str) -> OrderRequest:
    """A one-lot limit buy well under the bid, on the tick grid, so that it rests on the book."""
    tick = instrument.tick_size if instrument.tick_size > 0 else Decimal("0.01")
    ticks = (quote.bid * Decimal("0.9") / tick).to_integral_value(rounding=ROUND_FLOOR)
    price = max(ticks, Decimal(1)) * tick
    if instrument.tick_schedule is not None and not instrument.tick_schedule.is_flat:
        # By price band (KRX): 90% of the bid may lie in a band with another tick than tick_size.
        price = instrument.tick_schedule.round_price(price, "down")
    quantity = instrument.lot_size if instrument.lot_size > 0 else Decimal(1)
    return OrderRequest.limit(quote.symbol, "buy", quantity, price, client_order_id=client_order_id)
