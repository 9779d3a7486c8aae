"""Physical quantities: immutable quantity sets from an uploaded table (CSV/XLSX), rows posted
through the API, the grid route, or the catalog's monitoring records.

Every row is checked and every problem reported at once (row and column), like a compiler:
unknown indicator, unit of the wrong dimension, negative quantity where impossible, item or
ecosystem type not in the vocabulary, region outside the scope, year not the set's year,
duplicated rows. Units convert exactly (Fraction factors from ecovalue.units; a decimal written
in the file is read as the decimal it is, so 3.2 亿m³ is 320,000,000 m³).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from catalog.models import Region
from catalog.services.regions import RegionHierarchy, region_hierarchy
from ecovalue import audit
from ecovalue.auth import Principal, authorize, can, row_filter
from ecovalue.db import INT64_MAX, bulk_insert_records
from ecovalue.units import MONEY, UnitError, conversion_factor, dimension_name, parse_unit
from valuation import grid, registry, tables
from valuation.errors import GridInvalid, QuantitiesInvalid, QuantitySetNotFound
from valuation.formulas import CARBON_TO_CO2
from valuation.models import QuantityRow, QuantitySet
from valuation.registry import IndicatorDef
from valuation.services.indicators import current_registry

ORIGIN_ALIASES = {"local": "local", "区域内": "local", "本地": "local", "内": "local",
                  "outside": "outside", "external": "outside", "区域外": "outside",
                  "外部": "outside", "外": "outside", "区外": "outside"}
MAX_NOTE = 500


# --- regions -----------------------------------------------------------------------------------


def require_region(session: Session, code: str) -> Region:
    region = session.get(Region, code)
    if region is None:
        raise QuantitiesInvalid(f"unknown region {code!r}", errors=[{
            "field": "region_code", "message": f"unknown region {code!r}"}])
    return region


# --- row checks --------------------------------------------------------------------------------


def _number(value: Any) -> Fraction | None:
    """The exact number written in a cell (Decimal text, int, or the binary float of an XLSX
    numeric cell); None if empty; ValueError if not a number."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError("not a finite number")
        # a float from JSON or an XLSX cell stands for the decimal that was typed: its
        # shortest repr (1.1, not 1.100000000000000088817841970012523...)
        return Fraction(Decimal(repr(value)))
    text = str(value).strip().replace(",", "").replace("，", "")
    if text == "":
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError("not a finite number")
    return Fraction(number)


def _lookup_indicator(text: str, definitions: Mapping[str, IndicatorDef]) -> IndicatorDef | None:
    upper = text.strip().upper()
    if upper in definitions:
        return definitions[upper]
    for definition in definitions.values():
        if text.strip() in (definition.name_zh, definition.name_en):
            return definition
    return None


@dataclasses.dataclass
class CleanRow:
    source_row: int
    region_code: str
    indicator_code: str
    item: str
    ecosystem_type: str
    origin: str
    quantity: float | None
    quantity_unit: str | None
    money: bool
    reported_quantity: float | None
    reported_unit: str | None
    note: str | None

    def key(self) -> tuple:
        return (self.region_code, self.indicator_code, self.item, self.ecosystem_type,
                self.origin, self.money)

    def canonical(self) -> dict[str, Any]:
        return {"region_code": self.region_code, "indicator_code": self.indicator_code,
                "item": self.item, "ecosystem_type": self.ecosystem_type, "origin": self.origin,
                "quantity": None if self.quantity is None else float.hex(self.quantity),
                "quantity_unit": self.quantity_unit, "money": self.money}


