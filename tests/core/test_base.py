"""GatewayBase: the lifecycle under concurrency, permits on disconnect, checks and plugin bugs.

The gateway under test is the example plugin's, written on the base, over its in-memory link: real
timers, real tasks, a link that can be cut or black-holed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memory_broker import MemoryBackend, MemoryBrokerGateway, MemoryLink

from broker_plugins import (
    BrokerError,
    BrokerUnavailableError,
    Capability,
    ConnectionState,
    GatewayBase,
    Interval,
    InvalidRequestError,
    Limiter,
    PluginError,
    Quote,
    RateLimit,
    RateLimiter,
    StateChange,
)
from tests.support.waiting import state_of, until


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def link(backend: MemoryBackend) -> MemoryLink:
    return MemoryLink(backend)


@pytest.fixture
async def gateway(link: MemoryLink) -> AsyncIterator[MemoryBrokerGateway]:
    made = MemoryBrokerGateway(link=link, rate_limits=RateLimit(1000, 1.0), connect_timeout=5.0)
    yield made
    await made.disconnect()


async def test_concurrent_connects_open_one_link_and_disconnect_leaves_no_task(
    gateway: MemoryBrokerGateway, link: MemoryLink
) -> None:
    before = asyncio.all_tasks()
    changes: list[StateChange] = []
    gateway.add_state_listener(changes.append)
    await asyncio.gather(gateway.connect(), gateway.connect(), gateway.connect())
    assert len(link._sessions) == 1
    await gateway.connect()  # connected already: changes nothing
    assert len(link._sessions) == 1
    assert [c.current for c in changes] == [ConnectionState.CONNECTING, ConnectionState.CONNECTED]
    await gateway.disconnect()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
    assert not link._sessions


async def test_a_disconnect_during_connect_ends_closed_and_stays_closed(
    gateway: MemoryBrokerGateway, link: MemoryLink
) -> None:
    link.blackhole()  # opening a session now hangs until its timeout
    connecting = asyncio.ensure_future(gateway.connect())
    await until(lambda: gateway.state is ConnectionState.CONNECTING)
    await gateway.disconnect()
    with pytest.raises(
        BrokerUnavailableError, match=r"disconnect\(\) was called while connect\(\)"
    ) as caught:
        await connecting
    # No context: the cancellation's traceback would hold the abandoned attempt's frames (and what
    # they hold, a transport's half-opened connection) as long as the caller keeps the error.
    assert caught.value.__context__ is None
    assert gateway.state is ConnectionState.CLOSED
    link.restore()
    await asyncio.sleep(0.05)
    assert gateway.state is ConnectionState.CLOSED
    assert not link._sessions
    await gateway.connect()  # a closed gateway connects again
    assert state_of(gateway) is ConnectionState.CONNECTED


async def test_cancelling_connect_leaves_it_disconnected(
    gateway: MemoryBrokerGateway, link: MemoryLink
) -> None:
    link.blackhole()
    connecting = asyncio.ensure_future(gateway.connect())
    await until(lambda: gateway.state is ConnectionState.CONNECTING)
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    assert gateway.state is ConnectionState.DISCONNECTED


async def test_a_call_waiting_for_its_permit_fails_on_disconnect_and_sends_nothing(
    link: MemoryLink, backend: MemoryBackend
) -> None:
    gateway = MemoryBrokerGateway(link=link, rate_limits=RateLimit(1, 30.0))
    async with gateway:
        await gateway.get_quote("ACME")  # the only permit in the next 30 s
        waiting = asyncio.ensure_future(gateway.get_quote("ACME"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await gateway.disconnect()
        with pytest.raises(BrokerUnavailableError, match="not connected"):
            await waiting
    assert [r.method for r in backend.received] == ["get_quote"]


async def test_a_paused_stream_is_closed_on_disconnect(gateway: MemoryBrokerGateway) -> None:
    await gateway.connect()
    stream = gateway.stream_quotes(["ACME"])
    assert isinstance(await anext(stream), Quote)
    await gateway.disconnect()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_calls_before_connect_and_after_disconnect_fail_clearly(gateway: MemoryBrokerGateway) -> None:
    with pytest.raises(BrokerUnavailableError, match=r"call connect\(\) first"):
        await gateway.get_quote("ACME")
    health = await gateway.health_check()
    assert (health.healthy, health.error) == (False, "not connected (disconnected)")
    await gateway.disconnect()  # never connected: stays as it is
    assert gateway.state is ConnectionState.DISCONNECTED
    async with gateway:
        assert (await gateway.health_check()).healthy
    with pytest.raises(BrokerUnavailableError):
        await gateway.get_positions()


class _Buggy(MemoryBrokerGateway):
    async def _get_quote(self, symbol: str) -> Quote:
        raise KeyError(symbol)

    async def _probe(self) -> None:
        raise ZeroDivisionError


async def test_a_bug_in_a_plugin_reaches_the_host_as_a_plugin_error(link: MemoryLink) -> None:
    async with _Buggy(link=link) as gateway:
        with pytest.raises(PluginError, match="gateway 'memory' failed in get_quote: KeyError: 'ACME'"):
            await gateway.get_quote("ACME")
        health = await gateway.health_check()
        assert not health.healthy
        assert "failed in health_check: ZeroDivisionError" in (health.error or "")


class _OpensBadly(MemoryBrokerGateway):
    async def _open_link(self) -> None:
        raise OSError("the vendor DLL is missing")


async def test_a_bug_while_connecting_is_a_plugin_error_and_leaves_it_disconnected(link: MemoryLink) -> None:
    gateway = _OpensBadly(link=link)
    with pytest.raises(PluginError, match="failed in connect: OSError: the vendor DLL is missing"):
        await gateway.connect()
    assert gateway.state is ConnectionState.DISCONNECTED


class _NoStreams(MemoryBrokerGateway):
    CAPABILITIES = frozenset({Capability.MODIFY_ORDER})


async def test_an_operation_without_its_capability_is_refused_naming_it(link: MemoryLink) -> None:
    gateway = _NoStreams(link=link)
    with pytest.raises(InvalidRequestError, match=r"does not stream quotes \(no quote_stream capability"):
        gateway.stream_quotes(["ACME"])
    with pytest.raises(InvalidRequestError, match="does not stream order updates"):
        gateway.stream_order_updates()


async def test_gateways_sharing_one_limiter_share_its_budget(
    link: MemoryLink, backend: MemoryBackend
) -> None:
    limiter = RateLimiter(RateLimit(5, 0.5))
    first = MemoryBrokerGateway(link=link, rate_limiter=limiter)
    second = MemoryBrokerGateway(link=link, rate_limiter=limiter)
    assert first.rate_limiter is second.rate_limiter is limiter
    async with first, second:
        backend.reset_records()
        await asyncio.gather(*(gateway.get_quote("ACME") for gateway in (first, second) for _ in range(10)))
    times = sorted(r.time for r in backend.received)
    assert len(times) == 20
    # Never more than 5 arrivals in any 0.5 s window at the backend, though each gateway made 10 calls
    # (less 10%: two calls granted a window apart can arrive a little closer).
    assert all(later - earlier >= 0.45 for earlier, later in zip(times, times[5:], strict=False))


def test_a_limiter_and_limits_together_or_a_limiter_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="give rate_limits or rate_limiter, not both"):
        MemoryBrokerGateway(rate_limits=RateLimit(1, 1), rate_limiter=RateLimiter())
    with pytest.raises(InvalidRequestError, match="rate_limiter must have acquire"):
        MemoryBrokerGateway(rate_limiter=object())  # type: ignore[arg-type]
    assert isinstance(RateLimiter(), Limiter)


def test_the_base_cannot_be_used_without_a_transport() -> None:
    with pytest.raises(TypeError, match="abstract"):
        GatewayBase(name="nothing")  # type: ignore[abstract]


# Whatever a caller passes, the only error that escapes is InvalidRequestError, raised before the
# transport is touched (the gateway is not even connected: a check that let a value through would
# fail with BrokerUnavailableError instead).
_ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.binary(max_size=10),
    st.lists(st.text(max_size=5), max_size=3),
    st.datetimes(),
    st.just(object()),
)


async def _refused(call: Any) -> BrokerError | None:
    try:
        result = call()
        if asyncio.iscoroutine(result):
            await result
    except InvalidRequestError as error:
        return error
    except BrokerUnavailableError:
        return None  # accepted by every check (and refused only because nothing is connected)
    return None


@settings(max_examples=150, deadline=None)
@given(
    symbol=_ANYTHING,
    interval=_ANYTHING,
    start=_ANYTHING,
    limit=_ANYTHING,
    order_id=_ANYTHING,
    number=_ANYTHING,
)
async def test_arbitrary_arguments_raise_invalid_request_error_only(
    symbol: object, interval: object, start: object, limit: object, order_id: object, number: object
) -> None:
    gateway = MemoryBrokerGateway()
    calls: list[Any] = [
        lambda: gateway.get_quote(symbol),  # type: ignore[arg-type]
        lambda: gateway.get_instrument(symbol),  # type: ignore[arg-type]
        lambda: gateway.list_instruments(symbol),  # type: ignore[arg-type]
        lambda: gateway.get_candles("ACME", interval, start=start, limit=limit),  # type: ignore[arg-type]
        lambda: gateway.get_candles(symbol, "1m", end=start),  # type: ignore[arg-type]
        lambda: gateway.stream_quotes(symbol),  # type: ignore[arg-type]
        lambda: gateway.cancel_order(order_id),  # type: ignore[arg-type]
        lambda: gateway.get_order(order_id),  # type: ignore[arg-type]
        lambda: gateway.modify_order("1", quantity=number),  # type: ignore[arg-type]
        lambda: gateway.modify_order(order_id, price=number),  # type: ignore[arg-type]
        lambda: gateway.get_orders(open_only=number, symbol=symbol),  # type: ignore[arg-type]
        lambda: gateway.place_order(symbol),  # type: ignore[arg-type]
    ]
    for call in calls:
        await _refused(call)


async def test_each_argument_is_checked_naming_the_field() -> None:
    gateway = MemoryBrokerGateway()
    naive = datetime(2026, 1, 1)
    aware = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cases: list[tuple[Any, str]] = [  # text for the interval is what callers may pass: Interval("1m")
        (lambda: gateway.get_candles("ACME", Interval.M1, start="yesterday"), "start must be a datetime"),  # type: ignore[arg-type]
        (lambda: gateway.get_candles("ACME", Interval.M1, start=naive), "start .* has no timezone"),
        (lambda: gateway.get_candles("ACME", Interval.M1, start=aware, end=aware), "must be after start"),
        (lambda: gateway.get_candles("ACME", "2m"), "interval must be one of"),  # type: ignore[arg-type]
        (lambda: gateway.get_candles("ACME", Interval.M1, limit=0), "limit must be a whole number"),
        (lambda: gateway.get_quote(""), "symbol must not be empty"),
        (lambda: gateway.get_quote("A" * 500), r"symbol 'AAAA.*\.\.\. is malformed"),
        (lambda: gateway.stream_quotes([]), "at least one symbol"),
        (lambda: gateway.list_instruments(""), "exchange must be 1-16 of"),
        (lambda: gateway.list_instruments(7), "exchange must be 1-16 of"),  # type: ignore[arg-type]
        (lambda: gateway.cancel_order("a b"), "order_id must be 1-128 printable ASCII"),
        (lambda: gateway.modify_order("1"), "needs a new quantity or a new price"),
        (lambda: gateway.modify_order("1", price=Decimal("1e-30")), "price must be no finer than 1e-18"),
        (lambda: gateway.modify_order("1", quantity="1e3000000000"), "quantity must be below 10"),
        (lambda: gateway.get_orders(open_only="yes"), "open_only must be True or False"),  # type: ignore[arg-type]
    ]
    for call, message in cases:
        error = await _refused(call)
        assert error is not None, message
        assert re.search(message, str(error)), (message, str(error))
