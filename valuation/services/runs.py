"""Valuation runs: create (compute and store, immutable), publish, read, reproduce, compare;
asset values (NPV) of a run and of a catalog product."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Region
from catalog.services.regions import RegionHierarchy, region_hierarchy
from ecovalue import audit
from ecovalue.auth import Principal, authorize, can, row_filter
from ecovalue.db import INT64_MAX, bulk_insert_records, utcnow
from ecovalue.units import AREA, MONEY, UnitError, conversion_factor, parse_unit
from valuation import assets, engine, formulas
from valuation.engine import RunInputs, RunOptions
from valuation.errors import (
    AssetValueInvalid,
    DoubleCounting,
    ProductNotValuable,
    QuantitiesInvalid,
    RunAlreadyPublished,
    RunNotFound,
    RunOptionsInvalid,
    RunsNotComparable,
)
from valuation.formulas import RegionContext
from valuation.models import PriceBook, QuantityRow, QuantitySet, ValuationResult, ValuationRun
from valuation.registry import IndicatorDef
from valuation.services import prices as price_service
from valuation.services.indicators import current_registry
from valuation.services.quantities import get_set, require_region

RESULT_FIELDS = [c.key for c in ValuationResult.__table__.columns if c.key not in ("id",
                                                                                    "run_id")]
PERSON = parse_unit("person").dimension


# --- inputs ------------------------------------------------------------------------------------


def _convert_context(items: Sequence[Mapping[str, Any]], scope: str,
                     tree: RegionHierarchy) -> list[RegionContext]:
    """GDP, area and population per region, given as {value, unit}, converted exactly to yuan,
    km2 and persons; wrong dimensions and regions outside the scope are errors."""
    problems = []
    contexts = []
    seen = set()
    targets = {"gdp": ("yuan", MONEY), "area": ("km2", AREA), "population": ("person", PERSON)}
    for position, item in enumerate(items):
        code = item["region_code"]
        if code in seen:
            problems.append({"field": f"context.{position}.region_code",
                             "message": f"region {code} appears twice"})
            continue
        seen.add(code)
        if code not in tree or not tree.is_within(code, scope):
            problems.append({"field": f"context.{position}.region_code",
                             "message": f"region {code} is not {scope} or inside it"})
            continue
        values: dict[str, float | None] = {}
        for field, (target, dimension) in targets.items():
            given = item.get(field)
            if given is None:
                values[field] = None
                continue
            try:
                unit = parse_unit(given["unit"])
                if unit.without_per_year() != dimension:
                    raise UnitError(f"{field} needs a unit like {target}, not {given['unit']}")
                factor = conversion_factor(given["unit"], target, annual=True)
            except UnitError as exc:
                problems.append({"field": f"context.{position}.{field}.unit",
                                 "message": exc.detail})
                continue
            value = float(given["value"])
            if not (math.isfinite(value) and value > 0):
                problems.append({"field": f"context.{position}.{field}.value",
                                 "message": "must be a positive number"})
                continue
            values[field] = value * factor.numerator / factor.denominator
        contexts.append(RegionContext(code, tree.level(code), values.get("gdp"),
                                      values.get("area"), values.get("population")))
    if problems:
        raise RunOptionsInvalid(f"{len(problems)} problem(s) in the context: "
                                f"{problems[0]['message']}", errors=problems)
    return contexts


def _context_dicts(contexts: Sequence[RegionContext], given: Sequence[Mapping[str, Any]],
                   ) -> list[dict[str, Any]]:
    by_code = {g["region_code"]: g for g in given}
    return [{**dataclasses.asdict(c), "given": {k: v for k, v in by_code.get(
        c.region_code, {}).items() if k != "region_code"}} for c in contexts]


def _quantity_frame(session: Session, sets: Sequence[QuantitySet]) -> pd.DataFrame:
    ids = [s.id for s in sets]
    stmt = sa.select(QuantityRow.set_id, QuantityRow.source_row, QuantityRow.region_code,
                     QuantityRow.indicator_code, QuantityRow.item, QuantityRow.ecosystem_type,
                     QuantityRow.origin, QuantityRow.quantity, QuantityRow.quantity_unit,
                     QuantityRow.money).where(QuantityRow.set_id.in_(ids)).order_by(
        QuantityRow.set_id, QuantityRow.id)
    frame = pd.DataFrame(session.execute(stmt).all(),
                         columns=["set_id", "source_row", *engine.INPUT_COLUMNS])
    if frame.empty:
        frame = pd.DataFrame({c: pd.Series(dtype="object") for c in
                              ["set_id", "source_row", *engine.INPUT_COLUMNS]})
    frame["quantity"] = pd.to_numeric(frame["quantity"], errors="coerce").astype("float64")
    return frame


def _check_overlaps(frame: pd.DataFrame) -> None:
    """The same region x indicator x item x ecosystem type x origin in two sets is refused:
    never summed silently, never one chosen silently."""
    key = ["region_code", "indicator_code", "item", "ecosystem_type", "origin", "money"]
    duplicated = frame[frame.duplicated(key, keep=False)]
    if duplicated.empty:
        return
    problems = []
    for values, group in duplicated.groupby(key, sort=True):
        where = " / ".join(str(v) for v in values[:4] if v)
        places = ", ".join(f"set {s} row {r}" for s, r in zip(group["set_id"],
                                                              group["source_row"]))
        problems.append({"field": "quantity_set_ids",
                         "message": f"{where} is given more than once ({places})"})
    raise QuantitiesInvalid(f"{len(problems)} quantity(ies) appear in more than one set: "
                            f"{problems[0]['message']}", errors=problems)


def _gather(session: Session, *, region: Region, year: int, base_year: int,
            options: RunOptions, contexts: list[RegionContext], sets: Sequence[QuantitySet],
            book: PriceBook, definitions: dict[str, IndicatorDef] | None = None,
            indices: dict[str, dict[int, float]] | None = None,
            confirmations: dict[str, dict[int, str]] | None = None,
            tree: RegionHierarchy | None = None) -> RunInputs:
    frame = _quantity_frame(session, sets)
    _check_overlaps(frame)
    if definitions is None:
        definitions = current_registry(session, include_inactive=True)
    entries = price_service.price_entries(book)
    series = sorted({e.index_series for e in entries.values() if e.index_series}
                    | {options.deflator_series})
    if indices is None:
        indices = price_service.index_table(session, series)
    if confirmations is None:
        confirmations = {}
        for (code, y), mark in price_service.index_confirmations(session, series).items():
            confirmations.setdefault(code, {})[y] = mark
    tree = tree if tree is not None else region_hierarchy(session)
    levels = {region.code: region.level}
    for code in set(frame["region_code"]) | {c.region_code for c in contexts}:
        levels[code] = tree.level(code) if code in tree else "unknown"
    return RunInputs(
        region_code=region.code, year=year, base_year=base_year, options=options,
        contexts=contexts, quantities=frame[engine.INPUT_COLUMNS].copy(),
        definitions=definitions, prices=entries, price_book_version=book.version,
        indices=indices, index_confirmations=confirmations,
        default_prices=price_service.default_book_prices(), region_levels=levels)


def _compute(inputs: RunInputs, active: Sequence[str]) -> engine.RunOutcome:
    try:
        return engine.compute(inputs, active=active)
    except engine.InputProblem as exc:
        if exc.kind == "double-counting":
            raise DoubleCounting(str(exc), errors=exc.problems) from None
        if exc.kind == "options":
            raise RunOptionsInvalid(str(exc), errors=exc.problems) from None
        raise QuantitiesInvalid(str(exc), errors=[
            {"field": "quantities", "message": p["message"]} for p in exc.problems]) from None


# --- create ------------------------------------------------------------------------------------


def create_run(session: Session, actor: Principal, *, region_code: str, year: int,
               quantity_set_ids: Sequence[int], price_book_version: str | None = None,
               base_year: int | None = None, options: Mapping[str, Any] | None = None,
               context: Sequence[Mapping[str, Any]] = (), title: str | None = None,
               ) -> ValuationRun:
    """Value the quantity sets for `region_code` and `year` with a published price book and
    store the run (immutable) with its input hash."""
    authorize(actor, "valuation.run.create", county=region_code)
    region = require_region(session, region_code)
    base_year = year if base_year is None else base_year
    if not quantity_set_ids:
        raise RunOptionsInvalid("at least one quantity set is required", errors=[{
            "field": "quantity_set_ids", "message": "give the quantity sets to value"}])
    sets = []
    tree = region_hierarchy(session)
    problems = []
    for set_id in dict.fromkeys(quantity_set_ids):
        quantity_set = get_set(session, actor, set_id)
        if quantity_set.year != year:
            problems.append({"field": "quantity_set_ids", "message": f"quantity set {set_id} "
                             f"is for {quantity_set.year}, not {year}"})
        if not tree.is_within(quantity_set.region_code, region_code):
            problems.append({"field": "quantity_set_ids", "message": f"quantity set {set_id} "
                             f"covers {quantity_set.region_code}, outside {region_code}"})
        sets.append(quantity_set)
    if problems:
        raise RunOptionsInvalid(problems[0]["message"], errors=problems)
    book = price_service.published_book(session, price_book_version)
    run_options = RunOptions.from_dict(options or {})
    if run_options.output_value_basis not in ("gross", "net"):
        raise RunOptionsInvalid("output_value_basis must be gross or net")
    price_service.ensure_reference_data(session)
    if price_service.series_exists(session, run_options.deflator_series) is False:
        raise RunOptionsInvalid(f"unknown deflator series {run_options.deflator_series!r}",
                                errors=[{"field": "options.deflator_series",
                                         "message": "unknown price-index series"}])
    contexts = _convert_context(context, region_code, tree)
    inputs = _gather(session, region=region, year=year, base_year=base_year,
                     options=run_options, contexts=contexts, sets=sets, book=book, tree=tree)
    active = list(current_registry(session))
    outcome = _compute(inputs, active)
    digest = engine.input_hash(inputs)
    used = sorted(set(outcome.enabled) | set(inputs.quantities["indicator_code"]))
    label = title or f"{region.name_en or region.name_zh} GEP {year}"
    run = ValuationRun(
        region_code=region_code, year=year, base_year=base_year, price_book_id=book.id,
        status="finished", title=label[:200], options=run_options.to_dict(),
        context=_context_dicts(contexts, context), input_hash=digest,
        engine_version=engine.ENGINE_VERSION, gep_current=outcome.summary["gep"]["current"],
        gep_constant=outcome.summary["gep"]["constant"], summary=json_safe(outcome.summary),
        ratios=json_safe(outcome.ratios), unvalued=json_safe(outcome.unvalued),
        warnings=outcome.warnings, prices=json_safe(outcome.prices),
        registry_snapshot={"enabled": outcome.enabled, "active": active,
                           "definitions": {c: inputs.definitions[c].to_dict() for c in used}},
        indices={"values": {s: {str(y): v for y, v in values.items()}
                            for s, values in inputs.indices.items()},
                 "confirmations": {s: {str(y): c for y, c in values.items()}
                                   for s, values in inputs.index_confirmations.items()}},
        created_by=actor.label)
    run.quantity_sets = list(sets)
    session.add(run)
    session.flush()
    records = _result_records(outcome.results)
    if records:
        bulk_insert_records(session, ValuationResult.__table__,
                            [{**r, "run_id": run.id} for r in records])
    audit.record(session, actor, "valuation.run.create", "valuation_run", run.id, after={
        "region_code": region_code, "year": year, "base_year": base_year,
        "price_book": book.version, "quantity_sets": [s.id for s in sets],
        "options": run.options, "input_hash": digest, "gep_current": run.gep_current,
        "gep_constant": run.gep_constant, "results": len(records),
        "unvalued": len(outcome.unvalued)})
    return run


def json_safe(value: Any) -> Any:
    """JSON documents never hold NaN or infinity (PostgreSQL's json refuses them; missing is
    null): floats that are not finite become None, numpy scalars plain Python."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return _clean(value)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def _result_records(results: pd.DataFrame) -> list[dict[str, Any]]:
    records = []
    for row in results.to_dict("records"):
        record = {k: _clean(row[k]) for k in RESULT_FIELDS}
        record["complete"] = bool(record["complete"])
        record["terms"] = list(row["terms"])
        record["parameters"] = list(row["parameters"])
        records.append(record)
    return records