def check_rows(rows: Sequence[tuple[int, Mapping[str, Any]]], *, scope: str, year: int,
               definitions: Mapping[str, IndicatorDef],
               tree: RegionHierarchy, row_label: str = "row",
               ) -> tuple[list[CleanRow], list[dict[str, Any]]]:
    """Turn raw rows into clean rows in canonical units; collect every problem."""
    clean: list[CleanRow] = []
    problems: list[dict[str, Any]] = []
    first_seen: dict[tuple, int] = {}
    for number, raw in rows:
        row_problems: list[dict[str, Any]] = []

        def bad(column: str, message: str, number: int = number) -> None:
            # called within this iteration only
            row_problems.append({"row": number, "column": column,  # noqa: B023
                                 "message": f"{row_label} {number}: {message}"})

        region = str(raw.get("region_code") or "").strip()
        if isinstance(raw.get("region_code"), float) and float(raw["region_code"]).is_integer():
            region = str(int(raw["region_code"]))
        if not region:
            bad("region_code", "region code is missing")
        elif region not in tree:
            bad("region_code", f"unknown region {region!r}")
        elif not tree.is_within(region, scope):
            bad("region_code", f"region {region} lies outside {scope}")
        raw_year = raw.get("year")
        if raw_year not in (None, ""):
            try:
                row_year = int(Decimal(str(raw_year).strip()))
                if row_year != year:
                    bad("year", f"year {row_year} differs from the accounting year {year}")
            except (InvalidOperation, ValueError):
                bad("year", f"{raw_year!r} is not a year")
        indicator_text = str(raw.get("indicator") or "").strip()
        definition = _lookup_indicator(indicator_text, definitions) if indicator_text else None
        if not indicator_text:
            bad("indicator", "indicator is missing")
        elif definition is None:
            bad("indicator", f"unknown indicator {indicator_text!r}")
        item = "" if raw.get("item") is None else str(raw.get("item")).strip()
        if definition is not None and item:
            if definition.items == ():
                bad("item", f"{definition.code} has no items; leave the item empty")
            elif definition.items is not None:
                item = registry.SUB_ITEM_ALIASES.get(item, item)
                match = next((i for i in definition.items if i.lower() == item.lower()), None)
                if match is None:
                    bad("item", f"item {item!r} is not one of {', '.join(definition.items)}")
                else:
                    item = match
            elif not registry.ITEM_RE.match(item):
                bad("item", "an item is 1-40 characters without a dot")
        eco_text = raw.get("ecosystem_type")
        eco = registry.normalize_ecosystem_type(None if eco_text is None else str(eco_text))
        if eco is None:
            bad("ecosystem_type", f"unknown ecosystem type {eco_text!r}; use one of "
                                  f"{', '.join(registry.ECOSYSTEM_TYPES)}")
        origin_text = str(raw.get("origin") or "local").strip()
        origin = ORIGIN_ALIASES.get(origin_text.lower(), ORIGIN_ALIASES.get(origin_text))
        if origin is None:
            bad("origin", f"origin {origin_text!r} must be local or outside")
        try:
            value = _number(raw.get("quantity"))
        except ValueError as exc:
            bad("quantity", str(exc))
            value = None
            number_ok = False
        else:
            number_ok = True
        unit_text = str(raw.get("unit") or "").strip()
        canonical_unit: str | None = None
        money = False
        quantity: float | None = None
        if number_ok and value is not None:
            if not unit_text:
                bad("unit", "unit is missing")
            elif definition is not None:
                try:
                    unit = parse_unit(unit_text)
                except UnitError:
                    bad("unit", f"unknown unit {unit_text!r}")
                    unit = None
                if unit is not None:
                    if unit.without_per_year() == MONEY:
                        if definition.money_quantity:
                            money, canonical_unit = True, "yuan"
                        else:
                            bad("unit", f"{definition.code} is valued from its physical "
                                        f"quantity ({' or '.join(definition.quantity_units)}), "
                                        f"not from an amount in {unit_text}")
                    else:
                        canonical_unit = definition.canonical_unit(unit_text)
                        if canonical_unit is None and "tCO2" in definition.quantity_units and \
                                unit.without_per_year() == parse_unit("tC").without_per_year():
                            # carbon given as carbon mass: tCO2 = tC x 44/12, exactly
                            factor = conversion_factor(unit_text, "tC", annual=True)
                            exact = value * factor * CARBON_TO_CO2
                            canonical_unit = "tCO2"
                            quantity = exact.numerator / exact.denominator
                        elif canonical_unit is None:
                            bad("unit", f"unit {unit_text} ({dimension_name(unit)}) does not "
                                        f"fit {definition.code}, which expects "
                                        f"{' or '.join(definition.quantity_units)}")
                    if canonical_unit is not None:
                        if quantity is None:
                            factor = conversion_factor(unit_text, canonical_unit, annual=True)
                            exact = value * factor
                            quantity = exact.numerator / exact.denominator
                        if quantity < 0 and (origin == "outside" or not
                                             definition.allow_negative):
                            bad("quantity", f"a negative quantity is impossible for "
                                            f"{definition.code}" + (" (outside origin)"
                                                                    if origin == "outside"
                                                                    else ""))
        note = raw.get("note")
        note = None if note is None else str(note)[:MAX_NOTE]
        if row_problems:
            problems.extend(row_problems)
            continue
        assert definition is not None and eco is not None and origin is not None
        row = CleanRow(
            source_row=number, region_code=region, indicator_code=definition.code, item=item,
            ecosystem_type=eco, origin=origin, quantity=quantity, quantity_unit=canonical_unit,
            money=money,
            reported_quantity=None if value is None else value.numerator / value.denominator,
            reported_unit=unit_text or None, note=note)
        key = row.key()
        if key in first_seen:
            problems.append({"row": number, "column": "", "message":
                             f"{row_label} {number}: duplicate of {row_label} {first_seen[key]} "
                             "(same region, indicator, item, ecosystem type and origin): add "
                             "them up in one row or remove one"})
            continue
        first_seen[key] = number
        clean.append(row)
    problems.extend(_double_counted_sub_items(clean, definitions, row_label))
    return clean, problems


