"""Monitoring records: observed values of a product's metrics per year or month, and time
series per product and per county."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import vocabulary
from catalog.errors import (
    MonitoringRecordExists,
    MonitoringRecordNotFound,
    ProductLocked,
    ProductNotFound,
)
from catalog.models import MONITORING_METHODS, MonitoringRecord, Product, Region
from catalog.services.common import fetch
from catalog.services.products import get_product
from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.db import utcnow
from ecovalue.errors import ValidationFailed
from ecovalue.units import convert, parse_unit

#: which record counts when one product has the same metric and period from several methods:
#: the most direct observation first
METHOD_PRECEDENCE = ("field_survey", "grid_monitoring", "remote_sensing", "model_estimate",
                     "statistical_yearbook")
_EDITABLE = ("value", "unit", "source", "note")


def record_snapshot(record: MonitoringRecord) -> dict:
    return audit.snapshot(record)


def record_errors(product_type: str, values: dict[str, Any]) -> list[dict]:
    """Errors of one record's values for a product of `product_type` (all of them)."""
    errors: list[dict] = []

    def err(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    metric_code = values.get("metric")
    metric = vocabulary.metrics().get(metric_code) if isinstance(metric_code, str) else None
    if metric is None:
        err("metric", f"unknown metric {metric_code!r}; see GET /catalog/metrics")
    year, month = values.get("period_year"), values.get("period_month")
    if not isinstance(year, int) or (month is not None and not isinstance(month, int)):
        err("period_year", "a year (and optionally a month 1-12)")
    elif (message := vocabulary.period_error(year, month)) is not None:
        err("period_month" if "month" in message else "period_year", message)
    value = values.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        err("value", "a finite number is required (missing is not zero: leave the record out)")
    elif metric is not None and value < 0 and not metric.allows_negative:
        err("value", f"{metric.code} cannot be negative")
    unit = values.get("unit")
    if not isinstance(unit, str) or not unit.strip():
        err("unit", "a unit is required")
    elif metric is not None and (
            message := vocabulary.metric_unit_error(metric.code, product_type, unit)) is not None:
        err("unit", message)
    if values.get("method") not in MONITORING_METHODS:
        err("method", f"must be one of {', '.join(MONITORING_METHODS)}")
    for field, limit in (("source", 300), ("note", 500)):
        text = values.get(field)
        if text is not None and (not isinstance(text, str) or len(text) > limit):
            err(field, f"text of at most {limit} characters")
    return errors


def _writable_product(session: Session, actor: Principal, product_id: int) -> Product:
    product = fetch(session, Product, product_id)
    if product is None:
        authorize(actor, "catalog.monitoring.write", county=(actor.county_code if actor else None)
                  or "")
        raise ProductNotFound(f"no product {product_id}")
    authorize(actor, "catalog.monitoring.write", county=product.county_code)
    if product.status == "retired":
        raise ProductLocked(f"product {product.id} is retired; it takes no more monitoring data")
    return product


def create_record(session: Session, actor: Principal, product_id: int,
                  values: dict[str, Any]) -> MonitoringRecord:
    """Record one observed value; the same product, metric, period and method twice is a
    conflict (change the existing record instead)."""
    product = _writable_product(session, actor, product_id)
    values = {k: (v.strip() or None) if isinstance(v, str) and k in ("source", "note") else v
              for k, v in values.items()}
    errors = record_errors(product.type_code, values)
    if errors:
        raise ValidationFailed("invalid monitoring record", errors=errors)
    start, end = vocabulary.period_bounds(values["period_year"], values.get("period_month"))
    clash = session.scalar(sa.select(MonitoringRecord.id).where(
        MonitoringRecord.product_id == product.id, MonitoringRecord.metric == values["metric"],
        MonitoringRecord.period_start == start, MonitoringRecord.period_end == end,
        MonitoringRecord.method == values["method"]))
    if clash is not None:
        raise MonitoringRecordExists(
            f"record {clash} already holds {values['metric']} of product {product.id} for this "
            f"period and method; change it instead")
    record = MonitoringRecord(
        product_id=product.id, county_code=product.county_code,
        period_year=values["period_year"], period_month=values.get("period_month"),
        period_start=start, period_end=end, metric=values["metric"],
        value=float(values["value"]), unit=values["unit"].strip(), method=values["method"],
        source=values.get("source"), note=values.get("note"), recorded_by=actor.label,
        recorded_at=utcnow(), version=1,
    )
    session.add(record)
    session.flush()
    audit.record(session, actor, "catalog.monitoring.create", "monitoring_record", record.id,
                 after=record_snapshot(record))
    return record


def _load_record(session: Session, actor: Principal, record_id: int) -> MonitoringRecord:
    record = fetch(session, MonitoringRecord, record_id)
    if record is None:
        authorize(actor, "catalog.monitoring.write", county=(actor.county_code if actor else None)
                  or "")
        raise MonitoringRecordNotFound(f"no monitoring record {record_id}")
    authorize(actor, "catalog.monitoring.write", county=record.county_code)
    return record


def update_record(session: Session, actor: Principal, record_id: int,
                  changes: dict[str, Any]) -> MonitoringRecord:
    """Correct a record's value, unit, source or note (its product, metric, period and method
    are its identity: record another one instead)."""
    record = _load_record(session, actor, record_id)
    product = fetch(session, Product, record.product_id)
    assert product is not None  # the record's foreign key
    if product.status == "retired":
        raise ProductLocked(f"product {product.id} is retired; its records are kept as they are")
    changes = {k: v for k, v in changes.items() if k in _EDITABLE}
    for key in ("source", "note"):
        if isinstance(changes.get(key), str):
            changes[key] = changes[key].strip() or None
    current = {"metric": record.metric, "period_year": record.period_year,
               "period_month": record.period_month, "value": record.value, "unit": record.unit,
               "method": record.method, "source": record.source, "note": record.note}
    merged = {**current, **changes}
    errors = record_errors(product.type_code, merged)
    if errors:
        raise ValidationFailed("invalid monitoring record", errors=errors)
    changed = {k for k in changes if changes[k] != current[k]}
    if not changed:
        return record
    before = record_snapshot(record)
    for key in changed:
        setattr(record, key, float(merged[key]) if key == "value" else merged[key])
    record.version += 1
    record.recorded_by, record.recorded_at = actor.label, utcnow()
    session.flush()
    audit.record(session, actor, "catalog.monitoring.update", "monitoring_record", record.id,
                 before=before, after=record_snapshot(record))
    return record


def delete_record(session: Session, actor: Principal, record_id: int) -> None:
    """Delete a record entered in error; the audit trail keeps what it said."""
    record = _load_record(session, actor, record_id)
    before = record_snapshot(record)
    session.delete(record)
    session.flush()
    audit.record(session, actor, "catalog.monitoring.delete", "monitoring_record", record_id,
                 before=before)


def get_record(session: Session, actor: Principal, record_id: int) -> MonitoringRecord:
    authorize(actor, "catalog.product.read")
    record = fetch(session, MonitoringRecord, record_id)
    if record is None:
        raise MonitoringRecordNotFound(f"no monitoring record {record_id}")
    return record


def list_records(session: Session, actor: Principal, *, product_id: int | None = None,
                 county_code: str | None = None, metric: str | None = None,
                 method: str | None = None, year_from: int | None = None,
                 year_to: int | None = None, monthly: bool | None = None) -> sa.Select:
    """Records matching the filters, in time order (per product: its time series)."""
    if product_id is not None:
        get_product(session, actor, product_id)
    else:
        authorize(actor, "catalog.product.read")
    stmt = sa.select(MonitoringRecord)
    if product_id is not None:
        stmt = stmt.where(MonitoringRecord.product_id == product_id)
    if county_code:
        stmt = stmt.where(MonitoringRecord.county_code == county_code)
    if metric:
        stmt = stmt.where(MonitoringRecord.metric == metric)
    if method:
        stmt = stmt.where(MonitoringRecord.method == method)
    if year_from is not None:
        stmt = stmt.where(MonitoringRecord.period_year >= year_from)
    if year_to is not None:
        stmt = stmt.where(MonitoringRecord.period_year <= year_to)
    if monthly is not None:
        stmt = stmt.where(MonitoringRecord.period_month.is_not(None) if monthly
                          else MonitoringRecord.period_month.is_(None))
    return stmt.order_by(MonitoringRecord.period_start, MonitoringRecord.product_id,
                         MonitoringRecord.metric, MonitoringRecord.method, MonitoringRecord.id)


def county_series(session: Session, actor: Principal, *, county_code: str, metric: str,
                  type_code: str | None = None, category: str | None = None,
                  year_from: int | None = None, year_to: int | None = None,
                  monthly: bool = False) -> dict:
    """A county's total of one metric per period, over its non-retired products, converted to
    the metric's reference unit. Where one product has the metric for a period from several
    methods, one counts, by METHOD_PRECEDENCE. Annual series use annual records, monthly
    series monthly ones (monthly records are not summed into years: a stock is not a flow)."""
    authorize(actor, "catalog.product.read")
    errors = []
    metric_def = vocabulary.metrics().get(metric)
    if metric_def is None:
        errors.append({"field": "metric", "message": f"unknown metric {metric!r}"})
    if type_code is not None and type_code not in vocabulary.product_types():
        errors.append({"field": "type", "message": f"unknown product type {type_code!r}"})
    if metric_def is not None and metric_def.unit == "type" and type_code is None:
        errors.append({"field": "type", "message": f"{metric} is measured in the product "
                       "type's unit: choose a type"})
    if session.get(Region, county_code) is None:
        errors.append({"field": "county", "message": f"unknown county {county_code}"})
    if errors:
        raise ValidationFailed("cannot build this series", errors=errors)
    assert metric_def is not None  # an unknown metric is refused above
    reference_unit = (vocabulary.metric_unit(metric, type_code) if type_code
                      else metric_def.unit)
    stmt = (sa.select(MonitoringRecord.product_id, MonitoringRecord.period_year,
                      MonitoringRecord.period_month, MonitoringRecord.period_start,
                      MonitoringRecord.period_end, MonitoringRecord.value,
                      MonitoringRecord.unit, MonitoringRecord.method)
            .join(Product, Product.id == MonitoringRecord.product_id)
            .where(MonitoringRecord.county_code == county_code,
                   MonitoringRecord.metric == metric, Product.status != "retired"))
    if type_code:
        stmt = stmt.where(Product.type_code == type_code)
    if category:
        stmt = stmt.where(Product.category == category)
    if year_from is not None:
        stmt = stmt.where(MonitoringRecord.period_year >= year_from)
    if year_to is not None:
        stmt = stmt.where(MonitoringRecord.period_year <= year_to)
    stmt = stmt.where(MonitoringRecord.period_month.is_not(None) if monthly
                      else MonitoringRecord.period_month.is_(None))
    chosen: dict[tuple, Any] = {}
    rank = {m: i for i, m in enumerate(METHOD_PRECEDENCE)}
    for row in session.execute(stmt):
        key = (row.product_id, row.period_start)
        if key not in chosen or rank[row.method] < rank[chosen[key].method]:
            chosen[key] = row
    points: dict[tuple, dict] = defaultdict(lambda: {"value": 0.0, "products": 0,
                                                     "methods": set()})
    annual = metric_def.flow or parse_unit(reference_unit).is_annual
    for row in chosen.values():
        point = points[(row.period_year, row.period_month, row.period_start, row.period_end)]
        point["value"] += float(convert(float(row.value), row.unit, reference_unit,
                                        annual=annual))
        point["products"] += 1
        point["methods"].add(row.method)
    return {
        "county_code": county_code, "metric": metric, "type_code": type_code,
        "category": category, "unit": reference_unit, "monthly": monthly,
        "points": [
            {"period_year": y, "period_month": m, "period_start": s, "period_end": e,
             "value": p["value"], "products": p["products"], "methods": sorted(p["methods"])}
            for (y, m, s, e), p in sorted(points.items(), key=lambda kv: kv[0][2])
        ],
    }
