"""Emission reports: filed by the plant (JSON lines, or a CSV/XLSX file read by the shell's
spreadsheet reader), computed with a factor-table version (recorded), verified or rejected by a
verifier who did not file it. Verification fixes the plant's obligation of the year when the
year has a rule (else when the rule is set)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit, spreadsheet
from ecovalue.auth import Principal, authorize
from ecovalue.clock import local_date
from ecovalue.errors import UnsupportedMediaType
from ledger.pilot import emissions, errors
from ledger.pilot.models import PilotEmissionReport, PilotObligation, PilotRule
from ledger.pilot.services import factors, rules
from ledger.pilot.services.common import fetch, now_and_today, readable, valid_year

MAX_LINES = 1_000
#: file column -> accepted header texts besides its own name
FILE_ALIASES = {
    "fuel": ("燃料", "燃料品种", "fuel_code"),
    "consumption": ("消耗量", "燃料消耗量", "fc"),
    "ncv_gj_per_unit": ("ncv", "低位发热量", "低位热值"),
    "carbon_content_tc_per_gj": ("carbon_content", "单位热值含碳量", "cc"),
    "oxidation_rate": ("碳氧化率", "of"),
    "generation_mwh": ("发电量", "generation"),
    "factor": ("排放因子", "emission_factor"),
}
REQUIRED_COLUMNS = {"combustion": ("fuel", "consumption"),
                    "generation": ("generation_mwh", "factor")}


def report_data(report: PilotEmissionReport) -> dict:
    return audit.snapshot(report)


def filed_late(report: PilotEmissionReport, rule: PilotRule | None) -> bool | None:
    """Whether the report was filed after its year's report deadline (the filing's local
    date, Asia/Shanghai, after `report_deadline`); None while the year has no rule. The
    deadline is the rule's in force when asked (a rule's change is versioned and audited)."""
    if rule is None:
        return None
    return local_date(report.filed_at) > rule.report_deadline


def report_view(session: Session, report: PilotEmissionReport) -> dict[str, Any]:
    """A report as the API shows it, with its obligation's id once it has one, and whether
    it was filed late."""
    rule = rules.find_rule(session, report.year)
    return {**{c.key: getattr(report, c.key) for c in sa.inspect(report).mapper.column_attrs},
            "obligation_id": session.scalar(sa.select(PilotObligation.id).where(
                PilotObligation.report_id == report.id)),
            "report_deadline": rule.report_deadline if rule else None,
            "filed_late": filed_late(report, rule)}


def _plant(session: Session, party_id: Any) -> Party:
    party = fetch(session, Party, party_id)
    if party is None or party.kind != "enterprise":
        raise errors.NotAPlant(f"party {party_id} is not an enterprise (a plant files its "
                               "emissions as an enterprise party)", errors=[
            {"location": "json", "field": "plant_party_id", "message": "an enterprise party"}])
    return party


def file_report(session: Session, actor: Principal, *, plant_party_id: int | None, year: int,
                method: str, lines: Sequence[Mapping[str, Any]],
                factor_table: str | None = None, note: str | None = None,
                source: str = "json", filename: str | None = None,
                numbers: Sequence[int] | None = None,
                now: dt.datetime | None = None) -> PilotEmissionReport:
    """File a plant's emissions of `year` (a plant's trader files for its own party, the
    default). Every bad line is reported at once (unknown fuel, negative consumption, a factor
    the table lacks ...) and nothing is stored then."""
    if plant_party_id is None:
        plant_party_id = actor.party_id
    authorize(actor, "pilot.report.file", party=plant_party_id)
    now, today = now_and_today(now)
    location = "json" if source == "json" else "file"
    problems: list[dict[str, Any]] = []
    if not valid_year(year) or year >= today.year:
        problems.append({"location": location, "field": "year", "message":
                         f"a past year (2000-{today.year - 1}): a year's emissions are "
                         "reported after it ends"})
    if method not in emissions.METHODS:
        problems.append({"location": location, "field": "method",
                         "message": f"one of {', '.join(emissions.METHODS)}"})
    if not lines:
        problems.append({"location": location, "field": "lines", "message": "at least one"})
    elif len(lines) > MAX_LINES:
        problems.append({"location": location, "field": "lines",
                         "message": f"at most {MAX_LINES}"})
    if note is not None and len(note) > 1000:
        problems.append({"location": location, "field": "note", "message": "at most 1,000"})
    if problems:
        raise errors.InvalidReport("invalid emission report; nothing was stored",
                                   errors=problems)
    plant = _plant(session, plant_party_id)
    table = factors.get_table(session, factor_table) if factor_table \
        else factors.latest_table(session, actor)
    computed = emissions.compute(method, lines, factors.factor_table(session, table), year,
                                 numbers=numbers)
    if computed.errors:
        raise errors.InvalidReport(
            f"{len({e.line for e in computed.errors})} line(s) of the report are wrong; "
            "nothing was stored", errors=[
                {"location": "file", "row": e.line, "column": e.field, "field": e.field,
                 "message": e.message} if location == "file" else
                {"location": "json", "field": f"lines.{e.line - 1}.{e.field}",
                 "message": e.message} for e in computed.errors])
    live = session.scalar(sa.select(PilotEmissionReport.id).where(
        PilotEmissionReport.plant_party_id == plant.id, PilotEmissionReport.year == year,
        PilotEmissionReport.status != "rejected"))
    if live is not None:
        raise errors.ReportExists(f"{plant.name_zh} has report {live} for {year} already; a "
                                  "verifier rejects it before another is filed",
                                  report_id=live)
    report = PilotEmissionReport(
        plant_party_id=plant.id, year=year, method=method, status="filed",
        factor_table_id=table.id, factor_table_version=table.version,
        factor_table_sha256=table.content_sha256,
        lines=[line.as_dict() for line in computed.lines],
        emissions_exact_tco2=emissions.exact_text(computed.total_exact),
        emissions_tco2=computed.total_tco2, source=source,
        filename=(filename or None) and filename[:255], note=note, filed_at=now,
        filed_by=actor.label)
    session.add(report)
    session.flush()
    audit.record(session, actor, "pilot.report.file", "pilot_emission_report", report.id,
                 after=report_data(report))
    return report


def read_report_file(data: bytes, method: str) -> tuple[str, list[int], list[dict[str, Any]]]:
    """(format, row numbers, rows) of an uploaded report; a file that cannot be read, or
    whose header lacks the method's columns, is refused whole."""
    required = REQUIRED_COLUMNS.get(method, ())
    try:
        sheet = spreadsheet.read_spreadsheet(data, FILE_ALIASES, required=required,
                                             max_rows=MAX_LINES)
    except spreadsheet.NotASpreadsheet as exc:
        raise UnsupportedMediaType(exc.message) from None
    except spreadsheet.SpreadsheetError as exc:
        raise errors.InvalidReport(exc.message, errors=[
            {"location": "file", "message": exc.message}]) from None
    problems = [{"location": "file", "row": sheet.header_row, "column": name,
                 "message": f"required column missing (accepted: {name}, "
                            f"{', '.join(FILE_ALIASES[name])})"} for name in sheet.missing]
    problems += [{"location": "file", "row": sheet.header_row, "column": written,
                  "message": f"names the same column as {sheet.headers[name]!r}"}
                 for written, name in sheet.duplicates]
    problems += [{"location": "file", "row": e.row, "message": e.message} for e in sheet.errors]
    if problems:
        raise errors.InvalidReport("the file cannot be read as an emission report; nothing "
                                   "was stored", errors=problems)
    rows = sheet.rows()
    return sheet.format, [n for n, _ in rows], [cells for _, cells in rows]