def _double_counted_sub_items(rows: Sequence[CleanRow], definitions: Mapping[str, IndicatorDef],
                              row_label: str) -> list[dict[str, Any]]:
    """Rows giving an indicator as a whole (no item) beside its sub-items (R-SOIL sediment,
    R-FLOOD lake ...) for the same region, ecosystem type and origin: the same value twice."""
    whole: dict[tuple, int] = {}
    parts: dict[tuple, list[int]] = {}
    for row in rows:
        definition = definitions.get(row.indicator_code)
        if definition is None or not definition.sub_items:
            continue
        key = (row.region_code, row.indicator_code, row.ecosystem_type, row.origin)
        if row.item:
            parts.setdefault(key, []).append(row.source_row)
        else:
            whole[key] = row.source_row
    return [{"row": number, "column": "item", "message":
             f"{row_label} {number}: {key[1]} is given as a whole and by its sub-items "
             f"({row_label}s {', '.join(map(str, parts[key]))}) for region {key[0]}, "
             f"{key[2]}: that counts it twice; give the sub-items or the whole"}
            for key, number in whole.items() if key in parts]


def content_hash(rows: Iterable[CleanRow]) -> str:
    payload = sorted((r.canonical() for r in rows),
                     key=lambda r: json.dumps(r, sort_keys=True, ensure_ascii=False))
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False,
                                     separators=(",", ":")).encode()).hexdigest()


# --- creating sets -----------------------------------------------------------------------------


def _store(session: Session, actor: Principal, *, scope: str, year: int, source: str,
           rows: list[CleanRow], filename: str | None = None, file_sha256: str | None = None,
           note: str | None = None, warnings: list[str] | None = None,
           grid_info: dict[str, Any] | None = None) -> QuantitySet:
    quantity_set = QuantitySet(
        region_code=scope, year=year, source=source, filename=filename, file_sha256=file_sha256,
        content_hash=content_hash(rows), row_count=len(rows), note=note,
        warnings=list(warnings or []), grid=grid_info, created_by=actor.label)
    session.add(quantity_set)
    session.flush()
    bulk_insert_records(session, QuantityRow.__table__, [{
        "set_id": quantity_set.id, "source_row": r.source_row, "region_code": r.region_code,
        "indicator_code": r.indicator_code, "item": r.item, "ecosystem_type": r.ecosystem_type,
        "origin": r.origin, "quantity": r.quantity, "quantity_unit": r.quantity_unit,
        "money": r.money, "reported_quantity": r.reported_quantity,
        "reported_unit": r.reported_unit, "note": r.note} for r in rows])
    audit.record(session, actor, "valuation.quantities.create", "valuation_quantity_set",
                 quantity_set.id, after={**audit.snapshot(quantity_set),
                                         "rows_sha256": quantity_set.content_hash})
    return quantity_set


