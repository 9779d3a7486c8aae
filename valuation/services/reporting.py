"""Reports of runs (county, or the prefecture with a slice per county), exports and charts."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from catalog.services.regions import region_display_name, region_hierarchy, region_names
from ecovalue.auth import Principal
from ecovalue.errors import ValidationFailed
from valuation import formulas, registry, reports
from valuation.models import ValuationRun
from valuation.registry import IndicatorDef
from valuation.services.runs import compare_runs, get_run, results_frame


def run_view(session: Session, actor: Principal | None, run_id: int, *,
             region_code: str | None = None) -> reports.RunView:
    """The data of a report; `region_code` narrows a prefecture run to one county (or any
    region inside the run's scope): its rows, their totals and its ratios."""
    run = get_run(session, actor, run_id)
    frame = results_frame(session, run)
    unvalued = list(run.unvalued)
    tree = region_hierarchy(session)
    names = region_names(session)
    region_name = region_display_name(session, run.region_code) or run.region_code
    scope_note = ""
    ratios = run.ratios
    if region_code and region_code != run.region_code:
        if region_code not in tree or not tree.is_within(region_code, run.region_code):
            raise ValidationFailed(f"region {region_code} is not inside run {run.id}'s scope "
                                   f"{run.region_code}", errors=[{
                                       "location": "query", "field": "region",
                                       "message": "not inside the run's scope"}])
        keep = np.array([tree.is_within(c, region_code) for c in frame["region_code"]],
                        dtype=bool)
        frame = frame[keep].reset_index(drop=True)
        unvalued = [u for u in unvalued if u.get("region_code") is None
                    or tree.is_within(u["region_code"], region_code)]
        region_name = region_display_name(session, region_code) or region_code
        scope_note = f"slice of run {run.id} ({run.region_code}) for {region_code}"
        ratios = {k: v for k, v in run.ratios.items() if k == region_code}
    definitions = {c: IndicatorDef.from_dict(d)
                   for c, d in run.registry_snapshot["definitions"].items()}
    return reports.RunView(
        run_id=run.id, title=run.title, region_code=region_code or run.region_code,
        region_name=region_name, year=run.year, base_year=run.base_year, status=run.status,
        price_book=run.price_book.version, input_hash=run.input_hash, results=frame,
        unvalued=unvalued, prices=run.prices, warnings=run.warnings, ratios=ratios,
        indicator_names={c: (d.name_zh, d.name_en) for c, d in definitions.items()},
        region_names=names, scope_note=scope_note,
        indicator_order=[*registry.builtin_indicators(),
                         *sorted(c for c in definitions if c not in registry.builtin_indicators())])


def report(session: Session, actor: Principal | None, run_id: int, *, by: str,
           unit: str = "万元", region_code: str | None = None) -> dict[str, Any]:
    unit = reports.display_unit(unit)
    view = run_view(session, actor, run_id, region_code=region_code)
    frame = reports.table(view, by, unit)
    records = []
    for record in frame.to_dict("records"):
        records.append({k: _json(v) for k, v in record.items()})
    totals = formulas.summarize(view.results)
    scale = reports.DISPLAY_UNITS[unit]
    return {"run_id": run_id, "region_code": view.region_code, "year": view.year,
            "base_year": view.base_year, "table": by, "unit": unit,
            "gep_current": totals["gep"]["current"] / scale,
            "gep_constant": totals["gep"]["constant"] / scale,
            "columns": list(frame.columns), "rows": records, "warnings": view.warnings}


def _json(value: Any) -> Any:
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return value


def export(session: Session, actor: Principal | None, run_id: int, *, fmt: str,
           unit: str = "万元", table: str = "indicator", region_code: str | None = None,
           ) -> tuple[bytes, str]:
    """(file bytes, file name) of a run as XLSX (all tables and the chart) or CSV (one
    table)."""
    unit = reports.display_unit(unit)
    view = run_view(session, actor, run_id, region_code=region_code)
    stem = f"gep-run{run_id}-{view.region_code}-{view.year}"
    if fmt == "xlsx":
        chart = reports.composition_chart(view, "亿元")
        return reports.to_xlsx(view, unit, chart), f"{stem}.xlsx"
    if fmt == "csv":
        return reports.to_csv(reports.table(view, table, unit)), f"{stem}-{table}.csv"
    raise ValidationFailed("format must be xlsx or csv")


def composition_png(session: Session, actor: Principal | None, run_id: int, *,
                    unit: str = "亿元", region_code: str | None = None) -> bytes:
    return reports.composition_chart(run_view(session, actor, run_id, region_code=region_code),
                                     reports.display_unit(unit))


def change_png(session: Session, actor: Principal | None, base_id: int, other_id: int, *,
               basis: str = "current", unit: str = "亿元") -> bytes:
    comparison = compare_runs(session, actor, base_id, other_id, basis=basis)
    run = session.get(ValuationRun, base_id)
    name = (region_display_name(session, run.region_code) if run else None) or ""
    return reports.change_chart(comparison, reports.display_unit(unit), name)
