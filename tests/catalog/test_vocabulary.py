"""The controlled vocabularies: product types aligned with the GEP indicators, metrics, units,
spellings accepted in spreadsheets, locations and periods."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from catalog import vocabulary
from ecovalue.units import parse_unit

ROOT = Path(__file__).resolve().parents[2]


def test_every_product_type_feeds_a_known_gep_indicator_of_its_category():
    # read valuation's reference table as data (catalog never imports valuation)
    with open(ROOT / "valuation" / "reference" / "gep_indicators.csv", encoding="utf-8") as f:
        indicators = {r["code"]: r["category"] for r in csv.DictReader(f)}
    for product_type in vocabulary.product_types().values():
        assert product_type.indicator_code in indicators, product_type.code
        assert indicators[product_type.indicator_code] == product_type.category, product_type.code
        parse_unit(product_type.quantity_unit)  # a known unit


def test_the_issue_s_examples_are_in_the_vocabulary():
    types = vocabulary.product_types()
    for code in ("tea", "oil_tea", "walnut", "understory_fungi", "timber_forest",
                 "forest_carbon_sink", "water_conservation_area", "karst_landscape"):
        assert code in types
    assert {t.category for t in types.values()} == {"provisioning", "regulating", "cultural"}


def test_metric_units_parse():
    for metric in vocabulary.metrics().values():
        if metric.unit != "type":
            parse_unit(metric.unit)


@pytest.mark.parametrize("field, spelling, code", [
    ("type", "茶叶", "tea"), ("type", "Tea", "tea"), ("type", "油茶", "oil_tea"),
    ("type", "森林碳汇地块", "forest_carbon_sink"), ("rights_type", "承包经营权",
                                                   "contract_management"),
    ("rights_type", "所有权", "ownership"), ("rights_type", "USE", "use"),
    ("method", "遥感监测", "remote_sensing"), ("method", "统计年鉴", "statistical_yearbook"),
    ("metric", "产量", "output"), ("metric", "碳汇量", "carbon_sink"),
    ("development_status", "已交易", "traded"), ("category", "调节服务", "regulating"),
])
def test_spellings(field, spelling, code):
    assert vocabulary.to_code(field, spelling) == code


def test_unknown_spelling_is_none():
    assert vocabulary.to_code("type", "鸦片") is None


@pytest.mark.parametrize("type_code, unit, ok", [
    ("tea", "t", True), ("tea", "万斤", True), ("tea", "kg/a", True), ("tea", "m3", False),
    ("timber_forest", "万m3", True), ("timber_forest", "t", False),
    ("forest_carbon_sink", "tCO2/a", True), ("forest_carbon_sink", "tC/a", False),
    ("karst_landscape", "万人次", True), ("water_conservation_area", "亿m3/a", True),
    ("tea", "furlong", False),
])
def test_quantity_unit_dimension(type_code, unit, ok):
    assert (vocabulary.quantity_unit_error(type_code, unit) is None) is ok


@pytest.mark.parametrize("metric, type_code, unit, ok", [
    ("output", "tea", "t", True), ("output", "tea", "万斤", True),
    ("output", "forest_carbon_sink", "t", False), ("area", "tea", "亩", True),
    ("area", "tea", "t", False), ("visits", "karst_landscape", "万人次", True),
    ("carbon_sink", "forest_carbon_sink", "万tCO2", True),
    ("stock_volume", "timber_forest", "m3", True),
    ("stock_volume", "timber_forest", "m3/a", False),  # a stock is not a flow
    ("forest_coverage", "timber_forest", "%", True),
])
def test_metric_unit_dimension(metric, type_code, unit, ok):
    assert (vocabulary.metric_unit_error(metric, type_code, unit) is None) is ok


def test_location_inside_prefecture_and_swapped_coordinates():
    assert vocabulary.location_error(25.17, 106.09) is None  # Wangmo
    assert vocabulary.location_error(25.09, 104.9) is None  # Xingyi
    assert "swapped" in vocabulary.location_error(106.09, 25.17)
    assert "outside" in vocabulary.location_error(39.9, 116.4)  # Beijing
    assert "both" in vocabulary.location_error(25.1, None)


def test_periods():
    assert vocabulary.period_bounds(2024, None) == (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert vocabulary.period_bounds(2024, 2) == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert vocabulary.period_bounds(2023, 2)[1] == dt.date(2023, 2, 28)
    today = vocabulary.local_today()
    assert vocabulary.period_error(today.year, today.month) is None
    assert "future" in vocabulary.period_error(today.year + 1, None)
    assert vocabulary.period_error(1948, None) is not None
    assert vocabulary.period_error(2020, 13) is not None