def upload_report(session: Session, actor: Principal, *, data: bytes, filename: str | None,
                  plant_party_id: int | None, year: int, method: str,
                  factor_table: str | None = None, note: str | None = None,
                  now: dt.datetime | None = None) -> PilotEmissionReport:
    """File a report from a CSV (UTF-8 or GBK) or XLSX file, one line per row."""
    authorize(actor, "pilot.report.file",
              party=plant_party_id if plant_party_id is not None else actor.party_id)
    fmt, numbers, lines = read_report_file(data, method)
    return file_report(session, actor, plant_party_id=plant_party_id, year=year,
                       method=method, lines=lines, factor_table=factor_table, note=note,
                       source=fmt, filename=filename, numbers=numbers, now=now)


def get_report(session: Session, actor: Principal, report_id: int) -> PilotEmissionReport:
    """A report; a plant reads only its own."""
    scope = readable(actor)
    report = fetch(session, PilotEmissionReport, report_id)
    if report is None or (scope.party is not None and report.plant_party_id != scope.party):
        authorize(actor, "pilot.read")
        raise errors.ReportNotFound(f"no emission report {report_id}")
    if scope.nothing:
        authorize(actor, "pilot.read")
    return report


def list_reports(session: Session, actor: Principal, *, year: int | None = None,
                 status: str | None = None, plant_party_id: int | None = None) -> sa.Select:
    scope = readable(actor)
    if scope.nothing:
        authorize(actor, "pilot.read")
    stmt = sa.select(PilotEmissionReport).where(
        scope.condition(party=PilotEmissionReport.plant_party_id))
    if year is not None:
        stmt = stmt.where(PilotEmissionReport.year == year)
    if status is not None:
        stmt = stmt.where(PilotEmissionReport.status == status)
    if plant_party_id is not None:
        stmt = stmt.where(PilotEmissionReport.plant_party_id == plant_party_id)
    return stmt.order_by(PilotEmissionReport.id)


