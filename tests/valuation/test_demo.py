"""The demo dataset shows a published Wangmo GEP run labelled DEMO."""

from __future__ import annotations

import sqlalchemy as sa

from ecovalue.auth import system_principal
from valuation import demo
from valuation.models import ValuationRun


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
