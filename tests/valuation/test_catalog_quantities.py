"""Quantities derived from the catalog's monitoring records (read only)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from catalog.models import MonitoringRecord, Party, Product
from tests.valuation.conftest import WANGMO
from valuation.errors import QuantitiesInvalid
from valuation.models import QuantityRow
from valuation.services import quantities


def _product(session, holder, type_code, category, status="verified", name=None):
    product = Product(name_zh=name or f"{type_code}-{status}", category=category,
                      type_code=type_code, region_code=WANGMO, county_code=WANGMO,
                      holder_party_id=holder, rights_type="ownership", status=status,
                      created_by="test", updated_by="test")
    session.add(product)
    session.flush()
    return product


def _record(session, product, metric, value, unit, *, month=None, method="field_survey",
            year=2024):
    start = dt.date(year, month or 1, 1)
    end = dt.date(year, month, 28) if month else dt.date(year, 12, 31)
    session.add(MonitoringRecord(product_id=product.id, county_code=WANGMO, period_year=year,
                                 period_month=month, period_start=start, period_end=end,
                                 metric=metric, value=value, unit=unit, method=method,
                                 recorded_by="test"))


@pytest.fixture()
def catalog(session):
    holder = Party(kind="village_collective", name_zh="打狼村集体", region_code=WANGMO)
    session.add(holder)
    session.flush()
    tea = _product(session, holder.id, "tea", "provisioning")
    _record(session, tea, "output", 120, "t")
    _record(session, tea, "output_value", 960, "万元")
    oil = _product(session, holder.id, "oil_tea", "provisioning")
    _record(session, oil, "output", 2.4, "万斤")
    sink_a = _product(session, holder.id, "forest_carbon_sink", "regulating", name="碳汇A")
    _record(session, sink_a, "carbon_sink", 1.2, "万tCO2/a")
    _record(session, sink_a, "carbon_sink", 999, "tCO2/a", method="model_estimate")
    _record(session, sink_a, "area", 300, "ha")
    sink_b = _product(session, holder.id, "forest_carbon_sink", "regulating", name="碳汇B")
    for month in range(1, 13):
        _record(session, sink_b, "carbon_sink", 10, "tCO2", month=month)
    water = _product(session, holder.id, "water_conservation_area", "regulating")
    for month in range(1, 6):
        _record(session, water, "water_conservation", 1e6, "m3", month=month)
    pending = _product(session, holder.id, "karst_landscape", "cultural", status="registered")
    _record(session, pending, "visits", 35, "万人次")
    session.flush()
    return session


def _rows(session, quantity_set):
    return {(r.indicator_code, r.item): r for r in session.scalars(
        sa.select(QuantityRow).where(QuantityRow.set_id == quantity_set.id))}


def test_quantities_follow_the_documented_rules(catalog, system):
    created = quantities.create_from_catalog(catalog, system, region_code=WANGMO, year=2024)
    rows = _rows(catalog, created)
    # tea: the output value (960 万元) is used, not the 120 t
    assert (rows[("P-AGR", "")].quantity, rows[("P-AGR", "")].money) == (9_600_000.0, True)
    assert rows[("P-AGR", "")].ecosystem_type == "farmland"
    # oil tea: 2.4 万斤 = 24,000 jin = 12 t exactly, the type is the item
    assert rows[("P-FOR", "oil_tea")].quantity == 12.0
    # carbon: field survey 1.2 万tCO2 (not the model estimate) + 12 months x 10 t
    assert rows[("R-CARB", "")].quantity == 12_000.0 + 120.0
    assert rows[("R-CARB", "")].ecosystem_type == "forest"
    assert ("R-WCON", "") not in rows and ("C-REC", "") not in rows
    warnings = " | ".join(created.warnings)
    assert "output_value used, output not" in warnings
    assert "field_survey used, not model_estimate" in warnings
    assert "only 5 of 12 monthly records" in warnings
    assert "area (1)" in warnings
    assert "1 registered" in warnings
    assert created.source == "catalog"


def test_registered_products_on_request(catalog, system):
    created = quantities.create_from_catalog(catalog, system, region_code=WANGMO, year=2024,
                                             include_registered=True)
    assert _rows(catalog, created)[("C-REC", "")].quantity == 350_000.0


def test_a_year_without_records_is_refused(catalog, system):
    with pytest.raises(QuantitiesInvalid, match="no usable monitoring record"):
        quantities.create_from_catalog(catalog, system, region_code=WANGMO, year=2019)


def test_npv_of_a_forest_carbon_parcel_as_reference_price(catalog, system):
    from valuation.errors import ProductNotValuable
    from valuation.services import prices, runs

    prices.ensure_reference_data(catalog)
    parcel = catalog.scalar(sa.select(Product).where(Product.name_zh == "碳汇A"))
    parcel.area_ha = 300.0
    catalog.flush()
    result = runs.product_value(catalog, system, parcel.id, year=2024,
                                discount_rates=[0.0, 0.05], horizon_years=20)
    price = 1200 * 12 / 44 * 709.4 / 522.7  # default book carbon price adjusted to 2024
    assert result["unit_price"] == pytest.approx(price)
    assert result["annual_quantity"] == 12_000.0  # field survey, not the model estimate
    by_rate = {row["discount_rate"]: row for row in result["valuations"]}
    assert by_rate[0.0]["npv"] == pytest.approx(20 * 12_000 * price)
    assert by_rate[0.0]["npv_per_unit"] == pytest.approx(price)
    assert by_rate[0.05]["npv"] == pytest.approx(12_000 * price * (1 - 1.05 ** -20) / 0.05)
    assert by_rate[0.05]["npv_per_ha"] == pytest.approx(by_rate[0.05]["npv"] / 300)
    given = runs.product_value(catalog, system, parcel.id, year=2024, unit_price=85.0,
                               discount_rates=[0.03, 0.08], horizon_years=10)
    assert given["unit_price_source"] == "given by the caller"
    with pytest.raises(ProductNotValuable, match="no physical flow recorded for 2019"):
        runs.product_value(catalog, system, parcel.id, year=2019, discount_rates=[0.03, 0.05],
                           horizon_years=10)
