"""Late report filings: a report filed after its year's report deadline (the filing's date
in Shanghai) is flagged on the report and in the compliance position, its XLSX included;
on time, or on the deadline's last day, it is not; a year without a rule says nothing."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl

from ledger.pilot.services import compliance, reports
from tests.ledger.pilot.conftest import ADMIN, NOW
from tests.ledger.pilot.test_services import COAL_120K

#: 31 March 2026 23:30 in Shanghai (15:30 UTC): the 2025 deadline's last day, still on time
LAST_MINUTE = dt.datetime(2026, 3, 31, 15, 30, tzinfo=dt.UTC)
#: 1 April 2026 00:30 in Shanghai (31 March 16:30 UTC): a day late
JUST_LATE = dt.datetime(2026, 3, 31, 16, 30, tzinfo=dt.UTC)


def _file(database, pilot, now, year=2025):
    with database.unit_of_work() as s:
        report = reports.file_report(s, pilot.plant, plant_party_id=None, year=year,
                                     method="combustion", lines=COAL_120K, now=now)
        return reports.report_view(s, report)


def test_a_report_on_the_deadlines_last_day_is_on_time(database, pilot):
    view = _file(database, pilot, LAST_MINUTE)
    assert (view["report_deadline"], view["filed_late"]) == (dt.date(2026, 3, 31), False)


def test_a_report_after_the_deadline_is_flagged_late_everywhere(database, pilot):
    view = _file(database, pilot, JUST_LATE)
    assert view["filed_late"] is True
    with database.unit_of_work() as s:
        row = next(r for r in compliance.compliance(s, ADMIN, 2025, now=NOW)["plants"]
                   if r["plant"]["id"] == pilot.world.plant)
        assert row["report_filed_late"] is True and row["status"] == "report_filed"
        others = [r for r in compliance.compliance(s, ADMIN, 2025, now=NOW)["plants"]
                  if r["plant"]["id"] != pilot.world.plant]
        assert all(r["report_filed_late"] is None for r in others)  # no report: nothing said
        sheet = openpyxl.load_workbook(io.BytesIO(compliance.report_xlsx(
            s, ADMIN, 2025, now=NOW))).worksheets[0]
    header = [c.value for c in sheet[1]]
    column = header.index("逾期报送 report filed late")
    flags = {row[0].value: row[column].value for row in sheet.iter_rows(min_row=2)}
    assert flags[pilot.world.plant] is True


def test_a_year_without_a_rule_has_no_deadline(database, pilot):
    view = _file(database, pilot, NOW, year=2024)
    assert (view["report_deadline"], view["filed_late"]) == (None, None)


def test_the_api_shows_the_flag(client, tokens, database, pilot):
    view = _file(database, pilot, JUST_LATE)
    shown = client.get(f"/pilot/reports/{view['id']}", headers=tokens.admin).get_json()
    assert (shown["report_deadline"], shown["filed_late"]) == ("2026-03-31", True)