def _validate_scope(session: Session, actor: Principal, scope: str, year: int) -> Region:
    authorize(actor, "valuation.quantities.write", county=scope)
    region = require_region(session, scope)
    if not 1950 <= year <= 2100:
        raise QuantitiesInvalid("year out of range", errors=[{
            "field": "year", "message": "the accounting year must lie between 1950 and 2100"}])
    return region


def create_from_rows(session: Session, actor: Principal, *, region_code: str, year: int,
                     rows: Sequence[Mapping[str, Any]], note: str | None = None) -> QuantitySet:
    """A set from rows posted as JSON (positions count from 1)."""
    _validate_scope(session, actor, region_code, year)
    if not rows:
        raise QuantitiesInvalid("no rows given", errors=[{"field": "rows",
                                                          "message": "at least one row"}])
    numbered = [(position, row) for position, row in enumerate(rows, start=1)]
    clean, problems = check_rows(numbered, scope=region_code, year=year,
                                 definitions=current_registry(session),
                                 tree=region_hierarchy(session), row_label="rows item")
    if problems:
        for problem in problems:
            problem["field"] = f"rows.{problem['row'] - 1}.{problem.pop('column') or 'row'}"
            problem.pop("row")
        raise QuantitiesInvalid(f"{len(problems)} problem(s) in the rows: "
                                f"{problems[0]['message']}", errors=problems)
    return _store(session, actor, scope=region_code, year=year, source="api", rows=clean,
                  note=note)


def create_from_file(session: Session, actor: Principal, *, region_code: str, year: int,
                     filename: str | None, data: bytes, note: str | None = None) -> QuantitySet:
    """A set from an aggregate table as counties report it (CSV in UTF-8/GBK, or XLSX)."""
    _validate_scope(session, actor, region_code, year)
    kind, rows, unreadable = tables.read_rows(
        data, required=("region_code", "indicator", "quantity", "unit"))
    if not rows and not unreadable:
        raise QuantitiesInvalid("the file has a header but no data rows")
    clean, problems = check_rows(rows, scope=region_code, year=year,
                                 definitions=current_registry(session),
                                 tree=region_hierarchy(session))
    problems = sorted(unreadable + problems, key=lambda p: p["row"])  # stable: by row
    if problems:
        raise QuantitiesInvalid(f"{len(problems)} problem(s) in {filename or 'the file'}: "
                                f"{problems[0]['message']}", errors=problems)
    return _store(session, actor, scope=region_code, year=year, source=kind, rows=clean,
                  filename=filename, file_sha256=hashlib.sha256(data).hexdigest(), note=note)


def create_from_grid(session: Session, actor: Principal, *, region_code: str, year: int,
                     cells: pd.DataFrame, indicators: Sequence[str] | None = None,
                     options: grid.GridOptions | None = None, filename: str | None = None,
                     file_sha256: str | None = None, note: str | None = None) -> QuantitySet:
    """Per-cell inputs -> quantities by region x ecosystem type (grid route)."""
    _validate_scope(session, actor, region_code, year)
    options = options or grid.GridOptions()
    definitions = current_registry(session)
    if indicators is None:
        indicators = [c for c in grid.GRID_INDICATORS if c in definitions and all(
            col in cells.columns for col in grid.REQUIRED_COLUMNS[c]) and (
            c not in ("R-AIR", "R-WQ") or options.removal_rates)]
    tree = region_hierarchy(session)
    problems: list[dict[str, Any]] = []
    if "region_code" in cells.columns:
        for code in pd.unique(cells["region_code"].dropna().astype("string")):
            if code not in tree:
                problems.append({"column": "region_code", "message": f"unknown region {code!r}"})
            elif not tree.is_within(str(code), region_code):
                problems.append({"column": "region_code",
                                 "message": f"region {code} lies outside {region_code}"})
    try:
        result = grid.compute(cells, indicators, options)
    except grid.GridError as exc:
        problems.extend(exc.problems)
    if problems:
        raise GridInvalid(f"{len(problems)} problem(s) in the grid: {problems[0]['message']}",
                          errors=[{k: v for k, v in p.items() if v is not None}
                                  for p in problems])
    rows = [(position, {"region_code": r.region_code, "indicator": r.indicator_code,
                        "item": r.item or None, "ecosystem_type": r.ecosystem_type,
                        "quantity": float(r.quantity), "unit": r.unit})
            for position, r in enumerate(result.quantities.itertuples(index=False), start=1)]
    clean, row_problems = check_rows(rows, scope=region_code, year=year,
                                     definitions=definitions, tree=tree,
                                     row_label="aggregate")
    if row_problems:
        raise GridInvalid(f"the grid aggregates are not usable: {row_problems[0]['message']}",
                          errors=row_problems)
    info = {"cells": result.cells, "indicators": list(indicators), "options": options.to_dict()}
    return _store(session, actor, scope=region_code, year=year, source="grid", rows=clean,
                  filename=filename, file_sha256=file_sha256, note=note,
                  warnings=result.warnings, grid_info=info)


