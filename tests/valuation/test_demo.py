"""The demo dataset shows a published Wangmo GEP run labelled DEMO."""

from __future__ import annotations

import sqlalchemy as sa

from ecovalue.auth import system_principal
from valuation import demo
from valuation.models import QuantitySet, ValuationRun


def test_demo_loads_published_demo_runs_once(session):
    lines = demo.load(session, system_principal("demo"))
    assert any("Wangmo GEP 2024 (DEMO)" in line for line in lines)
    runs = session.scalars(sa.select(ValuationRun).order_by(ValuationRun.id)).all()
    assert [(r.year, r.status) for r in runs] == [(2023, "published"), (2024, "published")]
    assert all("DEMO" in r.title for r in runs)
    assert all(s.note.startswith("DEMO") for r in runs for s in r.quantity_sets)
    latest = runs[-1]
    assert 1 <= latest.ratios["522326"]["gep_to_gdp"] <= 20
    assert not any("regulating services" in w for w in latest.warnings)
    assert demo.load(session, system_principal("demo"))[-1] == "valuation demo already loaded"


def test_demo_holds_a_quantity_set_from_the_sample_rasters(session):
    lines = demo.load(session, system_principal("demo"))
    line = next(line for line in lines if "from SAMPLE rasters" in line)
    stored = session.scalars(sa.select(QuantitySet).where(
        QuantitySet.region_code == demo.PREFECTURE)).one()
    assert f"quantity set {stored.id} of Qianxinan 2024" in line
    assert f"{stored.row_count} aggregates" in line and "3,600 cells of 30 m" in line
    assert stored.source == "grid" and stored.note.startswith("DEMO")
    assert stored.grid["route"] == "raster" and stored.grid["cells"] == 60 * 60
    assert stored.grid["zone_polygons"]["features"] == 2
    rows = {(r.indicator_code, r.region_code) for r in stored.rows}
    assert rows >= {(code, county) for code in ("R-SOIL", "R-WCON", "R-CARB", "R-O2")
                    for county in ("522326", "522327")}
    assert any("missing is not zero" in w for w in stored.warnings)  # the nodata corner
