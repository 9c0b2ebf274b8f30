"""FaultProxy between real sockets on 127.0.0.1: forwarding, cut, black hole, latency, and cleanup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from conformance_tests import BreakMode, FaultProxy

BOUND = 2.0  # seconds within which anything that should happen at once has happened


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionResetError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def proxy(echo_port: int) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(echo_port) as proxy:
        yield proxy


async def connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", proxy.port), BOUND)


async def round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), BOUND)


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """Whether the other end closed or reset the connection (as opposed to staying silent)."""
    try:
        return await asyncio.wait_for(reader.read(1), BOUND) == b""
    except ConnectionResetError:
        return True


async def silent(reader: asyncio.StreamReader, seconds: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(reader.read(1), seconds)
    except asyncio.TimeoutError:
        return True
    return False


async def test_it_forwards_both_ways_on_the_port_it_reports(proxy: FaultProxy) -> None:
    reader, writer = await connect(proxy)

    assert await round_trip(reader, writer, b"ping") == b"ping"
    assert proxy.port > 0
    assert proxy.address == f"127.0.0.1:{proxy.port}"
    assert proxy.connections == 1
    assert proxy.mode is None
    writer.close()


async def test_cut_closes_every_connection_and_resets_new_ones_until_restored_on_the_same_port(
    proxy: FaultProxy,
) -> None:
    reader, writer = await connect(proxy)
    await round_trip(reader, writer, b"before")
    port = proxy.port

    await proxy.cut()

    assert await closed_by_peer(reader)
    assert proxy.connections == 0
    refused, refused_writer = await connect(proxy)  # accepted, so that it is counted, and reset at once
    assert await closed_by_peer(refused)
    await proxy.restore()
    assert proxy.port == port
    again, again_writer = await connect(proxy)
    assert await round_trip(again, again_writer, b"after") == b"after"
    records = proxy.connection_records()
    assert len(records) == 3
    assert all(record.closed is not None for record in records[:2])
    assert records[1].closed is not None
    assert records[1].closed - records[1].opened < BOUND
    assert records[2].closed is None
    for each in (writer, refused_writer, again_writer):
        each.close()


async def test_it_records_when_clients_were_heard_and_forgets_on_reset(proxy: FaultProxy) -> None:
    reader, writer = await connect(proxy)
    before = time.monotonic()

    await round_trip(reader, writer, b"one")
    await round_trip(reader, writer, b"two")

    heard = proxy.heard()
    assert len(heard) == 2
    assert all(before <= moment <= time.monotonic() for moment in heard)
    await proxy.blackhole()
    writer.write(b"lost")
    assert await silent(reader)
    assert len(proxy.heard()) == 2  # what vanished in the black hole never reached the target
    proxy.reset_records()
    assert proxy.heard() == []
    assert proxy.connection_records() == []
    writer.close()


async def test_a_black_hole_keeps_connections_open_forwards_nothing_and_is_reset_on_restore(
    proxy: FaultProxy,
) -> None:
    old, old_writer = await connect(proxy)
    await round_trip(old, old_writer, b"x")

    await proxy.break_connection(BreakMode.BLACKHOLE)
    old_writer.write(b"lost")
    new, new_writer = await connect(proxy)  # accepted, and then silent
    new_writer.write(b"lost too")

    assert proxy.mode is BreakMode.BLACKHOLE
    assert await silent(old)
    assert await silent(new)
    await proxy.restore()
    assert await closed_by_peer(old)
    assert await closed_by_peer(new)
    fresh, fresh_writer = await connect(proxy)
    assert await round_trip(fresh, fresh_writer, b"back") == b"back"
    for writer in (old_writer, new_writer, fresh_writer):
        writer.close()


async def test_latency_delays_each_way_and_keeps_the_order(proxy: FaultProxy) -> None:
    reader, writer = await connect(proxy)
    await proxy.set_latency(0.1)
    started = time.monotonic()

    for chunk in (b"a", b"b", b"c"):
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0.01)
    echoed = await asyncio.wait_for(reader.readexactly(3), BOUND)

    assert echoed == b"abc"
    assert time.monotonic() - started >= 0.2  # there and back, 0.1 s each way
    await proxy.set_latency(0)
    assert await round_trip(reader, writer, b"now") == b"now"
    writer.close()


async def test_a_refusing_target_closes_the_client_connection() -> None:
    probe = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()

    async with FaultProxy(port) as proxy:
        reader, writer = await connect(proxy)
        assert await closed_by_peer(reader)
        writer.close()


async def test_close_stops_listening_and_leaves_no_task(echo_port: int) -> None:
    before = asyncio.all_tasks()
    proxy = FaultProxy(echo_port)
    await proxy.start()
    reader, writer = await connect(proxy)
    await round_trip(reader, writer, b"hold")
    await proxy.blackhole()
    silent_reader, silent_writer = await connect(proxy)

    await proxy.close()

    # The proxy's own tasks are gone once close() returns; the echo server's end on their own.
    assert [task for task in asyncio.all_tasks() - before if _owned_by_proxy(task)] == []
    assert await closed_by_peer(reader)
    assert await closed_by_peer(silent_reader)
    with pytest.raises(ConnectionRefusedError):
        await connect(proxy)  # closed: nothing listens on the port any more
    writer.close()
    silent_writer.close()


def _owned_by_proxy(task: asyncio.Task[object]) -> bool:
    return getattr(task.get_coro(), "__qualname__", "").startswith("FaultProxy.")


@pytest.mark.parametrize(
    ("target_host", "host"),
    [("10.0.0.1", "127.0.0.1"), ("127.0.0.1", "0.0.0.0"), ("localhost", "127.0.0.1"), ("127.0.0.1", "::")],
)
def test_only_loopback_addresses_are_accepted(target_host: str, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(1, target_host=target_host, host=host)


def test_the_port_is_known_only_once_started() -> None:
    with pytest.raises(RuntimeError, match="start"):
        _ = FaultProxy(1).port
