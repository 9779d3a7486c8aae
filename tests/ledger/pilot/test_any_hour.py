"""The pilot's dates are Shanghai dates: at 23:30 UTC on 31 December 2026 it is already
1 January 2027 there, so the 2025 settlement deadline (31 December 2026) has passed and the
2026 emissions may be reported."""

from __future__ import annotations

import datetime as dt

import time_machine

from ledger.pilot.services import obligations, reports
from tests.ledger.pilot.test_services import COAL_120K, file_and_verify

LATE = dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)


def test_deadline_and_report_year_follow_shanghai(database, pilot):
    obligation_id = file_and_verify(database, pilot)
    with time_machine.travel(LATE, tick=False), database.unit_of_work() as s:
        obligation = obligations.get_obligation(s, pilot.plant, obligation_id)
        assert obligations.obligation_view(s, obligation)["status"] == "overdue"
        settled = obligations.settle(s, pilot.plant, obligation_id, fee_t=1_405)
        view = obligations.obligation_view(s, settled)
        assert (view["status"], view["settled_on"], view["late"]) == \
            ("settled", dt.date(2027, 1, 1), True)
        report = reports.file_report(s, pilot.plant, plant_party_id=None, year=2026,
                                     method="combustion", lines=COAL_120K)
        assert report.year == 2026
