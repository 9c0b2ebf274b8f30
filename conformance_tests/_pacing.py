"""RC-7 and RC-8: how a gateway paces its reconnect attempts, counted where they arrive (harness
protocol 2, `backend_connections`).

The rules, the same for every gateway (a harness configures its gateway's backoff to fit them):

- no storm: at most `MAX_ATTEMPTS_PER_SECOND` attempts in any one second;
- gaps that grow: the median of the last three gaps is at least twice the shortest of the first three;
- a cap: no gap longer than `MAX_GAP` (plus `GAP_SLACK`), so the gateway is back within that of the
  restore however long the outage was;
- no giving up: attempts go on to the end of the outage, and the state stays RECONNECTING (or
  CONNECTING) until it is over;
- jitter: two gateways that lost the link at the same moment do not retry in lock-step.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import time
from collections.abc import Callable, Sequence

import attrs

from broker_plugins import ConnectionState, StateChange
from conformance_tests._backdoor import member
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import BackendConnection, ConformanceHarness
from conformance_tests._outage import RECOVERY, broken, recovered, run_into_outage
from conformance_tests._support import CALL_BOUND, StateLog, bounded, open_gateway, violated

__all__ = [
    "GAP_SLACK",
    "MAX_ATTEMPTS_PER_SECOND",
    "MAX_GAP",
    "OUTAGE",
    "PacingClauses",
    "busiest_second",
    "lockstep_share",
    "noticed_apart",
    "pacing_problems",
]

OUTAGE = 2.0
"""Seconds RC-7's outage lasts."""
MAX_ATTEMPTS_PER_SECOND = 20
MAX_GAP = 0.5
"""Seconds between reconnect attempts, at most, once the backoff has reached its cap."""
GAP_SLACK = 0.25
"""Seconds allowed on top of `MAX_GAP` for a busy machine."""
_JITTER_OUTAGE = 1.0
_SETTLING = 0.2
"""Seconds at the start of RC-8's outage left out: a first attempt at once is the same for everyone."""
_TOGETHER = 0.003
"""Attempts of two gateways this close (seconds) are taken as made together."""
_LOCKSTEP_SHARE = 0.6
_NOTICING_TRIES = 3
"""Outages RC-8 tries for one that both gateways noticed together."""
_IDLE = frozenset({ConnectionState.DISCONNECTED, ConnectionState.CLOSED})

Connections = Callable[[], Sequence[BackendConnection]]


def _attempts(records: Sequence[BackendConnection], start: float, end: float) -> list[float]:
    return sorted(record.opened for record in records if start <= record.opened <= end)


def lockstep_share(times: Sequence[float]) -> float:
    """The share of attempts (sorted times) that came within `_TOGETHER` of another one."""
    close = [later - earlier <= _TOGETHER for earlier, later in itertools.pairwise(times)]
    together = sum(
        1
        for index in range(len(times))
        if (index > 0 and close[index - 1]) or (index < len(close) and close[index])
    )
    return together / len(times) if times else 0.0


def noticed_apart(changes: Sequence[Sequence[StateChange]]) -> float | None:
    """Seconds between the moments two gateways reported leaving CONNECTED (each gateway's state
    changes since before the outage), None unless both did."""
    left = [
        next((c.time for c in log if c.current is not ConnectionState.CONNECTED), None) for log in changes
    ]
    if len(left) != 2 or left[0] is None or left[1] is None:
        return None
    return abs((left[0] - left[1]).total_seconds())


def busiest_second(times: Sequence[float]) -> int:
    most, first = 0, 0
    for last, moment in enumerate(times):
        while times[first] < moment - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def pacing_problems(times: list[float], cut: float, restored: float, back: float | None) -> list[str]:
    """What is wrong with one gateway's attempts during an outage from `cut` to `restored`."""
    shown = ", ".join(f"{moment - cut:.3f}" for moment in times[:12]) + (" ..." if len(times) > 12 else "")
    seen = f"attempts at +{shown} s into the outage"
    if len(times) < 4:
        return [
            f"{len(times)} reconnect attempts reached the backend in a {OUTAGE:g} s outage; at least 4 are "
            f"needed to show a backoff (a first retry well under a second) [{seen}]"
        ]
    problems = []
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    early, late = min(gaps[:3]), statistics.median(gaps[-3:])
    if late < 2 * early:
        problems.append(
            f"the gaps between reconnect attempts do not grow: {early:.3f} s at the shortest of the first "
            f"three, {late:.3f} s (median) at the end; a backoff at least doubles them [{seen}]"
        )
    tail = (back if back is not None else restored) - times[-1]
    longest = max([*gaps, tail if back is not None else 0.0])
    if longest > MAX_GAP + GAP_SLACK:
        problems.append(
            f"{longest:.3f} s passed between two reconnect attempts; the backoff must be capped at "
            f"{MAX_GAP:g} s (+{GAP_SLACK:g} s allowed) [{seen}]"
        )
    if restored - times[-1] > MAX_GAP + GAP_SLACK:
        problems.append(
            f"the last reconnect attempt came {restored - times[-1]:.3f} s before the outage ended: the "
            f"gateway stopped trying [{seen}]"
        )
    return problems


