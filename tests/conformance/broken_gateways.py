"""Gateways that each break one promise, and the clauses the suite must fail each of them on.

Every broken gateway is a few lines off the memory example (`broken_limits`, `broken_links`,
`broken_orders`). The self-test runs each on the clauses it targets, where it must fail, and on
`SANITY`, cheap clauses it must still pass: so a failure is the clause at work, not a gateway that
does not work at all.
"""

from __future__ import annotations

from memory_broker import MemoryBrokerGateway

from tests.conformance.broken_calendars import MadeUpCalendarGateway
from tests.conformance.broken_limits import (
    BareAsyncLimiterGateway,
    FirstWindowOnlyGateway,
    ForgetfulLimiterGateway,
    IgnoresRetryAfterGateway,
    IgnoresSharedBudgetGateway,
    NoLimiterGateway,
    OnePermitPagingGateway,
    OrderStreamWithoutPermitGateway,
    PermitBeforeLinkGateway,
    ResubscribeWithoutPermitGateway,
    RetryWithoutPermitGateway,
)
from tests.conformance.broken_links import (
    ConnectSurvivesDisconnectGateway,
    DeadlineOnlyGateway,
    DoubleSessionGateway,
    FixedIntervalReconnectGateway,
    FragileListenersGateway,
    GivesUpGateway,
    HangingGateway,
    LockstepReconnectGateway,
    LockstepUnevenNoticeGateway,
    NoProbeGateway,
    NoReconnectGateway,
    NoStreamResumeGateway,
    OrderStreamFromLatestGateway,
    RacingConnectGateway,
    ReopeningConnectGateway,
    SkipsConnectingGateway,
    SlowProbeGateway,
    StaleQuoteGateway,
    StormingReconnectGateway,
    TaskLeakingGateway,
    UncappedBackoffGateway,
    UnownedTaskGateway,
)
from tests.conformance.broken_orders import (
    BlindResendGateway,
    HealthTakesPermitGateway,
    IgnoresStopCapabilityGateway,
    LocalTimeQuoteGateway,
    LostReplyAsUnavailableGateway,
    RejectionAsOrderGateway,
    ResendingGateway,
    StateHealthGateway,
)

__all__ = ["EXPECTED_FAILURES", "SANITY"]

SANITY = frozenset({"IF-1", "LC-1", "RC-2"})
"""Clauses every broken gateway still passes (unless it targets one): it connects, calls, recovers."""

EXPECTED_FAILURES: dict[type[MemoryBrokerGateway], frozenset[str]] = {
    # rate limits
    NoLimiterGateway: frozenset({"RL-1", "RL-2", "RL-3", "RL-4", "RL-7", "RL-15"}),
    BareAsyncLimiterGateway: frozenset({"RL-1", "RL-2", "RL-3"}),
    FirstWindowOnlyGateway: frozenset({"RL-3"}),
    OrderStreamWithoutPermitGateway: frozenset({"RL-5"}),
    ForgetfulLimiterGateway: frozenset({"RL-9"}),
    PermitBeforeLinkGateway: frozenset({"RL-10"}),
    RetryWithoutPermitGateway: frozenset({"RL-11"}),
    IgnoresRetryAfterGateway: frozenset({"RL-12"}),
    OnePermitPagingGateway: frozenset({"RL-13"}),
    ResubscribeWithoutPermitGateway: frozenset({"RL-14"}),
    IgnoresSharedBudgetGateway: frozenset({"RL-15"}),
    # lifecycle
    UnownedTaskGateway: frozenset({"LC-4"}),
    RacingConnectGateway: frozenset({"LC-6"}),
    ConnectSurvivesDisconnectGateway: frozenset({"LC-7"}),
    ReopeningConnectGateway: frozenset({"LC-8"}),
    SkipsConnectingGateway: frozenset({"LC-9"}),
    FragileListenersGateway: frozenset({"LC-10"}),
    DoubleSessionGateway: frozenset({"LC-11"}),
    # outages
    HangingGateway: frozenset({"RC-1"}),
    NoReconnectGateway: frozenset({"RC-2", "RC-3", "RC-6"}),
    NoStreamResumeGateway: frozenset({"RC-4"}),
    ResendingGateway: frozenset({"RC-5"}),
    TaskLeakingGateway: frozenset({"RC-6"}),
    StormingReconnectGateway: frozenset({"RC-7"}),
    FixedIntervalReconnectGateway: frozenset({"RC-7"}),
    UncappedBackoffGateway: frozenset({"RC-7"}),
    GivesUpGateway: frozenset({"RC-7"}),
    LockstepReconnectGateway: frozenset({"RC-8"}),
    LockstepUnevenNoticeGateway: frozenset({"RC-8"}),
    StaleQuoteGateway: frozenset({"RC-9"}),
    OrderStreamFromLatestGateway: frozenset({"RC-10"}),
    # orders, health, values
    RejectionAsOrderGateway: frozenset({"OR-1"}),
    LostReplyAsUnavailableGateway: frozenset({"OR-2", "RC-5"}),
    BlindResendGateway: frozenset({"OR-3"}),
    IgnoresStopCapabilityGateway: frozenset({"OR-4"}),
    StateHealthGateway: frozenset({"HC-1"}),
    HealthTakesPermitGateway: frozenset({"HC-2"}),
    LocalTimeQuoteGateway: frozenset({"DV-1"}),
    # half-open links
    NoProbeGateway: frozenset({"BH-1", "BH-3"}),
    DeadlineOnlyGateway: frozenset({"BH-2"}),
    SlowProbeGateway: frozenset({"BH-3"}),
    # market calendars
    MadeUpCalendarGateway: frozenset({"MC-1"}),
}
"""Each broken gateway, and the clauses the suite must fail it on."""
