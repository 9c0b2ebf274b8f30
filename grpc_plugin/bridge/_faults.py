"""Faults a test can inject into a running bridge: failed calls, slow replies and placements, stalls."""

from __future__ import annotations

import asyncio

import attrs
import grpc

__all__ = ["Faults", "InjectedFailure"]


@attrs.frozen
class InjectedFailure:
    """The status a call fails with."""

    code: grpc.StatusCode
    message: str
    retry_after: float | None = None
    """Seconds sent in the `retry-after-ms` trailer, if any (a budget refusal that says how long)."""


class Faults:
    """The fault settings the call gate and the streams consult on every call and message."""

    def __init__(self) -> None:
        self.reply_delay = 0.0
        self.placement_delay = 0.0
        self._failures: list[InjectedFailure] = []
        self._flowing = asyncio.Event()
        self._flowing.set()

    def delay(self, seconds: float) -> None:
        """Delay every reply (unary: after the work is done; streams: before the first message)."""
        if seconds < 0:
            raise ValueError(f"delay must not be negative, got {seconds}")
        self.reply_delay = seconds

    def delay_placement(self, seconds: float) -> None:
        """Make the broker take `seconds` to accept each new order (a slow broker API).

        The wait happens while the order's client_order_id is held, so overlapping attempts with
        that id wait for it; a placement whose call is cancelled during the wait creates nothing.
        """
        if seconds < 0:
            raise ValueError(f"delay must not be negative, got {seconds}")
        self.placement_delay = seconds

    def fail_next(
        self, count: int, code: grpc.StatusCode, message: str = "", *, retry_after: float | None = None
    ) -> None:
        """Fail the next `count` bridge calls with `code` before they do anything (with a
        `retry-after-ms` trailer of `retry_after` seconds when given)."""
        if count < 0 or code is grpc.StatusCode.OK:
            raise ValueError("fail_next needs a count >= 0 and a status code other than OK")
        if retry_after is not None and not 0 <= retry_after < 86_400:
            raise ValueError(f"retry_after must be seconds from 0 to a day, got {retry_after}")
        text = message or f"injected fault: {code.name}"
        self._failures.extend(InjectedFailure(code, text, retry_after) for _ in range(count))

    def take_failure(self) -> InjectedFailure | None:
        """The failure for this call, if one is pending (consumes it)."""
        return self._failures.pop(0) if self._failures else None

    def stall_streams(self) -> None:
        """Keep streams open but send nothing until `release_streams`."""
        self._flowing.clear()

    def release_streams(self) -> None:
        """Let stalled streams send again (what they accumulated goes out at once)."""
        self._flowing.set()

    @property
    def streams_stalled(self) -> bool:
        """True while streams are stalled."""
        return not self._flowing.is_set()

    async def wait_flowing(self) -> None:
        """Return once streams may send."""
        await self._flowing.wait()

    def clear(self) -> None:
        """Remove every fault."""
        self.reply_delay = 0.0
        self.placement_delay = 0.0
        self._failures.clear()
        self._flowing.set()
