"""Monitored values per section, period and indicator: entered (API, CLI), imported from a
CSV or XLSX file (through `ecovalue.spreadsheet`), or read from the catalog's monitoring
records. Append-only: a correction is a new value, and the latest counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.services import monitoring
from ecovalue import audit, spreadsheet
from ecovalue.auth import Principal, authorize
from ecovalue.clock import utcnow
from ecovalue.errors import PayloadTooLarge, UnsupportedMediaType
from ledger.compensation import clearing, terms
from ledger.compensation.errors import InvalidAssessment
from ledger.compensation.models import CompensationAssessment, CompensationSection
from ledger.compensation.services import sections

#: file columns: field -> accepted header texts besides the field's own name
COLUMNS = {
    "section": ("断面", "考核断面", "点位", "section_code", "断面代码"),
    "period": ("期间", "年度", "考核期", "year"),
    "indicator": ("指标", "考核指标"),
    "value": ("监测值", "数值", "水质类别", "值"),
    "source": ("来源", "数据来源", "备注"),
}
REQUIRED = ("section", "period", "indicator", "value")
MAX_ROWS = 100_000
#: catalog metric read for each indicator a section's catalog product can supply
CATALOG_METRICS = {"forest_coverage_percent": ("forest_coverage", "%")}


class NotASpreadsheet(UnsupportedMediaType):
    code, title = "not-a-spreadsheet", "The file is not a CSV or XLSX spreadsheet"


class FileTooLarge(PayloadTooLarge):
    code, title = "file-too-large", "The file is larger than imports accept"


def _row_problems(row: Mapping[str, Any], known: Mapping[str, int]) -> list[tuple[str, str]]:
    problems = []
    section = row.get("section")
    if not isinstance(section, str) or section not in known:
        problems.append(("section", f"unknown section {section!r}"))
    period = row.get("period")
    if isinstance(period, int | float) and not isinstance(period, bool) \
            and float(period).is_integer():
        period = str(int(period))
    if not isinstance(period, str) or not terms.PERIOD_RE.match(period):
        problems.append(("period", "a period: 2019, 2019-07, 2019-Q3 or 2019-H2"))
    indicator = row.get("indicator")
    if indicator not in clearing.INDICATORS:
        problems.append(("indicator", f"one of {', '.join(clearing.INDICATORS)}"))
    elif terms.indicator_value(str(indicator), row.get("value")) is None:
        problems.append(("value", "a water-quality class (I..V, 劣V or 1..6)"
                         if indicator == "water_quality_class"
                         else "a number (forest coverage 0-100; missing is not zero: leave "
                         "the row out)"))
    source = row.get("source")
    if source is not None and (not isinstance(source, str) or len(source) > 300):
        problems.append(("source", "text of at most 300 characters"))
    return problems


def _period(value: Any) -> str:
    return str(int(value)) if isinstance(value, int | float) else str(value)


def record_values(session: Session, actor: Principal, rows: Sequence[Mapping[str, Any]], *,
                  origin: str = "entered", row_numbers: Sequence[int] | None = None,
                  dry_run: bool = False) -> list[CompensationAssessment]:
    """Append monitored values, all or none: every problem of every row is reported."""
    authorize(actor, "compensation.assessment.write")
    if not rows:
        raise InvalidAssessment("no values given", errors=[{"field": "values",
                                                            "message": "empty"}])
    known = sections.known_codes(session, {str(r["section"]) for r in rows
                                           if isinstance(r.get("section"), str)})
    errors: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        for field, message in _row_problems(row, known):
            where: dict[str, Any] = {"row": row_numbers[i], "column": field} if row_numbers \
                else {"field": f"values.{i}.{field}"}
            errors.append({**where, "message": message})
    if errors:
        raise InvalidAssessment(f"{len(errors)} problem(s) in the values; nothing was recorded",
                                errors=errors[:200])
    now = utcnow()
    created = [CompensationAssessment(
        section_id=known[r["section"]], period=_period(r["period"]), indicator=r["indicator"],
        value=terms.indicator_value(r["indicator"], r["value"]), origin=origin,
        source=(r.get("source") or None), catalog_record_id=r.get("catalog_record_id"),
        recorded_at=now, recorded_by=actor.label) for r in rows]
    if dry_run:
        return created
    session.add_all(created)
    session.flush()
    audit.record_many(session, actor, [audit.Change(
        "compensation.assessment.create", "compensation_assessment", a.id, None,
        audit.snapshot(a)) for a in created])
    return created


def import_file(session: Session, actor: Principal, data: bytes, filename: str, *,
                dry_run: bool = False, max_bytes: int | None = None
                ) -> list[CompensationAssessment]:
    """Monitored values from a CSV (UTF-8 or GBK) or XLSX file: columns section, period,
    indicator, value, source (or their Chinese headers, see COLUMNS); all rows or none."""
    authorize(actor, "compensation.assessment.write")
    if max_bytes is not None and len(data) > max_bytes:
        raise FileTooLarge(f"the file has {len(data)} bytes; imports accept at most {max_bytes}")
    try:
        sheet = spreadsheet.read_spreadsheet(data, COLUMNS, required=REQUIRED, max_rows=MAX_ROWS)
    except spreadsheet.NotASpreadsheet as exc:
        raise NotASpreadsheet(str(exc)) from exc
    except spreadsheet.SpreadsheetError as exc:
        raise InvalidAssessment(str(exc), errors=[{"field": "file", "message": str(exc)}]) \
            from exc
    problems = [{"row": e.row, "message": e.message} for e in sheet.errors]
    problems += [{"column": f, "message": f"no column for {f} (headers: "
                  f"{', '.join((f, *COLUMNS[f]))})"} for f in sheet.missing]
    if problems:
        raise InvalidAssessment(f"the file {filename} cannot be read as it is; nothing was "
                                "recorded", errors=problems[:200])
    numbered = sheet.rows()
    rows = [{**row, "source": row.get("source") or f"file {filename[:200]} row {number}"}
            for number, row in numbered]
    return record_values(session, actor, rows, origin="imported",
                         row_numbers=[n for n, _ in numbered], dry_run=dry_run)


def read_catalog(session: Session, actor: Principal, section_code: str, period: str,
                 indicator: str = "forest_coverage_percent") -> CompensationAssessment:
    """A section's value for a year read from the catalog's monitoring records of its
    product (annual records; where several methods recorded it, the catalog's precedence)."""
    authorize(actor, "compensation.assessment.write")
    section = sections.get_section(session, actor, section_code)
    problems = []
    if indicator not in CATALOG_METRICS:
        problems.append({"field": "indicator", "message": "the catalog supplies "
                         f"{', '.join(CATALOG_METRICS)}"})
    if not terms.PERIOD_RE.match(period) or len(period) != 4:
        problems.append({"field": "period", "message": "a year: catalog records are annual"})
    if section.catalog_product_id is None:
        problems.append({"field": "section", "message": f"section {section.code} names no "
                         "catalog product to read"})
    if problems:
        raise InvalidAssessment("cannot read this value from the catalog", errors=problems)
    metric, unit = CATALOG_METRICS[indicator]
    records = list(session.scalars(monitoring.list_records(
        session, actor, product_id=section.catalog_product_id, metric=metric,
        year_from=int(period), year_to=int(period), monthly=False)))
    rank = {m: i for i, m in enumerate(monitoring.METHOD_PRECEDENCE)}
    records = [r for r in records if r.unit == unit]
    if not records:
        raise InvalidAssessment(
            f"the catalog has no annual {metric} record in {unit} of product "
            f"{section.catalog_product_id} for {period} (missing is not zero)",
            errors=[{"field": "period", "message": "no monitoring record"}])
    record = min(records, key=lambda r: (rank.get(r.method, len(rank)), r.id))
    return record_values(session, actor, [{
        "section": section.code, "period": period, "indicator": indicator,
        "value": record.value, "catalog_record_id": record.id,
        "source": f"catalog monitoring record {record.id} ({record.method}"
                  + (f", {record.source}" if record.source else "") + ")"}],
        origin="catalog")[0]


def latest(session: Session, section_codes: Iterable[str],
           period: str) -> dict[tuple[str, str], CompensationAssessment]:
    """(section code, indicator) -> the latest value of `period` at those sections."""
    codes = set(section_codes)
    if not codes:
        return {}
    rows = session.execute(
        sa.select(CompensationSection.code, CompensationAssessment)
        .join(CompensationSection, CompensationSection.id == CompensationAssessment.section_id)
        .where(CompensationSection.code.in_(codes), CompensationAssessment.period == period)
        .order_by(CompensationAssessment.id)).all()
    return {(code, row.indicator): row for code, row in rows}


def list_values(session: Session, actor: Principal, *, section: str | None = None,
                period: str | None = None) -> sa.Select:
    authorize(actor, "compensation.read")
    stmt = sa.select(CompensationAssessment, CompensationSection.code).join(
        CompensationSection, CompensationSection.id == CompensationAssessment.section_id)
    if section:
        stmt = stmt.where(CompensationSection.code == section)
    if period:
        stmt = stmt.where(CompensationAssessment.period == period)
    return stmt.order_by(CompensationAssessment.id)
