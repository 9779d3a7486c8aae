"""Price books (versioned; a published book is immutable) and price indices, and the reference
data they start from (valuation/reference/default_price_book.csv, price_indices.csv)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from ecovalue import audit
from ecovalue.auth import Principal, authorize, can, system_principal
from ecovalue.db import utcnow
from ecovalue.units import UnitError, parse_unit
from valuation import formulas, registry
from valuation.errors import (
    PriceBookExists,
    PriceBookNotFound,
    PriceBookNotPublished,
    PriceBookPublished,
    PriceEntryInvalid,
    PriceIndexInvalid,
    PriceIndexSeriesNotFound,
)
from valuation.models import PriceBook, PriceBookEntry, PriceIndexSeries, PriceIndexValue
from valuation.registry import ParameterSpec
from valuation.services.indicators import current_registry, parameter_specs

DEFAULT_VERSION = "default"
DEFAULT_SERIES = "CPI-CN-1978"
REFERENCE_ACTOR = "reference-data"
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,39}\Z")
PARAMETER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}(\.[^.\x00-\x1f\x7f]{1,40})?\Z")
MIN_YEAR, MAX_YEAR = 1950, 2100


def _reference_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("valuation").joinpath(f"reference/{name}").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


# --- reference data --------------------------------------------------------------------------


def ensure_reference_data(session: Session) -> list[str]:
    """Load the default CPI series and the default price book (published, every entry
    `to-confirm`) if they are not there yet; returns what was loaded. Idempotent."""
    actor = system_principal(REFERENCE_ACTOR)
    loaded: list[str] = []
    series_rows = _reference_csv("price_index_series.csv")
    for row in series_rows:
        if session.get(PriceIndexSeries, row["code"]) is None:
            series = PriceIndexSeries(code=row["code"], name_zh=row["name_zh"],
                                      name_en=row["name_en"], kind=row["kind"], base=row["base"],
                                      source=row["source"], confirmation=row["confirmation"])
            session.add(series)
            session.flush()
            audit.record(session, actor, "valuation.index.series", "valuation_index_series",
                         series.code, after=audit.snapshot(series))
            loaded.append(f"price index series {series.code}")
    existing = {(s, y) for s, y in session.execute(
        sa.select(PriceIndexValue.series_code, PriceIndexValue.year))}
    added = []
    for row in _reference_csv("price_indices.csv"):
        key = (row["series"], int(row["year"]))
        if key in existing:
            continue
        value = PriceIndexValue(series_code=row["series"], year=int(row["year"]),
                                value=float(row["value"]), confirmation=row["confirmation"],
                                note=row["note"] or None, updated_by=actor.label)
        session.add(value)
        added.append(value)
    if added:
        session.flush()
        audit.record_many(session, actor, [
            audit.Change("valuation.index.set", "valuation_price_index",
                         f"{v.series_code}:{v.year}", None, audit.snapshot(v)) for v in added])
        loaded.append(f"price index values: {len(added)}")
    if session.scalar(sa.select(PriceBook.id).where(PriceBook.version == DEFAULT_VERSION)) is None:
        book = PriceBook(version=DEFAULT_VERSION, status="draft", created_by=actor.label,
                         title="Default price book from the reference file (to-confirm)",
                         note="Loaded from valuation/reference/default_price_book.csv, i.e. the "
                              "prices and coefficients stated in gep_indicators.csv. Every entry "
                              "is to-confirm; parameters the reference does not give (local "
                              "market prices, soil bulk density, electricity tariffs ...) are "
                              "absent, so their indicators stay unvalued until a book adds them.")
        session.add(book)
        session.flush()
        for row in _reference_csv("default_price_book.csv"):
            session.add(PriceBookEntry(
                book_id=book.id, parameter=row["parameter"], value=float(row["value"]),
                unit=row["unit"], price_year=int(row["price_year"]) if row["price_year"] else None,
                index_series=row["index_series"] or None, confirmation=row["confirmation"],
                source=row["source"]))
        session.flush()
        session.refresh(book)
        _publish(session, actor, book)
        loaded.append(f"price book {DEFAULT_VERSION} ({len(book.entries)} entries, to-confirm)")
    return loaded


def default_book_prices() -> dict[str, formulas.PriceEntry]:
    """The reference default book as price entries (for the 5x sanity check)."""
    return {row["parameter"]: formulas.PriceEntry(
        row["parameter"], float(row["value"]), row["unit"],
        int(row["price_year"]) if row["price_year"] else None, row["index_series"] or None,
        row["confirmation"], row["source"]) for row in _reference_csv("default_price_book.csv")}


# --- price books -----------------------------------------------------------------------------


def _book(session: Session, version: str, *, lock: bool = False) -> PriceBook:
    stmt = sa.select(PriceBook).where(PriceBook.version == version)
    if lock:
        stmt = stmt.with_for_update()
    book = session.scalar(stmt.options(selectinload(PriceBook.entries)))
    if book is None:
        raise PriceBookNotFound(f"no price book {version!r}")
    return book


def list_books(session: Session, actor: Principal | None) -> list[PriceBook]:
    """Published books for everyone; drafts too for those who may read them."""
    stmt = sa.select(PriceBook).order_by(PriceBook.created_at, PriceBook.id)
    if not can(actor, "valuation.read"):
        stmt = stmt.where(PriceBook.status == "published")
    return list(session.scalars(stmt))


def get_book(session: Session, actor: Principal | None, version: str) -> PriceBook:
    book = _book(session, version)
    if book.status != "published" and not can(actor, "valuation.read"):
        raise PriceBookNotFound(f"no price book {version!r}")
    return book


def published_book(session: Session, version: str | None) -> PriceBook:
    """The book a run will use: `version`, or the default one (loaded if needed)."""
    if version is None:
        ensure_reference_data(session)
        version = DEFAULT_VERSION
    book = _book(session, version)
    if book.status != "published":
        raise PriceBookNotPublished(f"price book {version!r} is a draft; publish it before "
                                    "running a valuation with it")
    return book


def create_book(session: Session, actor: Principal, *, version: str, title: str,
                based_on: str | None = None, note: str | None = None) -> PriceBook:
    """A new draft, empty or copied from `based_on` (any book, e.g. the default)."""
    authorize(actor, "valuation.pricebook.write")
    if not VERSION_RE.match(version):
        raise PriceEntryInvalid("invalid version label", errors=[{
            "field": "version", "message": "1-40 letters, digits, '.', '_' or '-'"}])
    if session.scalar(sa.select(PriceBook.id).where(PriceBook.version == version)):
        raise PriceBookExists(f"price book {version!r} already exists")
    source = None
    if based_on is not None:
        if based_on == DEFAULT_VERSION:
            ensure_reference_data(session)
        source = get_book(session, actor, based_on)
    book = PriceBook(version=version, title=title, status="draft", based_on_version=based_on,
                     note=note, created_by=actor.label)
    session.add(book)
    session.flush()
    if source is not None:
        for entry in source.entries:
            session.add(PriceBookEntry(
                book_id=book.id, parameter=entry.parameter, value=entry.value, unit=entry.unit,
                price_year=entry.price_year, index_series=entry.index_series,
                confirmation=entry.confirmation, source=entry.source))
        session.flush()
        session.refresh(book)
    audit.record(session, actor, "valuation.pricebook.create", "valuation_price_book", book.id,
                 after={**audit.snapshot(book), "entries": [_entry_dict(e) for e in book.entries]})
    return book


def _entry_dict(entry: PriceBookEntry) -> dict[str, Any]:
    return {"parameter": entry.parameter, "value": entry.value, "unit": entry.unit,
            "price_year": entry.price_year, "index_series": entry.index_series,
            "confirmation": entry.confirmation, "source": entry.source}


def _spec_for(parameter: str, specs: Mapping[str, ParameterSpec]) -> ParameterSpec | None:
    base, _, item = parameter.partition(".")
    if item:
        return specs.get(f"{base}[]")
    return specs.get(base) or specs.get(f"{base}[]")


def _quantity_units_for(session: Session, spec_name: str) -> set[str]:
    """The canonical quantity units of the indicators whose formulas use `spec_name`."""
    units: set[str] = set()
    for definition in current_registry(session, include_inactive=True).values():
        if spec_name in definition.parameters:
            units.update(definition.quantity_units)
    return units


def check_entries(session: Session, entries: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Every problem of the given entries: unknown parameter, unit of the wrong dimension,
    price without a price year, coefficient with an index, unknown index series, bad value."""
    specs = parameter_specs(session)
    series = set(session.scalars(sa.select(PriceIndexSeries.code)))
    problems: list[dict] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        where = f"entries.{position}"
        name = entry["parameter"]

        def bad(field: str, message: str, name: str = name) -> None:
            # called within this iteration only
            problems.append({"field": f"{where}.{field}",  # noqa: B023
                             "message": f"{name}: {message}"})

        if name in seen:
            bad("parameter", "appears twice")
            continue
        seen.add(name)
        if not PARAMETER_RE.match(name):
            bad("parameter", "must look like reservoir_cost or abatement_cost.SO2")
            continue
        spec = _spec_for(name, specs)
        if spec is None:
            bad("parameter", "no indicator formula uses this parameter")
            continue
        value = entry["value"]
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
            bad("value", "must be a finite number >= 0")
        try:
            parse_unit(entry["unit"])
        except UnitError:
            bad("unit", f"unknown unit {entry['unit']!r}")
            continue
        targets = ([registry.substitute_q(spec.unit, u)
                    for u in sorted(_quantity_units_for(session, spec.name))]
                   if registry.Q_PLACEHOLDER in spec.unit else [spec.unit])
        fits = False
        for target in targets:
            try:
                formulas.unit_factor(entry["unit"], target)
                fits = True
                break
            except (formulas.PriceProblem, UnitError):
                continue
        if not fits:
            hint = ""
            if any("tCO2" in t or "tC" in t for t in targets) and \
                    parse_unit(entry["unit"]).dimension == parse_unit("yuan/t").dimension:
                hint = (" (a carbon price is per tonne of carbon or of CO2: write 元/tC or "
                        "元/tCO2; a price per tC is converted exactly with 12/44)")
            bad("unit", f"unit {entry['unit']!r} does not fit; expected "
                        f"{' or '.join(targets) or spec.unit}{hint}")
        year = entry.get("price_year")
        index = entry.get("index_series")
        if spec.kind == "price":
            if year is None:
                bad("price_year", "a price needs the year its value is in (price_year)")
            elif not MIN_YEAR <= year <= MAX_YEAR:
                bad("price_year", f"must lie between {MIN_YEAR} and {MAX_YEAR}")
        elif index:
            bad("index_series", "a coefficient is not a price and is never index-adjusted")
        if index and index not in series:
            bad("index_series", f"unknown price-index series {index!r}")
        if entry.get("confirmation", "to-confirm") not in ("to-confirm", "confirmed"):
            bad("confirmation", "must be to-confirm or confirmed")
    return problems