def _review(session: Session, actor: Principal, report_id: int, action: str) -> \
        PilotEmissionReport:
    authorize(actor, action)
    report = fetch(session, PilotEmissionReport, report_id)
    if report is None:
        raise errors.ReportNotFound(f"no emission report {report_id}")
    if not actor.is_system and report.filed_by == actor.label:
        raise errors.FourEyesViolation(f"report {report.id} was filed by {actor.label}; "
                                       "another person verifies it")
    if report.status != "filed":
        raise errors.ReportNotFiled(f"report {report.id} is {report.status}; only a filed "
                                    "report is verified or rejected")
    return report


def verify_report(session: Session, actor: Principal, report_id: int, *,
                  note: str | None = None, now: dt.datetime | None = None) -> \
        PilotEmissionReport:
    """Verify a filed report (not by its filer); the plant's obligation of the year follows
    when the year has a rule."""
    now, _ = now_and_today(now)
    report = _review(session, actor, report_id, "pilot.report.verify")
    before = report_data(report)
    report.status, report.reviewed_at, report.reviewed_by = "verified", now, actor.label
    report.review_note = (note or "").strip()[:1000] or None
    session.flush()
    audit.record(session, actor, "pilot.report.verify", "pilot_emission_report", report.id,
                 before=before, after=report_data(report))
    from ledger.pilot.services import obligations, rules

    rule = rules.find_rule(session, report.year)
    if rule is not None:
        obligations.open_obligation(session, actor, report, rule, now=now)
    return report


def reject_report(session: Session, actor: Principal, report_id: int, *, note: str,
                  now: dt.datetime | None = None) -> PilotEmissionReport:
    """Reject a filed report, with the reason; the plant files a corrected one."""
    now, _ = now_and_today(now)
    if not isinstance(note, str) or not note.strip():
        raise errors.InvalidReport("a rejection needs a reason", errors=[
            {"location": "json", "field": "note", "message": "required"}])
    report = _review(session, actor, report_id, "pilot.report.reject")
    before = report_data(report)
    report.status, report.reviewed_at, report.reviewed_by = "rejected", now, actor.label
    report.review_note = note.strip()[:1000]
    session.flush()
    audit.record(session, actor, "pilot.report.reject", "pilot_emission_report", report.id,
                 before=before, after=report_data(report))
    return report