def create_from_grid_file(session: Session, actor: Principal, *, region_code: str, year: int,
                          filename: str | None, data: bytes,
                          indicators: Sequence[str] | None = None,
                          options: grid.GridOptions | None = None,
                          note: str | None = None) -> QuantitySet:
    _validate_scope(session, actor, region_code, year)
    cells = tables.read_grid(data)
    return create_from_grid(session, actor, region_code=region_code, year=year, cells=cells,
                            indicators=indicators, options=options, filename=filename,
                            file_sha256=hashlib.sha256(data).hexdigest(), note=note)


# --- reading -----------------------------------------------------------------------------------


def _readable(actor: Principal | None, quantity_set: QuantitySet) -> bool:
    return can(actor, "valuation.quantities.read", county=quantity_set.region_code)


def get_set(session: Session, actor: Principal | None, set_id: int, *,
            with_rows: bool = False) -> QuantitySet:
    if not 0 < set_id <= INT64_MAX:
        raise QuantitySetNotFound(f"no quantity set {set_id}")
    stmt = sa.select(QuantitySet).where(QuantitySet.id == set_id)
    if with_rows:
        stmt = stmt.options(selectinload(QuantitySet.rows))
    quantity_set = session.scalar(stmt)
    if quantity_set is None:
        raise QuantitySetNotFound(f"no quantity set {set_id}")
    if not _readable(actor, quantity_set):
        authorize(actor, "valuation.quantities.read", county=quantity_set.region_code)
    return quantity_set


def list_sets(session: Session, actor: Principal | None, *, region_code: str | None = None,
              year: int | None = None) -> sa.Select:
    authorize(actor, "valuation.quantities.read",
              county=region_code or (actor.county_code if actor else None))
    stmt = sa.select(QuantitySet).where(row_filter(actor, "valuation.quantities.read")
                                        .condition(county=QuantitySet.region_code))
    if region_code:
        stmt = stmt.where(QuantitySet.region_code == region_code)
    if year:
        stmt = stmt.where(QuantitySet.year == year)
    return stmt.order_by(QuantitySet.id.desc())


def set_rows(session: Session, actor: Principal | None, set_id: int) -> sa.Select:
    get_set(session, actor, set_id)
    return sa.select(QuantityRow).where(QuantityRow.set_id == set_id).order_by(QuantityRow.id)



# --- from the catalog --------------------------------------------------------------------------

#: when a product has several records of one metric for the year (different methods), the first
#: method in this order is used and the others are listed in the set's warnings
METHOD_PRIORITY = ("field_survey", "grid_monitoring", "remote_sensing", "statistical_yearbook",
                   "model_estimate")


def _catalog_reference(name: str) -> list[dict[str, str]]:
    import csv
    from importlib import resources

    text = resources.files("valuation").joinpath(f"reference/{name}").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


