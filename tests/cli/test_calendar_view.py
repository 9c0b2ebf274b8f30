"""How `brokerctl calendar` draws a calendar, open and closed, at fixed instants."""

from __future__ import annotations

from datetime import datetime, timezone

from broker_plugins.cli._calendar import render
from tests.core.test_calendar import KRX, NASDAQ, new_york


def test_a_closed_market_shows_its_next_opening_in_local_time() -> None:
    text = render(NASDAQ, new_york(2026, 7, 2, 20, 0))
    assert "now        closed" in text
    assert "next open  2026-07-06 04:00 EDT" in text  # 3 July is the holiday
    assert "holidays   1 from - to -" in text


def test_an_open_market_names_its_session() -> None:
    text = render(KRX, datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc))
    assert "now        open (regular)" in text
    assert "HOLIDAY\n2026-05-05" in text
