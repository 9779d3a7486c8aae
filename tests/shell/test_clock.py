"""The project's one clock (`ecovalue.clock`) and the rule that nothing else reads the host's."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import time_machine

from ecovalue import clock

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ecovalue", "catalog", "valuation", "ledger", "tests", "bench")
#: reads of the host clock; `time.perf_counter`/`time.monotonic` measure durations and may stay
HOST_CLOCK = re.compile(r"\b(?:date\.today|datetime\.today|datetime\.now|datetime\.utcnow"
                        r"|time\.time|time\.time_ns)\s*\(")


def host_clock_reads(text: str) -> list[int]:
    """Line numbers of `text` that read the host clock."""
    return [number for number, line in enumerate(text.splitlines(), start=1)
            if HOST_CLOCK.search(line)]


def test_the_scanner_finds_every_spelling():
    # written with "::" for the dot, so that this file does not trip its own check
    planted = ("a = dt.date::today()\nb = datetime::now(UTC)\nc = dt.datetime::utcnow()\n"
               "d = time::time()\ne = dt.datetime::today()\nok = time.perf_counter()\n"
               "ok = time.monotonic()\nok = clock.utcnow()\n").replace("::", ".")
    assert host_clock_reads(planted) == [1, 2, 3, 4, 5]


def test_only_the_clock_module_reads_the_host_clock():
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "ecovalue" / "clock.py":
                continue
            found += [f"{path.relative_to(ROOT)}:{n}"
                      for n in host_clock_reads(path.read_text(encoding="utf-8"))]
    assert found == [], "read the time through ecovalue.clock instead: " + ", ".join(found)


def test_utcnow_is_aware_utc():
    now = clock.utcnow()
    assert now.tzinfo is not None and now.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("instant,day", [
    ("2026-11-30T15:59:59+00:00", dt.date(2026, 11, 30)),
    ("2026-11-30T16:00:00+00:00", dt.date(2026, 12, 1)),
    ("2026-12-31T23:30:00+00:00", dt.date(2027, 1, 1)),
    ("2027-01-01T07:59:00+08:00", dt.date(2027, 1, 1)),
])
def test_local_date_is_the_shanghai_date(instant, day):
    assert clock.local_date(dt.datetime.fromisoformat(instant)) == day


def test_local_date_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="naive"):
        clock.local_date(dt.datetime(2026, 12, 1, 12, 0))


@pytest.mark.parametrize("instant,day", [
    (dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC), dt.date(2026, 12, 1)),
    (dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC), dt.date(2026, 12, 1)),
    (dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC), dt.date(2027, 1, 1)),
])
def test_local_today_follows_shanghai_not_the_host(instant, day):
    with time_machine.travel(instant, tick=False):
        assert clock.local_today() == day
        assert clock.utcnow() == instant