# --- read, publish, reproduce ------------------------------------------------------------------


def _visible(actor: Principal | None, run: ValuationRun) -> bool:
    return run.status == "published" or can(actor, "valuation.run.read", county=run.region_code)


def get_run(session: Session, actor: Principal | None, run_id: int) -> ValuationRun:
    """A published run for anyone; an unpublished one for those who may read it (a
    registrar: own county only). Others get 404, not a hint that it exists."""
    run = session.get(ValuationRun, run_id) if 0 < run_id <= INT64_MAX else None
    if run is None or not _visible(actor, run):
        raise RunNotFound(f"no valuation run {run_id}")
    return run


def list_runs(session: Session, actor: Principal | None, *, region_code: str | None = None,
              year: int | None = None, status: str | None = None) -> sa.Select:
    stmt = sa.select(ValuationRun)
    unpublished = row_filter(actor, "valuation.run.read")
    if not unpublished.everything:  # published runs are public
        stmt = stmt.where(sa.or_(ValuationRun.status == "published",
                                 unpublished.condition(county=ValuationRun.region_code)))
    if region_code:
        stmt = stmt.where(ValuationRun.region_code == region_code)
    if year:
        stmt = stmt.where(ValuationRun.year == year)
    if status:
        stmt = stmt.where(ValuationRun.status == status)
    return stmt.order_by(ValuationRun.id.desc())