def upsert_entries(session: Session, actor: Principal, version: str,
                   entries: list[Mapping[str, Any]]) -> PriceBook:
    """Add or replace entries of a draft (all checked first; nothing is written if one is
    wrong)."""
    authorize(actor, "valuation.pricebook.write")
    book = _book(session, version, lock=True)
    if book.status == "published":
        raise PriceBookPublished(f"price book {version!r} is published and cannot change; "
                                 "create a new version based on it")
    problems = check_entries(session, entries)
    if problems:
        raise PriceEntryInvalid(f"{len(problems)} problem(s) in the entries: "
                                f"{problems[0]['message']}", errors=problems)
    current = {e.parameter: e for e in book.entries}
    changes = []
    for data in entries:
        entry = current.get(data["parameter"])
        before = _entry_dict(entry) if entry else None
        if entry is None:
            entry = PriceBookEntry(book_id=book.id, parameter=data["parameter"])
            session.add(entry)
        entry.value = float(data["value"])
        entry.unit = data["unit"].strip()
        entry.price_year = data.get("price_year")
        entry.index_series = data.get("index_series") or None
        entry.confirmation = data.get("confirmation", "to-confirm")
        entry.source = data.get("source")
        changes.append(audit.Change("valuation.pricebook.entry", "valuation_price_book",
                                    f"{book.id}:{entry.parameter}", before, _entry_dict(entry)))
    session.flush()
    audit.record_many(session, actor, changes)
    session.refresh(book)
    return book


