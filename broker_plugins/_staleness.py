"""`StaleStream`: a quote stream that delivered nothing while its market was open, as a host hears of it.

A transport heartbeat does not prove that data flows: a stream can stay "connected" and mute for
hours. A gateway that watches for it (the grpc gateway does, per subscription, by default) reports
each detection to the listeners of `add_stale_listener`, keeps the last one as
`last_stale_stream` (the connection manager shows it in `ConnectionStatus.stale_stream`), and
reopens the stream, taking a permit as for every opening.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import attrs

__all__ = ["StaleListener", "StaleReports", "StaleStream"]

_log = logging.getLogger("broker_plugins")


@attrs.frozen(kw_only=True)
class StaleStream:
    """One detection: the stream of `symbols` was silent for `silent_for` seconds at `time` (UTC)."""

    stream: str
    """Which kind of stream: `quotes`."""
    symbols: tuple[str, ...]
    silent_for: float
    time: datetime
    market_open: bool | None
    """True when the broker's calendar says a market of `symbols` was open; None without a calendar
    (the gateway then assumes open, with a longer threshold)."""


StaleListener = Callable[[StaleStream], object]
"""Called synchronously on every detection; what it returns is ignored, what it raises is logged."""


class StaleReports:
    """The listeners of a gateway's stale-stream detections and the last detection."""

    def __init__(self) -> None:
        self._listeners: list[StaleListener] = []
        self.last: StaleStream | None = None
        self.count = 0

    def add(self, listener: StaleListener) -> Callable[[], None]:
        """Call `listener` on every detection; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def report(self, event: StaleStream) -> None:
        """Record `event` and tell every listener."""
        self.last = event
        self.count += 1
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a host's callback must not break the stream
                _log.exception("stale stream listener %r failed", listener)
