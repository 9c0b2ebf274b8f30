"""`ConnectionStateTracker`: the state and state-change listeners a gateway needs, in one small piece."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

from broker_plugins._enums import ConnectionState
from broker_plugins._errors import BrokerError
from broker_plugins._gateway import StateChange, StateListener

__all__ = ["ConnectionStateTracker"]

_log = logging.getLogger("broker_plugins")


class ConnectionStateTracker:
    """Holds a `ConnectionState` and tells listeners, in order, about every change.

    A listener that raises is logged and skipped: a faulty host callback must not break the
    gateway's reconnect loop.
    """

    __slots__ = ("_listeners", "_since", "_state")

    def __init__(self, initial: ConnectionState = ConnectionState.DISCONNECTED) -> None:
        self._state = initial
        self._since = datetime.now(timezone.utc)
        self._listeners: list[StateListener] = []

    @property
    def state(self) -> ConnectionState:
        """The current state."""
        return self._state

    @property
    def since(self) -> datetime:
        """When the current state began (UTC)."""
        return self._since

    def add_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call `listener` on every change from now on; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def set(self, state: ConnectionState, reason: BrokerError | None = None) -> StateChange | None:
        """Move to `state`; returns the change, or None when already in `state`."""
        if state is self._state:
            return None
        now = datetime.now(timezone.utc)
        change = StateChange(previous=self._state, current=state, time=now, reason=reason)
        self._state = state
        self._since = change.time
        for listener in tuple(self._listeners):
            try:
                listener(change)
            except Exception:  # noqa: BLE001 - a host's callback must not break the gateway
                _log.exception("state listener %r failed on %s -> %s", listener, change.previous, state)
        return change

    def __repr__(self) -> str:
        return f"<ConnectionStateTracker {self._state} since {self._since.isoformat()}>"