def create_from_catalog(session: Session, actor: Principal, *, region_code: str, year: int,
                        include_registered: bool = False, note: str | None = None,
                        ) -> QuantitySet:
    """Quantities derived from the catalog's monitoring records (read only) of the products in
    `region_code` for `year`.

    Rules (valuation/reference/catalog_metrics.csv, catalog_ecosystems.csv):
    - products: verified ones (and registered ones with `include_registered`); others are
      counted in the warnings, never used silently;
    - records: the annual record of the year; else the sum of 12 monthly records; a year with
      only some months is reported and not used; of several methods the first of
      METHOD_PRIORITY is used;
    - metric -> indicator: output/output_value/pollutant_removed follow the product type's
      indicator (output with the type as item); carbon_sink -> R-CARB, visits and
      tourism_revenue -> C-REC ...; a money metric (output_value, tourism_revenue) is preferred
      over the physical one for the same product (it is the market value); stock metrics
      (area, stock volume, carbon stock, NPP ...) are not GEP flows and are listed as unused;
    - ecosystem type from the product type (or a valid `ecosystem_type` attribute);
    - quantities are converted exactly to the indicator's unit and summed per county x
      indicator x item x ecosystem type.
    """
    from catalog.models import Product

    _validate_scope(session, actor, region_code, year)
    authorize(actor, "catalog.product.read", county=region_code)
    tree = region_hierarchy(session)
    definitions = current_registry(session)
    metric_rules = {r["metric"]: r for r in _catalog_reference("catalog_metrics.csv")}
    ecosystems = {r["type_code"]: r["ecosystem_type"]
                  for r in _catalog_reference("catalog_ecosystems.csv")}
    type_indicators = _product_type_indicators()
    statuses = ("verified", "registered") if include_registered else ("verified",)
    candidates = [p for p in session.scalars(sa.select(Product).order_by(Product.id))
                  if tree.is_within(p.region_code, region_code)]
    products = {p.id: p for p in candidates if p.status in statuses}
    warnings: list[str] = []
    skipped: dict[str, int] = {}
    for product in candidates:
        if product.status not in statuses:
            skipped[product.status] = skipped.get(product.status, 0) + 1
    if skipped:
        warnings.append("products not used (status): " + ", ".join(
            f"{count} {status}" for status, count in sorted(skipped.items())))
    chosen, flow_warnings = annual_flows(session, list(products), year, metric_rules)
    warnings.extend(flow_warnings)
    sums: dict[tuple[str, str, str, str, bool], list[Any]] = {}
    problems: list[dict[str, Any]] = []
    for (product_id, metric), (value, unit, record_ids) in sorted(chosen.items()):
        product = products[product_id]
        rule = metric_rules[metric]
        code = type_indicators.get(product.type_code) if rule["indicator"] == "type" \
            else rule["indicator"]
        definition = definitions.get(code or "")
        where = f"product {product_id} ({product.name_zh}) {metric}"
        if definition is None:
            problems.append({"field": "catalog", "message": f"{where}: no indicator for "
                             f"product type {product.type_code}"})
            continue
        assert code is not None  # the definition was found under it
        money = rule["money"] == "true"
        try:
            parsed = parse_unit(unit)
        except UnitError:
            problems.append({"field": "catalog", "message": f"{where}: unknown unit {unit!r}"})
            continue
        canonical: str | None
        if money:
            if parsed.without_per_year() != MONEY or not definition.money_quantity:
                problems.append({"field": "catalog", "message": f"{where}: {unit} is not an "
                                 f"amount {definition.code} can take as its value"})
                continue
            canonical = "yuan"
        else:
            canonical = definition.canonical_unit(unit)
            if canonical is None:
                problems.append({"field": "catalog", "message": f"{where}: unit {unit} does "
                                 f"not fit {definition.code}"})
                continue
        factor = conversion_factor(unit, canonical, annual=True)
        exact = Fraction(Decimal(repr(float(value)))) * factor
        item = product.type_code if metric == "output" and definition.items is None else ""
        eco = registry.normalize_ecosystem_type(str((product.attributes or {}).get(
            "ecosystem_type", ""))) if (product.attributes or {}).get("ecosystem_type") else None
        eco = eco or ecosystems.get(product.type_code, "unspecified")
        key = (tree.county_of(product.region_code), code, item, eco, money)
        entry = sums.setdefault(key, [Fraction(0), canonical, [], []])
        entry[0] += exact
        entry[2].append(product_id)
        entry[3].extend(record_ids)
    if problems:
        raise QuantitiesInvalid(f"{len(problems)} catalog record(s) cannot be used: "
                                f"{problems[0]['message']}", errors=problems)
    rows = []
    for position, ((region, code, item, eco, money), (total, unit, product_ids, record_ids)) in \
            enumerate(sorted(sums.items()), start=1):
        quantity = total.numerator / total.denominator
        if quantity < 0 and not definitions[code].allow_negative:
            raise QuantitiesInvalid(f"catalog records give a negative {code} for {region}")
        rows.append(CleanRow(
            source_row=position, region_code=region, indicator_code=code, item=item,
            ecosystem_type=eco, origin="local", quantity=quantity, quantity_unit=unit,
            money=money, reported_quantity=quantity, reported_unit=unit,
            note=(f"catalog: {len(record_ids)} record(s) of product(s) "
                  + ", ".join(map(str, sorted(set(product_ids)))))[:MAX_NOTE]))
    if not rows:
        raise QuantitiesInvalid(f"no usable monitoring record for {region_code} in {year}",
                                errors=[{"field": "catalog", "message": w} for w in warnings]
                                or None)
    return _store(session, actor, scope=region_code, year=year, source="catalog", rows=rows,
                  note=note or f"derived from catalog monitoring records {year} "
                               f"({'verified and registered' if include_registered else 'verified'}"
                               " products)", warnings=warnings)