def delete_entry(session: Session, actor: Principal, version: str, parameter: str) -> PriceBook:
    authorize(actor, "valuation.pricebook.write")
    book = _book(session, version, lock=True)
    if book.status == "published":
        raise PriceBookPublished(f"price book {version!r} is published and cannot change")
    entry = next((e for e in book.entries if e.parameter == parameter), None)
    if entry is None:
        raise PriceBookNotFound(f"price book {version!r} has no parameter {parameter!r}")
    before = _entry_dict(entry)
    book.entries.remove(entry)
    session.flush()
    audit.record(session, actor, "valuation.pricebook.entry.delete", "valuation_price_book",
                 f"{book.id}:{parameter}", before=before)
    session.refresh(book)
    return book


def content_hash(book: PriceBook) -> str:
    entries = sorted((_entry_dict(e) for e in book.entries), key=lambda e: e["parameter"])
    payload = json.dumps({"version": book.version, "entries": entries}, sort_keys=True,
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _publish(session: Session, actor: Principal, book: PriceBook) -> PriceBook:
    before = audit.snapshot(book)
    digest = content_hash(book)  # first: reading the entries may flush pending changes
    book.status = "published"
    book.published_at = utcnow()
    book.published_by = actor.label
    book.content_hash = digest
    session.flush()
    audit.record(session, actor, "valuation.pricebook.publish", "valuation_price_book", book.id,
                 before=before, after=audit.snapshot(book))
    return book


def publish_book(session: Session, actor: Principal, version: str) -> PriceBook:
    """Freeze a draft: from now on it can be used by runs and never changes."""
    authorize(actor, "valuation.pricebook.publish")
    book = _book(session, version, lock=True)
    if book.status == "published":
        raise PriceBookPublished(f"price book {version!r} is already published")
    if not book.entries:
        raise PriceEntryInvalid(f"price book {version!r} has no entries to publish")
    problems = check_entries(session, [_entry_dict(e) for e in book.entries])
    if problems:
        raise PriceEntryInvalid(f"price book {version!r} cannot be published: "
                                f"{problems[0]['message']}", errors=problems)
    return _publish(session, actor, book)


def price_entries(book: PriceBook) -> dict[str, formulas.PriceEntry]:
    return {e.parameter: formulas.PriceEntry(e.parameter, e.value, e.unit, e.price_year,
                                             e.index_series, e.confirmation, e.source or "")
            for e in book.entries}


# --- price indices ---------------------------------------------------------------------------


def list_series(session: Session) -> list[PriceIndexSeries]:
    return list(session.scalars(sa.select(PriceIndexSeries).order_by(PriceIndexSeries.code)))


def get_series(session: Session, code: str) -> PriceIndexSeries:
    series = session.get(PriceIndexSeries, code)
    if series is None:
        raise PriceIndexSeriesNotFound(f"no price-index series {code!r}")
    return series


def series_exists(session: Session, code: str) -> bool:
    return session.get(PriceIndexSeries, code) is not None


def series_values(session: Session, code: str) -> list[PriceIndexValue]:
    get_series(session, code)
    return list(session.scalars(sa.select(PriceIndexValue).where(
        PriceIndexValue.series_code == code).order_by(PriceIndexValue.year)))


def upsert_series(session: Session, actor: Principal, data: Mapping[str, Any],
                  ) -> PriceIndexSeries:
    authorize(actor, "valuation.index.write")
    if not VERSION_RE.match(data["code"]):
        raise PriceIndexInvalid("invalid series code", errors=[{
            "field": "code", "message": "1-40 letters, digits, '.', '_' or '-'"}])
    series = session.get(PriceIndexSeries, data["code"], with_for_update=True)
    before = audit.snapshot(series) if series else None
    if series is None:
        series = PriceIndexSeries(code=data["code"])
        session.add(series)
    for field in ("name_zh", "name_en", "base", "source", "confirmation"):
        if field in data:
            setattr(series, field, data[field])
    series.kind = "fixed-base"
    session.flush()
    audit.record(session, actor, "valuation.index.series", "valuation_index_series",
                 series.code, before=before, after=audit.snapshot(series))
    return series


def upsert_values(session: Session, actor: Principal, code: str,
                  values: list[Mapping[str, Any]]) -> list[PriceIndexValue]:
    """Set index values of a series (finished runs keep the values they used)."""
    authorize(actor, "valuation.index.write")
    get_series(session, code)
    problems = []
    years = [v["year"] for v in values]
    for position, value in enumerate(values):
        if not MIN_YEAR <= value["year"] <= MAX_YEAR:
            problems.append({"field": f"values.{position}.year",
                             "message": f"must lie between {MIN_YEAR} and {MAX_YEAR}"})
        if years.count(value["year"]) > 1:
            problems.append({"field": f"values.{position}.year",
                             "message": f"year {value['year']} appears twice"})
        if not (np.isfinite(value["value"]) and value["value"] > 0):
            problems.append({"field": f"values.{position}.value",
                             "message": "an index value must be a positive finite number"})
    if problems:
        raise PriceIndexInvalid(f"{len(problems)} problem(s) in the index values", errors=problems)
    existing = {v.year: v for v in session.scalars(sa.select(PriceIndexValue).where(
        PriceIndexValue.series_code == code).with_for_update())}
    changes = []
    for data in values:
        row = existing.get(data["year"])
        before = audit.snapshot(row) if row else None
        if row is None:
            row = PriceIndexValue(series_code=code, year=data["year"])
            session.add(row)
        row.value = float(data["value"])
        row.confirmation = data.get("confirmation", "to-confirm")
        row.note = data.get("note")
        row.updated_by = actor.label
        session.flush()
        changes.append(audit.Change("valuation.index.set", "valuation_price_index",
                                    f"{code}:{row.year}", before, audit.snapshot(row)))
    audit.record_many(session, actor, changes)
    return series_values(session, code)


def index_table(session: Session, series: Iterable[str] | None = None,
                ) -> dict[str, dict[int, float]]:
    stmt = sa.select(PriceIndexValue.series_code, PriceIndexValue.year, PriceIndexValue.value)
    if series is not None:
        stmt = stmt.where(PriceIndexValue.series_code.in_(list(series)))
    table: dict[str, dict[int, float]] = {}
    for code, year, value in session.execute(stmt.order_by(PriceIndexValue.series_code,
                                                           PriceIndexValue.year)):
        table.setdefault(code, {})[int(year)] = float(value)
    return table


def index_confirmations(session: Session, series: Iterable[str]) -> dict[tuple[str, int], str]:
    stmt = sa.select(PriceIndexValue.series_code, PriceIndexValue.year,
                     PriceIndexValue.confirmation).where(
        PriceIndexValue.series_code.in_(list(series)))
    return {(s, int(y)): c for s, y, c in session.execute(stmt)}