def results_query(session: Session, actor: Principal | None, run_id: int, *,
                  indicator_code: str | None = None, region_code: str | None = None,
                  ecosystem_type: str | None = None) -> sa.Select:
    get_run(session, actor, run_id)
    stmt = sa.select(ValuationResult).where(ValuationResult.run_id == run_id)
    if indicator_code:
        stmt = stmt.where(ValuationResult.indicator_code == indicator_code)
    if region_code:
        stmt = stmt.where(ValuationResult.region_code == region_code)
    if ecosystem_type:
        stmt = stmt.where(ValuationResult.ecosystem_type == ecosystem_type)
    return stmt.order_by(ValuationResult.indicator_code, ValuationResult.item,
                         ValuationResult.region_code, ValuationResult.ecosystem_type,
                         ValuationResult.id)


def results_frame(session: Session, run: ValuationRun) -> pd.DataFrame:
    rows = session.scalars(sa.select(ValuationResult).where(
        ValuationResult.run_id == run.id).order_by(ValuationResult.id)).all()
    columns = ["indicator_code", "category", "item", "region_code", "ecosystem_type", "quantity",
               "quantity_unit", "quantity_gross", "quantity_outside", "unit_price",
               "unit_price_constant", "adjustment_factor", "value_reference", "value_current",
               "value_constant", "complete", "terms", "parameters"]
    frame = pd.DataFrame([[getattr(r, c) for c in columns] for r in rows], columns=columns)
    for column in ("quantity", "quantity_gross", "quantity_outside", "unit_price",
                   "unit_price_constant", "adjustment_factor", "value_reference",
                   "value_current", "value_constant"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def publish_run(session: Session, actor: Principal, run_id: int) -> ValuationRun:
    """Make a finished run public. Its numbers do not change."""
    authorize(actor, "valuation.run.publish")
    run = session.get(ValuationRun, run_id, with_for_update=True) if 0 < run_id <= INT64_MAX \
        else None
    if run is None:
        raise RunNotFound(f"no valuation run {run_id}")
    if run.status == "published":
        raise RunAlreadyPublished(f"run {run_id} is already published")
    before = {"status": run.status}
    run.status = "published"
    run.published_at = utcnow()
    run.published_by = actor.label
    session.flush()
    audit.record(session, actor, "valuation.run.publish", "valuation_run", run.id,
                 before=before, after={"status": run.status, "input_hash": run.input_hash})
    return run


def reproduce_run(session: Session, actor: Principal | None, run_id: int) -> dict[str, Any]:
    """Recompute a stored run from its stored inputs (quantity sets, published price book,
    indicator definitions, index values and options it recorded) and compare: same hash, same
    numbers to the last bit."""
    run = get_run(session, actor, run_id)
    snapshot = run.registry_snapshot
    definitions = {c: IndicatorDef.from_dict(d) for c, d in snapshot["definitions"].items()}
    full = current_registry(session, include_inactive=True)
    for code, definition in full.items():
        definitions.setdefault(code, definition)
    indices = {s: {int(y): float(v) for y, v in values.items()}
               for s, values in run.indices["values"].items()}
    confirmations = {s: {int(y): c for y, c in values.items()}
                     for s, values in run.indices["confirmations"].items()}
    contexts = [RegionContext(c["region_code"], c["level"], c["gdp_yuan"], c["area_km2"],
                              c["population"]) for c in run.context]
    region = session.get(Region, run.region_code)
    assert region is not None  # the run's foreign key
    inputs = _gather(session, region=region, year=run.year, base_year=run.base_year,
                     options=RunOptions.from_dict(run.options), contexts=contexts,
                     sets=run.quantity_sets, book=run.price_book, definitions=definitions,
                     indices=indices, confirmations=confirmations)
    outcome = _compute(inputs, snapshot["active"])
    digest = engine.input_hash(inputs)
    stored = results_frame(session, run)
    fresh = outcome.results
    numeric = ["quantity", "value_current", "value_constant", "unit_price", "adjustment_factor"]
    identical = len(stored) == len(fresh) and digest == run.input_hash
    max_difference = 0.0
    if len(stored) == len(fresh) and len(stored):
        for column in numeric:
            a = stored[column].to_numpy(float)
            b = fresh[column].to_numpy(float)
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            if not same.all():
                identical = False
                diff = np.nanmax(np.abs(a - b))
                max_difference = max(max_difference, float(diff) if np.isfinite(diff) else 0.0)
    gep_same = outcome.summary["gep"]["current"] == run.gep_current and \
        outcome.summary["gep"]["constant"] == run.gep_constant
    return {"run_id": run.id, "identical": bool(identical and gep_same),
            "stored_input_hash": run.input_hash, "recomputed_input_hash": digest,
            "stored_gep_current": run.gep_current,
            "recomputed_gep_current": outcome.summary["gep"]["current"],
            "results": len(fresh), "max_abs_difference": max_difference}


# --- comparison --------------------------------------------------------------------------------


def compare_runs(session: Session, actor: Principal | None, base_id: int, other_id: int, *,
                 basis: str = "current") -> dict[str, Any]:
    """Change from run `base_id` to run `other_id`, split into quantity, price, interaction
    and composition effects (see valuation.formulas.decompose_change)."""
    base = get_run(session, actor, base_id)
    other = get_run(session, actor, other_id)
    if base.region_code != other.region_code:
        raise RunsNotComparable(f"run {base_id} values {base.region_code} and run {other_id} "
                                f"values {other.region_code}: compare runs of the same region")
    if basis not in ("current", "constant"):
        raise RunsNotComparable("basis must be current or constant")
    notes = []
    if basis == "constant" and base.base_year != other.base_year:
        notes.append(f"the runs' constant prices have different base years ({base.base_year}, "
                     f"{other.base_year}): constant values are not on the same price level")
    if base.price_book_id != other.price_book_id:
        notes.append("the runs used different price books: part of the price effect is the "
                     "change of book")
    same_base = base.base_year == other.base_year
    if not same_base:
        notes.append("values reported in yuan (output values) are compared as nominal amounts: "
                     "the runs have different base years, so no common real volume exists")
    rows = formulas.decompose_change(results_frame(session, base), results_frame(session, other),
                                     basis=basis, real_money_volume=same_base)
    parts = ["value_0", "value_1", "change", "quantity_effect", "price_effect", "interaction",
             "composition"]
    by_indicator = rows.groupby(["indicator_code", "category"], sort=True)[parts].sum()
    # each item or sub-item its own row (R-SOIL sediment/nitrogen/phosphorus ...), for the
    # indicators valued by item: they sum to the indicator's row
    labelled = rows.assign(item=rows["item"].fillna("").astype(str))
    itemised = labelled.groupby("indicator_code")["item"].transform(lambda i: (i != "").any())
    by_item = labelled[itemised.astype(bool)].assign(
        item=lambda f: f["item"].replace("", "(no item)")).groupby(
        ["indicator_code", "category", "item"], sort=True)[parts].sum()
    by_category = rows.groupby("category", sort=True)[parts].sum()
    totals = {k: float(rows[k].sum()) if len(rows) else 0.0 for k in parts}
    gep_key = "gep_current" if basis == "current" else "gep_constant"
    return {
        "base_run_id": base.id, "other_run_id": other.id, "region_code": base.region_code,
        "base_year": base.year, "other_year": other.year, "basis": basis,
        "method": ("V = Q x p per indicator x item x region x ecosystem type; change = (Q1-Q0)p0 "
                   "[quantity] + (p1-p0)Q0 [price] + (Q1-Q0)(p1-p0) [interaction] + value of "
                   "rows valued in only one run [composition]; the parts sum to the change. "
                   "Values reported in yuan use their constant-price value as Q when both "
                   "runs share a base year"),
        "gep_0": getattr(base, gep_key), "gep_1": getattr(other, gep_key),
        "totals": totals,
        "by_category": [{"category": c, **{k: float(v[k]) for k in parts}}
                        for c, v in by_category.iterrows()],
        "by_indicator": [{"indicator_code": i, "category": c, **{k: float(v[k]) for k in parts}}
                         for (i, c), v in by_indicator.iterrows()],
        "by_item": [{"indicator_code": i, "category": c, "item": t,
                     **{k: float(v[k]) for k in parts}}
                    for (i, c, t), v in by_item.iterrows()],
        "rows": [{k: _clean(v) for k, v in r.items()} for r in rows.to_dict("records")],
        "notes": notes,
    }


# --- asset values ------------------------------------------------------------------------------


def asset_value(session: Session, actor: Principal | None, run_id: int, *,
                discount_rates: Sequence[float], horizon_years: int, growth: float = 0.0,
                basis: str = "constant", indicator_code: str | None = None,
                category: str | None = None) -> dict[str, Any]:
    """NPV of the run's annual GEP (or one category / indicator) held as the expected flow
    (SEEA EA monetary asset account), with a sensitivity table over the discount rates.
    An asset value is a stock: it is reported next to GEP, never added to it."""
    run = get_run(session, actor, run_id)
    frame = results_frame(session, run)
    column = "value_constant" if basis == "constant" else "value_current"
    selected = frame
    label = "GEP"
    if indicator_code:
        selected = frame[frame["indicator_code"] == indicator_code]
        label = indicator_code
    elif category:
        selected = frame[frame["category"] == category]
        label = category
    if selected.empty:
        raise AssetValueInvalid(f"run {run_id} has no valued {label}")
    flow = float(selected[column].sum())
    try:
        table = assets.sensitivity(flow, discount_rates, horizon_years, [growth])
    except assets.AssetInputError as exc:
        raise AssetValueInvalid(str(exc)) from None
    return {
        "run_id": run.id, "scope": label, "basis": basis, "annual_flow_yuan": flow,
        "horizon_years": horizon_years, "growth": growth,
        "timing": "end of each year t = 1..horizon; F_t = F x (1 + growth)^(t - 1)",
        "note": "asset value (stock): not part of GEP (a flow) and never added to it",
        "sensitivity": [dataclasses.asdict(r) for r in table],
    }



def product_value(session: Session, actor: Principal | None, product_id: int, *, year: int,
                  discount_rates: Sequence[float], horizon_years: int, growth: float = 0.0,
                  price_book_version: str | None = None,
                  unit_price: float | None = None) -> dict[str, Any]:
    """NPV of one catalog product's annual flow (e.g. a forest carbon-sink parcel's
    sequestration over a crediting period) at the unit price of a published price book
    adjusted to `year` (or a given unit price): a reference price per unit and per hectare.
    Reads the catalog only; stores nothing."""
    from catalog.models import Product

    authorize(actor, "valuation.read")
    product = session.get(Product, product_id) if 0 < product_id <= INT64_MAX else None
    if product is None:
        raise ProductNotValuable(f"no product {product_id}")
    from valuation.services.quantities import _product_type_indicators, annual_flows

    code = _product_type_indicators().get(product.type_code)
    definitions = current_registry(session)
    definition = definitions.get(code or "")
    if definition is None:
        raise ProductNotValuable(f"product type {product.type_code} has no GEP indicator")
    flows, _warnings = annual_flows(session, [product.id], year)
    physical = [(metric, value) for (pid, metric), value in flows.items()
                if pid == product.id and metric not in ("output_value", "tourism_revenue")]
    if not physical:
        raise ProductNotValuable(f"product {product_id} has no physical flow recorded for "
                                 f"{year} (an annual record, or 12 monthly ones)")
    metric, (value, unit, _ids) = physical[0]
    canonical = definition.canonical_unit(unit)
    if canonical is None:
        raise ProductNotValuable(f"{metric} in {unit} does not fit {definition.code}")
    factor = conversion_factor(unit, canonical, annual=True)
    annual_quantity = float(value) * factor.numerator / factor.denominator
    item = product.type_code if definition.items is None else ""
    if unit_price is None:
        book = price_service.published_book(session, price_book_version)
        series = sorted({e.index_series for e in book.entries if e.index_series})
        frame = pd.DataFrame([{
            "region_code": product.county_code, "indicator_code": definition.code,
            "item": item, "ecosystem_type": "unspecified", "quantity": 1.0,
            "quantity_unit": canonical, "quantity_gross": 1.0, "quantity_outside": 0.0,
            "money": False}])
        valuation = formulas.value_quantities(
            frame, definitions, price_service.price_entries(book),
            price_service.index_table(session, series), year=year, base_year=year,
            deflator_series=price_service.DEFAULT_SERIES)
        if valuation.results.empty:
            reason = valuation.unvalued[0]["reason"] if valuation.unvalued else "no price"
            raise ProductNotValuable(f"no unit price for {definition.code} in price book "
                                     f"{book.version}: {reason}")
        unit_price = float(valuation.results["value_current"].iloc[0])
        price_source = (f"price book {book.version}, {definition.code} at {year} prices "
                        f"(parameters: {', '.join(valuation.results['parameters'].iloc[0])})")
    else:
        price_source = "given by the caller"
    rows = []
    try:
        for rate in sorted(set(discount_rates)):
            valued = assets.product_npv(annual_quantity, unit_price, rate, horizon_years,
                                        growth=growth, area_ha=product.area_ha)
            rows.append({"discount_rate": rate, "npv": valued.npv,
                         "npv_per_unit": valued.npv_per_unit, "npv_per_ha": valued.npv_per_ha})
    except assets.AssetInputError as exc:
        raise AssetValueInvalid(str(exc)) from None
    if len(rows) < 2:
        raise AssetValueInvalid("give at least two different discount rates")
    return {
        "product_id": product.id, "product_name": product.name_zh,
        "indicator_code": definition.code, "year": year, "annual_quantity": annual_quantity,
        "quantity_unit": canonical, "quantity_source": f"catalog {metric} {year}",
        "unit_price": unit_price, "unit_price_source": price_source,
        "annual_value": annual_quantity * unit_price, "horizon_years": horizon_years,
        "growth": growth, "area_ha": product.area_ha, "valuations": rows,
        "note": "NPV of end-of-year flows t = 1..horizon; npv_per_unit is the present value "
                "per unit of the flow over the period (a reference price), never added to GEP",
    }


def gep_totals(session: Session, *, region_code: str, year: int) -> list[dict[str, Any]]:
    """The runs of a region and accounting year, whatever their status, with their GEP totals
    (yuan, full precision): the public reader the composition root hands to compensation,
    whose agreement conditions on a GEP change read published runs (it may not import
    valuation). Oldest first."""
    rows = session.execute(
        sa.select(ValuationRun.id, ValuationRun.status, ValuationRun.base_year,
                  ValuationRun.gep_constant, ValuationRun.gep_current,
                  ValuationRun.published_at)
        .where(ValuationRun.region_code == region_code, ValuationRun.year == year)
        .order_by(ValuationRun.id)).all()
    return [{"run_id": r[0], "status": r[1], "base_year": r[2], "gep_constant_yuan": r[3],
             "gep_current_yuan": r[4], "published_at": r[5]} for r in rows]
