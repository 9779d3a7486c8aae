"""The project's one clock: every read of the current time, in production code and in tests,
goes through this module.

Timestamps are timezone-aware UTC (`utcnow`). Accounting dates and periods are local dates of
Asia/Shanghai (UTC+8 all year, no daylight saving): `local_today()` is today's accounting date,
`local_date(instant)` the accounting date of a stored UTC instant. Between 16:00 and 24:00 UTC
the two calendars disagree, so code (and tests) never take "today" from the host's date.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

#: where the prefecture keeps its books
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def local_date(instant: dt.datetime) -> dt.date:
    """The accounting date (Asia/Shanghai) of an aware instant; a naive datetime is refused,
    since it does not say which instant it is."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime given where a UTC timestamp is required")
    return instant.astimezone(LOCAL_TZ).date()


def local_today() -> dt.date:
    """Today's accounting date in Asia/Shanghai."""
    return local_date(utcnow())
