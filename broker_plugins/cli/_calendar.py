"""`brokerctl calendar`: an exchange's sessions, time zone and holidays, and whether it is open now."""

from __future__ import annotations

from datetime import date, datetime, timezone

from broker_plugins._calendar import MarketCalendar, check_exchange
from broker_plugins._checks import check_symbol
from broker_plugins.cli._commands import connect
from broker_plugins.cli._context import Context
from broker_plugins.cli._exit import ExitCode, UsageError
from broker_plugins.cli._output import Column, key_values, table

__all__ = ["calendar"]


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} must be a date like 2026-12-31, got {text!r}") from None


def _local(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M %Z")


def render(calendar: MarketCalendar, now: datetime) -> str:
    """The calendar for a terminal: a summary, the sessions, then the holidays."""
    session = calendar.session_at(now)
    covers = f"{calendar.covers_start or '-'} to {calendar.covers_end or '-'}"
    summary = key_values(
        [
            ("exchange", calendar.exchange),
            ("time zone", calendar.time_zone),
            ("now", f"open ({session.name})" if session else "closed"),
            ("next open", _local(calendar.next_open(now))),
            ("holidays", f"{len(calendar.holidays)} from {covers}"),
        ]
    )
    sessions = table(
        [
            Column("SESSION", lambda s: s.name),
            Column("KIND", lambda s: str(s.kind)),
            Column("OPEN", lambda s: s.open.strftime("%H:%M")),
            Column("CLOSE", lambda s: "24:00" if s.close is None else s.close.strftime("%H:%M")),
        ],
        calendar.sessions,
    )
    holidays = table([Column("HOLIDAY", lambda d: d.isoformat())], sorted(calendar.holidays))
    return "\n\n".join([summary, sessions, holidays])


async def calendar(ctx: Context) -> ExitCode:
    """`calendar EXCHANGE | --symbol SYMBOL [--from DATE --to DATE]`: when the exchange trades."""
    args = ctx.args
    if (args.exchange is None) == (args.symbol is None):
        raise UsageError("name an exchange (calendar KRX) or an instrument (--symbol 005930)")
    exchange = None if args.exchange is None else check_exchange(args.exchange)
    symbol = None if args.symbol is None else check_symbol(args.symbol)
    start, end = _day(args.start, "--from"), _day(args.end, "--to")
    async with connect(ctx) as session:
        if exchange is None:
            assert symbol is not None
            exchange = (await session.gateway.get_instrument(symbol)).exchange
        found = await session.gateway.get_market_calendar(exchange, start=start, end=end)
    now = datetime.now(timezone.utc)
    ctx.emit(found, lambda: render(found, now))
    return ExitCode.OK
