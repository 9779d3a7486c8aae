"""Emission-factor tables: the shipped reference table (ledger/pilot/reference/
emission_factors.csv, a copy of shared/reference's with the fuels' defaults added), and the
versions an admin uploads to replace it (CSV or XLSX, same columns). A version is immutable
once stored; a report records the version and content hash it computed with, so a value
marked to-confirm is replaced by uploading a new version, never by editing an old one."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit, spreadsheet
from ecovalue.auth import Principal, authorize
from ecovalue.clock import utcnow
from ecovalue.errors import UnsupportedMediaType
from ledger.pilot import emissions, errors
from ledger.pilot.models import PilotFactor, PilotFactorTable

REFERENCE_VERSION = "reference"
REFERENCE_FILE = Path(__file__).resolve().parent.parent / "reference" / "emission_factors.csv"
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
FACTOR_RE = re.compile(r"^[a-z][a-z0-9_]{0,79}$")
MAX_ROWS = 5_000
#: column -> accepted header texts besides its own name
ALIASES = {"factor": ("因子", "name", "名称"), "year": ("年份", "年度"),
           "value": ("数值", "值"), "unit": ("单位",), "status": ("状态",),
           "source": ("来源", "出处")}


def parse_table(data: bytes) -> list[emissions.Factor]:
    """The factors of a CSV/XLSX file, or InvalidFactorTable with every bad row."""
    try:
        sheet = spreadsheet.read_spreadsheet(data, ALIASES, max_rows=MAX_ROWS,
                                             required=("factor", "value", "unit", "status"))
    except spreadsheet.NotASpreadsheet as exc:
        raise UnsupportedMediaType(exc.message) from None
    except spreadsheet.SpreadsheetError as exc:
        raise errors.InvalidFactorTable(exc.message) from None
    problems: list[dict[str, Any]] = [
        {"location": "file", "row": sheet.header_row, "column": name,
         "message": "required column missing"} for name in sheet.missing]
    problems += [{"location": "file", "row": e.row, "message": e.message} for e in sheet.errors]
    rows: list[emissions.Factor] = []
    seen: dict[tuple[str, int | None], int] = {}
    for number, cells in sheet.rows() if not sheet.missing else []:
        def bad(column: str, message: str, row: int = number) -> None:
            problems.append({"location": "file", "row": row, "column": column,
                             "message": message})

        name = str(cells.get("factor") or "").strip()
        if not FACTOR_RE.match(name):
            bad("factor", "a name of lowercase letters, digits and '_' (at most 80)")
        year_cell = cells.get("year")
        year: int | None = None
        if year_cell is not None:
            parsed = emissions.parse_decimal(year_cell)
            if parsed is None or parsed != parsed.to_integral_value() \
                    or not 1990 <= parsed <= 2100:
                bad("year", "a year (1990-2100), or blank for every year")
            else:
                year = int(parsed)
        value = emissions.parse_decimal(cells.get("value"))
        if value is None or value <= 0 or value > emissions.MAX_QUANTITY:
            bad("value", "a positive number")
        unit = str(cells.get("unit") or "").strip()
        if not unit or len(unit) > 40:
            bad("unit", "1-40 characters, e.g. tCO2/MWh")
        status = str(cells.get("status") or "").strip()
        if status not in emissions.FACTOR_STATUSES:
            bad("status", f"one of {', '.join(emissions.FACTOR_STATUSES)}")
        source = cells.get("source")
        source_text = str(source).strip()[:500] if source is not None else None
        if (name, year) in seen:
            bad("factor", f"{name} {year or '(no year)'} is given on row {seen[(name, year)]} "
                          "already")
        seen[(name, year)] = number
        if value is not None and FACTOR_RE.match(name):
            rows.append(emissions.Factor(name, year, value, unit, status, source_text))
    if not problems and not rows:
        problems.append({"location": "file", "message": "the file has no factor rows"})
    if problems:
        raise errors.InvalidFactorTable(
            f"the factor table has {len(problems)} problem(s); nothing was stored",
            errors=problems)
    return rows


def _store(session: Session, actor: Principal, version: str, title: str, note: str | None,
           rows: list[emissions.Factor], now: dt.datetime) -> PilotFactorTable:
    table = emissions.FactorTable(rows)
    stored = PilotFactorTable(version=version, title=title, note=note,
                              content_sha256=table.content_sha256(), row_count=len(rows),
                              created_at=now, created_by=actor.label)
    session.add(stored)
    session.flush()
    session.add_all(PilotFactor(table_id=stored.id, factor=r.factor, year=r.year,
                                value=str(r.value), unit=r.unit, status=r.status,
                                source=r.source) for r in table.rows)
    session.flush()
    audit.record(session, actor, "pilot.factors.create", "pilot_factor_table", stored.id,
                 after={**audit.snapshot(stored), "rows": [r.as_dict() for r in table.rows]})
    return stored


def reference_table(session: Session, actor: Principal,
                    now: dt.datetime | None = None) -> PilotFactorTable:
    """The shipped table as version "reference", stored on first use."""
    existing = session.scalar(sa.select(PilotFactorTable).where(
        PilotFactorTable.version == REFERENCE_VERSION))
    if existing is not None:
        return existing
    return _store(session, actor, REFERENCE_VERSION,
                  "Reference emission factors (emission_factors.csv shipped with ecovalue)",
                  "values marked to-confirm await the authority's confirmation: upload a new "
                  "version to replace them", parse_table(REFERENCE_FILE.read_bytes()),
                  now or utcnow())


def upload_table(session: Session, actor: Principal, *, version: str, title: str,
                 data: bytes, note: str | None = None,
                 now: dt.datetime | None = None) -> PilotFactorTable:
    """Store a new version of the factor table from a CSV/XLSX file (columns factor, year,
    value, unit, status, source); every bad row is reported, nothing is stored then."""
    authorize(actor, "pilot.factors.write")
    problems = []
    if not isinstance(version, str) or not VERSION_RE.match(version):
        problems.append({"location": "query", "field": "version",
                         "message": "1-40 characters: letters, digits, '_', '.', '-'"})
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        problems.append({"location": "query", "field": "title", "message": "1-200 characters"})
    if problems:
        raise errors.InvalidFactorTable("invalid factor table version", errors=problems)
    if session.scalar(sa.select(PilotFactorTable.id).where(PilotFactorTable.version == version)):
        raise errors.FactorTableExists(f"factor table version {version!r} exists; versions are "
                                       "immutable, choose a new one")
    rows = parse_table(data)
    reference_table(session, actor, now)  # the shipped one stays listed beside the new one
    return _store(session, actor, version, title.strip(), (note or "").strip()[:1000] or None,
                  rows, now or utcnow())


def get_table(session: Session, version: str) -> PilotFactorTable:
    found = None if "\x00" in version else session.scalar(
        sa.select(PilotFactorTable).where(PilotFactorTable.version == version))
    if found is None:
        raise errors.FactorTableNotFound(f"no factor table version {version!r}")
    return found


def latest_table(session: Session, actor: Principal) -> PilotFactorTable:
    """The newest version (the reference one if nothing was uploaded): a report's default."""
    newest = session.scalar(sa.select(PilotFactorTable).order_by(
        PilotFactorTable.id.desc()).limit(1))
    return newest if newest is not None else reference_table(session, actor)


def rows_of(session: Session, table_id: int) -> list[PilotFactor]:
    return list(session.scalars(sa.select(PilotFactor).where(
        PilotFactor.table_id == table_id).order_by(PilotFactor.factor, PilotFactor.year)))


def factor_table(session: Session, table: PilotFactorTable) -> emissions.FactorTable:
    """A stored version as the pure module takes it."""
    return emissions.FactorTable(
        emissions.Factor(r.factor, r.year, Decimal(r.value), r.unit, r.status,
                         r.source) for r in rows_of(session, table.id))


def list_tables(session: Session) -> list[PilotFactorTable]:
    return list(session.scalars(sa.select(PilotFactorTable).order_by(PilotFactorTable.id)))


def table_view(session: Session, table: PilotFactorTable, *, rows: bool = True) -> dict:
    view: dict[str, Any] = {k: getattr(table, k) for k in (
        "version", "title", "note", "content_sha256", "row_count", "created_at", "created_by")}
    if rows:
        view["factors"] = [{"factor": r.factor, "year": r.year, "value": r.value, "unit": r.unit,
                            "status": r.status, "source": r.source}
                           for r in rows_of(session, table.id)]
    return view