class PacingClauses(SuiteBase):
    """RC-7 and RC-8."""

    @clause("RC-7")
    async def test_rc7_reconnect_attempts_are_paced(self, started_broker_harness: ConformanceHarness) -> None:
        """RC-7: during a 2 s outage the backend sees no storm of attempts (at most 20 in any
        second), gaps that grow, a cap (no gap over 0.5 s), and attempts to the end; the gateway
        never gives up, and tries again within 0.75 s of the restore."""
        harness = started_broker_harness
        connections = member(harness, "backend_connections", "to count reconnect attempts")
        first = await self._paced(harness, connections)
        if first and (second := await self._paced(harness, connections)):
            violated("RC-7", f"{second[0]} (seen in two outages in a row)")

    async def _paced(self, harness: ConformanceHarness, connections: Connections) -> list[str]:
        async with open_gateway(harness, GENEROUS, "RC-7") as gateway:
            await bounded("RC-7", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            log = StateLog(gateway)
            async with broken(harness):
                cut = time.monotonic()
                await run_into_outage(gateway, symbol=harness.symbol)
                await asyncio.sleep(max(0.0, cut + OUTAGE - time.monotonic()))
                restored = time.monotonic()
                during = log.states()
            ok, last = await recovered(gateway, harness.symbol, RECOVERY)
        if not ok:
            violated(
                "RC-7", f"no call succeeded within {RECOVERY:g} s of the restore ({last!r}; {log.describe()})"
            )
        if any(state in _IDLE for state in during):
            violated("RC-7", f"the gateway gave up during a {OUTAGE:g} s outage: {log.describe()}")
        records = list(connections())
        times = _attempts(records, cut, restored)
        busiest = busiest_second(times)
        if busiest > MAX_ATTEMPTS_PER_SECOND:
            # Not a matter of timing: a busy machine makes attempts later, never more of them.
            violated(
                "RC-7",
                f"{busiest} reconnect attempts reached the backend within one second of a {OUTAGE:g} s "
                f"outage ({len(times)} in all); at most {MAX_ATTEMPTS_PER_SECOND} are allowed: a "
                "reconnect storm",
            )
        after = _attempts(records, restored, restored + RECOVERY)
        back = after[0] if after else None
        problems = pacing_problems(times, cut, restored, back)
        if back is None or back - restored > MAX_GAP + GAP_SLACK:
            waited = "no attempt came" if back is None else f"the first attempt came {back - restored:.3f} s"
            problems.append(
                f"{waited} after the restore; a capped backoff tries again within {MAX_GAP + GAP_SLACK:g} s"
            )
        return problems

    @clause("RC-8")
    async def test_rc8_two_gateways_do_not_retry_in_lockstep(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RC-8: two gateways that lose the link at the same moment spread their reconnect attempts
        (jitter): fewer than 60% of the attempts after the first 0.2 s come within 3 ms of the
        other's, in an outage both noticed within 3 ms of each other (up to three are tried)."""
        harness = started_broker_harness
        connections = member(harness, "backend_connections", "to count reconnect attempts")
        first = await self._together(harness, connections)
        if first.share >= _LOCKSTEP_SHARE:
            second = await self._together(harness, connections)
            if second.share >= _LOCKSTEP_SHARE:
                violated(
                    "RC-8",
                    f"{second.share:.0%} of the reconnect attempts of two gateways that lost the link "
                    f"together came within {_TOGETHER * 1000:g} ms of each other (seen in two outages in a "
                    f"row): they retry in lock-step; a backoff needs jitter [{len(second.times)} attempts]",
                )

    async def _together(self, harness: ConformanceHarness, connections: Connections) -> _Lockstep:
        """An outage that both gateways noticed within `_TOGETHER` of each other (the last of
        `_NOTICING_TRIES` when none was): only then are lock-step backoffs' attempts together.
        One may notice first, by a probe that happened to run between the cut and the calls."""
        for _ in range(_NOTICING_TRIES):
            outage = await self._outage(harness, connections)
            if outage.apart is not None and outage.apart <= _TOGETHER:
                break
        return outage

    async def _outage(self, harness: ConformanceHarness, connections: Connections) -> _Lockstep:
        async with contextlib.AsyncExitStack() as stack:
            pair = [
                await stack.enter_async_context(open_gateway(harness, GENEROUS, "RC-8")) for _ in range(2)
            ]
            for gateway in pair:
                await bounded("RC-8", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            logs = [StateLog(gateway) for gateway in pair]
            async with broken(harness):
                cut = time.monotonic()
                await run_into_outage(*pair, symbol=harness.symbol)
                await asyncio.sleep(max(0.0, cut + _JITTER_OUTAGE - time.monotonic()))
                restored = time.monotonic()
            for gateway in pair:
                await recovered(gateway, harness.symbol, RECOVERY)
        times = _attempts(list(connections()), cut + _SETTLING, restored)
        if len(times) < 4:
            violated(
                "RC-8",
                f"two gateways made {len(times)} reconnect attempts between +{_SETTLING:g} s and "
                f"+{_JITTER_OUTAGE:g} s of an outage; too few to tell jitter (see RC-7)",
            )
        return _Lockstep(times, lockstep_share(times), noticed_apart([log.changes for log in logs]))


@attrs.frozen
class _Lockstep:
    """One outage of two gateways: their attempts, the share made together, and how far apart (s)
    the two reported leaving CONNECTED (None if one did not)."""

    times: list[float]
    share: float
    apart: float | None
