"""Accounting dates: local (Asia/Shanghai) dates and monthly periods. Pure functions."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def local_date(instant: dt.datetime) -> dt.date:
    """The accounting date of a UTC instant (Asia/Shanghai, UTC+8, no daylight saving)."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime given where a UTC timestamp is required")
    return instant.astimezone(LOCAL_TZ).date()


def month_of(day: dt.date) -> dt.date:
    """First day of the month (the period) `day` falls in."""
    return day.replace(day=1)


def parse_month(text: str) -> dt.date:
    """'2024-03' -> date(2024, 3, 1); ValueError otherwise."""
    match = _MONTH_RE.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a month in the form YYYY-MM")
    return dt.date(int(match[1]), int(match[2]), 1)


def format_month(month: dt.date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
