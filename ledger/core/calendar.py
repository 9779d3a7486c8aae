"""Accounting dates: local (Asia/Shanghai) dates and monthly periods. Pure functions.

`LOCAL_TZ` and `local_date` are the project clock's (`ecovalue.clock`), re-exported here.
"""

from __future__ import annotations

import datetime as dt
import re

from ecovalue import clock

LOCAL_TZ = clock.LOCAL_TZ
local_date = clock.local_date
_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


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