def annual_flows(session: Session, product_ids: Sequence[int], year: int,
                 metric_rules: Mapping[str, Any] | None = None,
                 ) -> tuple[dict[tuple[int, str], tuple[float, str, list[int]]], list[str]]:
    """(product id, metric) -> (value, unit, record ids) of the year, by the rules of
    `create_from_catalog` (annual record, else 12 months; method priority; money figure over
    the physical one), and the warnings about what was not used."""
    from catalog.models import MonitoringRecord

    if metric_rules is None:
        metric_rules = {r["metric"]: r for r in _catalog_reference("catalog_metrics.csv")}
    warnings: list[str] = []
    records = session.scalars(sa.select(MonitoringRecord).where(
        MonitoringRecord.product_id.in_(list(product_ids) or [-1]),
        MonitoringRecord.period_year == year).order_by(MonitoringRecord.id)).all()
    chosen: dict[tuple[int, str], tuple[float, str, list[int]]] = {}
    by_key: dict[tuple[int, str], list[Any]] = {}
    for record in records:
        by_key.setdefault((record.product_id, record.metric), []).append(record)
    unused_metrics: dict[str, int] = {}
    for (product_id, metric), group in sorted(by_key.items()):
        if metric not in metric_rules:
            unused_metrics[metric] = unused_metrics.get(metric, 0) + len(group)
            continue
        annual = [r for r in group if r.period_month is None]
        if annual:
            annual.sort(key=lambda r: METHOD_PRIORITY.index(r.method)
                        if r.method in METHOD_PRIORITY else len(METHOD_PRIORITY))
            if len(annual) > 1:
                warnings.append(f"product {product_id} {metric} {year}: {annual[0].method} "
                                f"used, not {', '.join(r.method for r in annual[1:])}")
            pick = annual[0]
            chosen[(product_id, metric)] = (pick.value, pick.unit, [pick.id])
            continue
        months: dict[int | None, Any] = {}  # period month -> the first-priority record
        for record in sorted(group, key=lambda r: METHOD_PRIORITY.index(r.method)
                             if r.method in METHOD_PRIORITY else len(METHOD_PRIORITY)):
            months.setdefault(record.period_month, record)
        if len(months) == 12 and len({r.unit for r in months.values()}) == 1:
            first = next(iter(months.values()))
            chosen[(product_id, metric)] = (sum(r.value for r in months.values()), first.unit,
                                            [r.id for r in months.values()])
        else:
            warnings.append(f"product {product_id} {metric} {year}: only {len(months)} of 12 "
                            "monthly records (or mixed units): not used")
    if unused_metrics:
        warnings.append("records of metrics that are not GEP flows, not used: " + ", ".join(
            f"{m} ({n})" for m, n in sorted(unused_metrics.items())))
    for product_id in sorted({k[0] for k in chosen}):
        for money_metric, physical in (("output_value", "output"),
                                       ("tourism_revenue", "visits")):
            if (product_id, money_metric) in chosen and (product_id, physical) in chosen:
                del chosen[(product_id, physical)]
                warnings.append(f"product {product_id}: {money_metric} used, {physical} not "
                                "(the money figure is the market value)")
    return chosen, warnings


def _product_type_indicators() -> dict[str, str]:
    from catalog import vocabulary

    return {code: t.indicator_code for code, t in vocabulary.product_types().items()}

