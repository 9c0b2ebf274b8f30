"""ConnectionStateTracker: ordered notifications, no duplicates, faulty listeners isolated."""

from __future__ import annotations

import logging

import pytest

from broker_plugins import BrokerUnavailableError, ConnectionState, ConnectionStateTracker, StateChange


def test_listeners_see_each_change_in_order_with_its_reason() -> None:
    tracker = ConnectionStateTracker()
    seen: list[StateChange] = []
    remove = tracker.add_listener(seen.append)
    failure = BrokerUnavailableError("bridge went away")
    tracker.set(ConnectionState.CONNECTING)
    tracker.set(ConnectionState.CONNECTED)
    assert tracker.set(ConnectionState.CONNECTED) is None  # no change, no event
    tracker.set(ConnectionState.RECONNECTING, failure)
    remove()
    remove()  # removing twice is harmless
    tracker.set(ConnectionState.CLOSED)
    assert [(c.previous, c.current) for c in seen] == [
        (ConnectionState.DISCONNECTED, ConnectionState.CONNECTING),
        (ConnectionState.CONNECTING, ConnectionState.CONNECTED),
        (ConnectionState.CONNECTED, ConnectionState.RECONNECTING),
    ]
    assert seen[-1].reason is failure
    assert tracker.state is ConnectionState.CLOSED
    assert tracker.since >= seen[-1].time
    assert "closed" in repr(tracker)


def test_a_failing_listener_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    tracker = ConnectionStateTracker()
    seen: list[ConnectionState] = []

    def broken(change: StateChange) -> None:
        raise RuntimeError("host bug")

    tracker.add_listener(broken)
    tracker.add_listener(lambda change: seen.append(change.current))
    with caplog.at_level(logging.ERROR, logger="broker_plugins"):
        tracker.set(ConnectionState.CONNECTING)
    assert seen == [ConnectionState.CONNECTING]
    assert "state listener" in caplog.text
