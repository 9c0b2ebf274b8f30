"""When an exchange trades: `MarketCalendar`, its `TradingSession`s and holidays, in its own time zone.

Sessions are local wall-clock times repeated on every trading day (a trading weekday that is not a
holiday); each runs from `open` (inclusive) to `close` (exclusive) on one local day. Instants are
aware datetimes in any zone: a calendar converts them to the exchange's zone (`zoneinfo`), so clock
changes (NASDAQ's DST) need no special case. Holidays are known only from `covers_start` to
`covers_end`; outside that range the weekly pattern alone decides.
"""

from __future__ import annotations

import enum
import itertools
import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from broker_plugins._errors import InvalidRequestError

__all__ = ["MarketCalendar", "SessionKind", "TradingSession", "check_date_range", "check_exchange"]

_EXCHANGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}")
_WEEKDAYS = range(1, 8)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def check_exchange(exchange: object) -> str:
    """An exchange code such as `KRX` or `NASDAQ` (1 to 16 of A-Z a-z 0-9 . _ -, starting with a
    letter or digit), or `InvalidRequestError`."""
    if not isinstance(exchange, str) or _EXCHANGE.fullmatch(exchange) is None:
        raise InvalidRequestError(
            "exchange must be 1-16 of A-Z a-z 0-9 . _ -, starting with a letter or digit; "
            f"got {_shown(exchange)}"
        )
    return exchange


def check_date_range(start: object, end: object) -> tuple[date | None, date | None]:
    """`start` and `end` as local dates (either may be None), `end` not before `start`."""
    for field, value in (("start", start), ("end", end)):
        if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
            raise InvalidRequestError(f"{field} must be a date (not a datetime), got {type(value).__name__}")
    if isinstance(start, date) and isinstance(end, date) and end < start:
        raise InvalidRequestError(f"end {end} must not be before start {start}")
    return start, end  # type: ignore[return-value]


def _check_instant(at: object, field: str) -> datetime:
    if not isinstance(at, datetime):
        raise InvalidRequestError(f"{field} must be a datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidRequestError(f"{field} {at.isoformat()} has no timezone: give an aware datetime")
    return at


class SessionKind(str, enum.Enum):
    """What part of the trading day a session is."""

    PRE_MARKET = "pre_market"
    REGULAR = "regular"
    POST_MARKET = "post_market"
    UNKNOWN = "unknown"
    """A kind a newer bridge reports and this client does not know; still a trading session."""

    def __str__(self) -> str:
        return str(self.value)


def _check_sessions(_instance: object, _attribute: object, sessions: tuple[TradingSession, ...]) -> None:
    if not sessions:
        raise InvalidRequestError("a market calendar needs at least one session")
    for earlier, later in itertools.pairwise(sessions):
        if earlier.close is None or later.open < earlier.close:
            raise InvalidRequestError(
                f"sessions must be ordered and not overlap: {earlier.name!r} then {later.name!r}"
            )


def _check_zone(_instance: object, _attribute: object, name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidRequestError(f"unknown time zone {_shown(name)}") from None


def _check_weekdays(_instance: object, _attribute: object, weekdays: frozenset[int]) -> None:
    if not weekdays or not weekdays <= set(_WEEKDAYS):
        raise InvalidRequestError(f"trading weekdays must be ISO weekdays 1-7, got {sorted(weekdays)}")


@attrs.frozen
class TradingSession:
    """One session of every trading day: local `open` (inclusive) to `close` (exclusive).

    `close` is `None` for a session that runs to local midnight.
    """

    name: str
    kind: SessionKind
    open: time
    close: time | None = None

    def __attrs_post_init__(self) -> None:
        if self.close is not None and self.close <= self.open:
            raise InvalidRequestError(
                f"session {self.name!r} closes ({self.close}) before it opens ({self.open})"
            )

    def bounds(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The instants this session opens and closes on local `day`."""
        opens = datetime.combine(day, self.open, tzinfo=zone)
        if self.close is None:
            closes = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
        else:
            closes = datetime.combine(day, self.close, tzinfo=zone)
        return opens, closes


@attrs.frozen(kw_only=True)
class MarketCalendar:
    """The sessions, time zone and holidays of one exchange, as its broker reports them."""

    exchange: str
    time_zone: str = attrs.field(validator=_check_zone)
    """IANA zone name of the exchange's wall clock, e.g. `Asia/Seoul`."""
    sessions: tuple[TradingSession, ...] = attrs.field(validator=_check_sessions)
    """Ordered by opening time, not overlapping."""
    holidays: frozenset[date] = frozenset()
    trading_weekdays: frozenset[int] = attrs.field(default=frozenset(range(1, 6)), validator=_check_weekdays)
    """ISO weekdays (1 = Monday) the exchange trades on."""
    covers_start: date | None = None
    covers_end: date | None = None
    """The days `holidays` is complete for (both inclusive); None: unbounded."""

    @property
    def zone(self) -> ZoneInfo:
        """The exchange's time zone."""
        return ZoneInfo(self.time_zone)

    def is_trading_day(self, day: date) -> bool:
        """Whether the exchange trades on local `day` (a trading weekday that is not a holiday)."""
        return day.isoweekday() in self.trading_weekdays and day not in self.holidays

    def session_at(self, at: datetime) -> TradingSession | None:
        """The session in progress at `at` (an aware datetime), or None while the market is closed."""
        zone = self.zone
        instant = _check_instant(at, "at").astimezone(timezone.utc)
        # A session runs within one local day, so only that day's sessions can be in progress.
        day = instant.astimezone(zone).date()
        if not self.is_trading_day(day):
            return None
        for session in self.sessions:
            opens, closes = session.bounds(day, zone)
            # Compared in UTC: aware datetimes sharing a tzinfo compare as wall times, wrong in a DST fold.
            if opens.astimezone(timezone.utc) <= instant < closes.astimezone(timezone.utc):
                return session
        return None

    def is_open(self, at: datetime) -> bool:
        """Whether any session (pre- and post-market included) is in progress at `at`."""
        return self.session_at(at) is not None

    def next_open(self, after: datetime) -> datetime:
        """The first session opening strictly after `after`, in the exchange's time zone."""
        zone = self.zone
        instant = _check_instant(after, "after").astimezone(timezone.utc)
        day = instant.astimezone(zone).date()
        # Every holiday can push the next trading day back by one: the search ends.
        for _ in range(len(self.holidays) + 8):
            if self.is_trading_day(day):
                for session in self.sessions:
                    opens, _closes = session.bounds(day, zone)
                    if opens.astimezone(timezone.utc) > instant:
                        return opens
            day += timedelta(days=1)
        raise AssertionError(
            "unreachable: a calendar with a trading weekday opens within a week of its holidays"
        )

    def sessions_on(self, day: date) -> list[tuple[TradingSession, datetime, datetime]]:
        """The sessions of local `day` with the instants they open and close (none on a closed day)."""
        zone = self.zone
        if not self.is_trading_day(day):
            return []
        return [(session, *session.bounds(day, zone)) for session in self.sessions]
