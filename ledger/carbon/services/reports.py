"""Monitoring reports: the removals of one period, computed from the catalog's monitoring
records of the project's parcels (stem volume at the two dates), from uploaded inventory
plots, or from the tree registry (single-tree route); verified by someone other than the
person who filed them."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import MonitoringRecord, Product
from catalog.services.monitoring import METHOD_PRECEDENCE
from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.errors import ValidationFailed
from ecovalue.units import UnitError, convert
from ledger.carbon import errors, inventory, lifecycle, methodology
from ledger.carbon.models import (
    CarbonParameterSet,
    CarbonProject,
    CarbonReport,
    CarbonTree,
)
from ledger.carbon.services import parameters
from ledger.carbon.services.common import fetch, get_project, invalid, now_and_today
from ledger.carbon.services.projects import parcels_of
from ledger.core.rules import digest

STOCK_METRIC = "stock_volume"
MAX_ESTIMATE_TCO2E = 1e12


def report_data(report: CarbonReport) -> dict:
    return audit.snapshot(report, exclude=("calculation",))


def get_report(session: Session, actor: Principal | None, report_id: int) -> CarbonReport:
    authorize(actor, "carbon.read")
    report = fetch(session, CarbonReport, report_id)
    if report is None:
        raise errors.ReportNotFound(f"no monitoring report {report_id}")
    return report


def list_reports(session: Session, actor: Principal | None, *, project: int | str | None = None,
                 status: str | None = None) -> sa.Select:
    authorize(actor, "carbon.read")
    stmt = sa.select(CarbonReport)
    if project is not None:
        stmt = stmt.where(CarbonReport.project_id == get_project(session, project).id)
    if status:
        stmt = stmt.where(CarbonReport.status == status)
    return stmt.order_by(CarbonReport.id)


def _finite(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or not 0 <= value <= MAX_ESTIMATE_TCO2E:
        raise invalid(f"{field} must be a non-negative number of tCO2e", field,
                      f"0 to {MAX_ESTIMATE_TCO2E:g}")
    return float(value)


def _check_period(session: Session, project: CarbonProject, start: Any, end: Any,
                  today: dt.date) -> None:
    if not isinstance(start, dt.date) or not isinstance(end, dt.date) or end < start:
        raise invalid("the monitoring period needs a start and an end on or after it",
                      "period_end", "on or after period_start")
    if end > today:
        raise invalid(f"the monitoring period ends after today ({today})", "period_end",
                      "not in the future")
    if start < project.crediting_start or end > project.crediting_end:
        raise invalid(f"the monitoring period lies outside the crediting period "
                      f"{project.crediting_start} .. {project.crediting_end}", "period_start",
                      "inside the crediting period")
    clash = session.execute(sa.select(CarbonReport.id, CarbonReport.period_start,
                                      CarbonReport.period_end).where(
        CarbonReport.project_id == project.id, CarbonReport.status != "rejected",
        CarbonReport.period_start <= end, CarbonReport.period_end >= start)).first()
    if clash is not None:
        raise errors.PeriodOverlap(
            f"report {clash.id} already covers {clash.period_start} .. {clash.period_end}; a "
            "period is credited once", errors=[{"location": "json", "field": "period_start",
                                                "message": f"overlaps report {clash.id}"}])


def _stock_record(session: Session, product: Product, day: dt.date) -> MonitoringRecord | None:
    """The stem-volume record of `product` for the period ending on `day`, most direct
    method first."""
    records = list(session.scalars(sa.select(MonitoringRecord).where(
        MonitoringRecord.product_id == product.id, MonitoringRecord.metric == STOCK_METRIC,
        MonitoringRecord.period_end == day)))
    records.sort(key=lambda r: METHOD_PRECEDENCE.index(r.method)
                 if r.method in METHOD_PRECEDENCE else len(METHOD_PRECEDENCE))
    return records[0] if records else None


def _volume_m3(record: MonitoringRecord) -> float:
    try:
        return float(convert(float(record.value), record.unit, "m3"))
    except UnitError:
        raise invalid(f"monitoring record {record.id} is in {record.unit}, not a volume",
                      "parcel_ids", "stem volume in m3") from None


def _from_catalog(session: Session, project: CarbonProject, start: dt.date, end: dt.date,
                  species: dict) -> tuple[list, list[int], list]:
    opening_day = start - dt.timedelta(days=1)
    changes, record_ids, missing, inputs = [], [], [], []
    for product in parcels_of(session, project.id):
        opening, closing = _stock_record(session, product, opening_day), \
            _stock_record(session, product, end)
        for day, record in ((opening_day, opening), (end, closing)):
            if record is None:
                missing.append({"location": "json", "field": "parcel_ids",
                                "message": f"parcel {product.id} ({product.name_zh}) has no "
                                           f"{STOCK_METRIC} record for the period ending "
                                           f"{day}"})
        if opening is None or closing is None:
            continue
        record_ids += [opening.id, closing.id]
        inputs += [(r.id, r.value, r.unit, r.method) for r in (opening, closing)]
        changes += methodology.parcel_removals(product.id, _volume_m3(opening),
                                               _volume_m3(closing),
                                               project.species_composition, species)
    if missing:
        raise errors.MonitoringDataMissing(
            "the catalog lacks stem-volume records at the start or end of the period "
            f"(records of {STOCK_METRIC} whose period ends on {opening_day} and on {end})",
            errors=missing)
    return changes, record_ids, inputs


def _species_code(text: str, species: dict) -> str | None:
    if text in species:
        return text
    return next((code for code, p in species.items() if p.name_zh == text), None)


def _from_plots(session: Session, project: CarbonProject, upload: bytes,
                species: dict) -> tuple[list, list]:
    try:
        rows, problems = inventory.read_plots(upload)
    except inventory.InventoryError as exc:
        raise errors.InventoryRejected(str(exc), errors=exc.errors) from None
    parcels = {p.id: p for p in parcels_of(session, project.id)}
    missing_species = []
    plots = []
    for row in rows:
        if "parcel_id" in row:
            parcel = parcels.get(row["parcel_id"])
            if parcel is None:
                problems.append({"location": "file", "row": row["row"], "column": "parcel_id",
                                 "message": f"product {row['parcel_id']} is not a parcel of "
                                            f"{project.code}"})
            elif parcel.area_ha is None:
                problems.append({"location": "file", "row": row["row"], "column": "parcel_id",
                                 "message": f"parcel {parcel.id} has no area in the catalog"})
        code = _species_code(row["species"], species) if row["species"] else None
        if row["species"] and code is None:
            missing_species.append({"location": "file", "row": row["row"],
                                    "column": "species", "message": f"species "
                                    f"{row['species']!r} has no parameters in the set"})
        if {"parcel_id", "plot_area_ha", "volume_start_m3", "volume_end_m3"} <= set(row) \
                and code is not None:
            plots.append(methodology.Plot(row["plot_code"], row["parcel_id"], code,
                                          row["plot_area_ha"], row["volume_start_m3"],
                                          row["volume_end_m3"]))
    if missing_species:
        raise errors.SpeciesWithoutParameters("species without parameters",
                                              errors=missing_species + problems)
    if problems:
        raise errors.InventoryRejected(f"the inventory has {len(problems)} error(s); nothing "
                                       "was written", errors=problems)
    areas = {pid: p.area_ha for pid, p in parcels.items() if p.area_ha is not None}
    changes = []
    for parcel_id, code, start_m3, end_m3 in methodology.expand_plots(plots, areas):
        changes += methodology.parcel_removals(parcel_id, start_m3, end_m3, {code: 1.0},
                                               species)
    return changes, [(p.plot_code, p.parcel_id, p.species_code, p.plot_area_ha,
                      p.volume_start_m3, p.volume_end_m3) for p in plots]


def _from_trees(session: Session, project: CarbonProject, start: dt.date, end: dt.date,
                species: dict) -> tuple[list[dict], float, list]:
    rows = session.execute(sa.select(CarbonTree.species_code, CarbonTree.planting_year).where(
        CarbonTree.project_id == project.id, CarbonTree.planting_year <= end.year)).all()
    if not rows:
        raise errors.MonitoringDataMissing("no registered trees were planted by the end of "
                                           "the period", errors=[{"field": "trees",
                                                                  "message": "none"}])
    counts = Counter(code for code, _ in rows)
    without = [c for c in counts if species[c].tree_tco2e_per_year is None]
    if without:
        raise errors.SpeciesWithoutParameters(
            f"species {', '.join(sorted(without))} have no per-tree figure in parameter set",
            errors=[{"field": "tree_tco2e_per_year", "message": f"missing for {c}"}
                    for c in sorted(without)])
    years = ((end - start).days + 1) / 365.2425
    removals = methodology.single_tree_removals_tco2e(counts, years, species)
    calculation = [{"species_code": c, "trees": counts[c],
                    "tree_tco2e_per_year": species[c].tree_tco2e_per_year, "years": years,
                    "removals_tco2e": removals[c]} for c in sorted(counts)]
    return calculation, sum(removals.values()), sorted(counts.items())


def file_report(session: Session, actor: Principal, ref: int | str, *, period_start: dt.date,
                period_end: dt.date, source: str, baseline_tco2e: float = 0.0,
                leakage_tco2e: float = 0.0, note: str | None = None,
                upload: bytes | None = None, now: dt.datetime | None = None) -> CarbonReport:
    """File a monitoring report; its removals are computed now and kept with their inputs."""
    project = get_project(session, ref)
    authorize(actor, "carbon.report.create", county=project.county_code)
    now, today = now_and_today(now)
    if project.status not in lifecycle.CREDITING_STATES:
        raise errors.ProjectLocked(f"project {project.code} is {project.status}: reports are "
                                   "filed for registered and active projects")
    method = methodology.METHODOLOGIES[project.methodology]
    if source not in method.sources:
        raise invalid(f"a {project.methodology} project reports from "
                      f"{', '.join(method.sources)}", "source", f"one of {method.sources}")
    if source == "inventory_plots" and not upload:
        raise invalid("an inventory-plot report needs the uploaded file", "file", "required")
    baseline, leakage = _finite(baseline_tco2e, "baseline_tco2e"), \
        _finite(leakage_tco2e, "leakage_tco2e")
    _check_period(session, project, period_start, period_end, today)
    parameter_set = session.get_one(CarbonParameterSet, project.parameter_set_id)
    species = parameters.species_of(session, parameter_set.id)
    record_ids: list[int] = []
    if source == "catalog":
        changes, record_ids, inputs = _from_catalog(session, project, period_start,
                                                    period_end, species)
    elif source == "inventory_plots":
        changes, inputs = _from_plots(session, project, upload or b"", species)
        inputs = [hashlib.sha256(upload or b"").hexdigest(), inputs]
    if source == "tree_registry":
        calculation, actual, inputs = _from_trees(session, project, period_start, period_end,
                                                  species)
    else:
        calculation = [{"parcel_id": c.parcel_id, "species_code": c.species_code,
                        "volume_start_m3": c.volume_start_m3, "volume_end_m3": c.volume_end_m3,
                        "tco2e_per_m3": c.tco2e_per_m3, "removals_tco2e": c.removals_tco2e}
                       for c in changes]
        actual = sum(c.removals_tco2e for c in changes)
    net = methodology.net_removals_tco2e(actual, baseline, leakage)
    report = CarbonReport(
        project_id=project.id, period_start=period_start, period_end=period_end,
        vintage_year=period_end.year, source=source, status="submitted",
        actual_removals_tco2e=actual, baseline_tco2e=baseline, leakage_tco2e=leakage,
        net_removals_tco2e=net, quantity_t=methodology.whole_tonnes(net),
        calculation=calculation, record_ids=record_ids,
        input_sha256=digest({"project": project.code, "start": period_start, "end": period_end,
                             "source": source, "inputs": inputs, "baseline": baseline,
                             "leakage": leakage, "parameters": parameter_set.content_sha256}),
        parameter_set_version=parameter_set.version, note=note, created_at=now,
        created_by=actor.label)
    session.add(report)
    session.flush()
    audit.record(session, actor, "carbon.report.create", "carbon_report", report.id,
                 after=report_data(report))
    return report


def _decide(session: Session, actor: Principal, report_id: int, action: str
            ) -> tuple[CarbonReport, CarbonProject]:
    report = fetch(session, CarbonReport, report_id)
    authorize(actor, action)
    if report is None:
        raise errors.ReportNotFound(f"no monitoring report {report_id}")
    if report.status != "submitted":
        raise errors.IllegalTransition(f"report {report.id} is {report.status}, not submitted")
    if not actor.is_system and report.created_by == actor.label:
        raise errors.FourEyesViolation(f"report {report.id} was filed by {actor.label}; "
                                       "another person must verify it")
    return report, session.get_one(CarbonProject, report.project_id)


def verify_report(session: Session, actor: Principal, report_id: int, *,
                  now: dt.datetime | None = None) -> CarbonReport:
    """A verifier (not the person who filed it) approves the report's quantity."""
    report, _ = _decide(session, actor, report_id, "carbon.report.verify")
    now, _ = now_and_today(now)
    before = report_data(report)
    report.status, report.verified_at, report.verified_by = "verified", now, actor.label
    session.flush()
    audit.record(session, actor, "carbon.report.verify", "carbon_report", report.id,
                 before=before, after=report_data(report))
    return report


def reject_report(session: Session, actor: Principal, report_id: int, *, reason: str,
                  now: dt.datetime | None = None) -> CarbonReport:
    """Send a report back; its period is free again for a corrected report."""
    report, _ = _decide(session, actor, report_id, "carbon.report.reject")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("a reason is required to reject a report",
                               errors=[{"field": "reason", "message": "required"}])
    now, _ = now_and_today(now)
    before = report_data(report)
    report.status, report.verified_at, report.verified_by = "rejected", now, actor.label
    report.rejection_reason = reason[:500]
    session.flush()
    audit.record(session, actor, "carbon.report.reject", "carbon_report", report.id,
                 before=before, after=report_data(report))
    return report
