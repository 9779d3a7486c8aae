"""Valuation runs end to end through the services."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ecovalue.auth import Principal, Role
from ecovalue.errors import Forbidden
from tests.valuation.conftest import PREFECTURE, WANGMO, XINGYI, row
from valuation.errors import (
    AssetValueInvalid,
    DoubleCounting,
    IndicatorDefinitionInvalid,
    QuantitiesInvalid,
    RunNotFound,
    RunOptionsInvalid,
    RunsNotComparable,
)
from valuation.models import ValuationResult
from valuation.services import indicators, prices, quantities, reporting, runs

REGISTRAR = Principal(Role.REGISTRAR, "token:registrar", token_id=3, county_code=WANGMO)
OTHER_REGISTRAR = Principal(Role.REGISTRAR, "token:xingyi", token_id=4, county_code=XINGYI)
TRADER = Principal(Role.TRADER, "token:trader", token_id=5, party_id=1)

ROWS = [
    row("R-WCON", 9.8, "亿m³"),
    row("R-WCON", 2.1, "亿m³", eco="shrubland"),
    row("R-SOIL", 2850, "万t"),
    row("R-CARB", 182, "万tCO2"),
    row("R-AIR", 1850, "t", item="SO2"),
    row("R-WQ", 410, "t", item="TN", eco="wetland"),
    row("P-AGR", 31.8, "亿元", eco="farmland"),
    row("C-REC", 980, "万人次"),
]


def _set(session, actor, rows=ROWS, year=2024, region=WANGMO):
    return quantities.create_from_rows(session, actor, region_code=region, year=year, rows=rows)


def _run(session, actor, rows=ROWS, **kwargs):
    quantity_set = _set(session, actor, rows, kwargs.get("year", 2024),
                        kwargs.get("region_code", WANGMO))
    kwargs.setdefault("region_code", WANGMO)
    kwargs.setdefault("year", 2024)
    return runs.create_run(session, actor, quantity_set_ids=[quantity_set.id], **kwargs)


def test_gep_is_the_sum_of_categories_and_of_ecosystem_types(session, system):
    run = _run(session, system)
    summary = run.summary
    assert run.gep_current > 0
    assert run.gep_current == pytest.approx(sum(v["current"] for v in
                                                summary["by_category"].values()), rel=1e-15)
    assert run.gep_current == pytest.approx(sum(v["current"] for v in
                                                summary["by_ecosystem_type"].values()),
                                            rel=1e-15)
    stored = session.scalars(sa.select(ValuationResult).where(ValuationResult.run_id == run.id))
    assert run.gep_current == pytest.approx(sum(r.value_current for r in stored), rel=1e-15)


def test_constant_prices_at_the_base_year_equal_current_prices(session, system):
    same = _run(session, system, base_year=2024)
    assert same.gep_constant == same.gep_current
    other = _run(session, system, base_year=2020)
    assert other.gep_current == same.gep_current
    assert other.gep_constant == pytest.approx(same.gep_current * 686.5 / 709.4, rel=1e-12)


def test_identical_inputs_give_identical_hash_and_numbers(session, system):
    first = _run(session, system, base_year=2020)
    second = _run(session, system, base_year=2020)
    assert first.input_hash == second.input_hash
    assert first.summary == second.summary
    a = runs.results_frame(session, first)
    b = runs.results_frame(session, second)
    assert a.drop(columns=["terms", "parameters"]).equals(b.drop(columns=["terms",
                                                                          "parameters"]))
    other = _run(session, system, base_year=2021)
    assert other.input_hash != first.input_hash
    check = runs.reproduce_run(session, system, first.id)
    assert check["identical"] and check["max_abs_difference"] == 0.0


def test_a_missing_parameter_leaves_that_indicator_unvalued_and_the_rest_proceeds(session,
                                                                                  system):
    run = _run(session, system)
    unvalued = {(u["indicator_code"], u.get("term")): u for u in run.unvalued}
    assert "travel_cost" in unvalued[("C-REC", None)]["reason"]
    assert unvalued[("C-REC", None)]["quantity"] == 9_800_000.0
    assert "treatment_cost.TN" in unvalued[("R-WQ", None)]["reason"]
    assert "soil_bulk_density" in unvalued[("R-SOIL", "sediment")]["reason"]
    assert unvalued[("R-FLOOD", None)]["kind"] == "no-quantity"
    valued = set(run.summary["by_indicator"])
    assert valued == {"R-WCON", "R-CARB", "R-AIR", "P-AGR"}
    assert "C-REC" not in run.summary["by_indicator"]  # unvalued, never zero


def test_a_year_without_price_index_is_unvalued_with_the_reason(session, system):
    rows = [row("R-WCON", 1, "亿m³", year=2030), row("P-AGR", 1, "亿元", year=2030)]
    run = _run(session, system, rows=rows, year=2030)
    assert run.gep_current == 0.0 and run.summary["by_indicator"] == {}
    reasons = " | ".join(u["reason"] for u in run.unvalued)
    assert "price index CPI-CN-1978 has no value for 2030" in reasons
    assert "cannot be deflated" in reasons


def test_oxygen_double_counts_with_carbon_unless_accepted_explicitly(session, system):
    rows = [*ROWS, row("R-O2", 133, "万t")]
    off = _run(session, system, rows=rows)
    assert any(u["indicator_code"] == "R-O2" and u["kind"] == "disabled" for u in off.unvalued)
    with pytest.raises(DoubleCounting, match="R-CARB\\+R-O2"):
        _run(session, system, rows=rows, options={"enable": ["R-O2"]})
    both = _run(session, system, rows=rows, options={
        "enable": ["R-O2"], "allow_double_count": ["R-O2+R-CARB"]})
    assert "R-O2" in both.summary["by_indicator"]
    assert "double counting accepted by option: R-CARB+R-O2" in both.warnings
    instead = _run(session, system, rows=rows, options={"enable": ["R-O2"],
                                                          "disable": ["R-CARB"]})
    assert "R-O2" in instead.summary["by_indicator"]
    assert "R-CARB" not in instead.summary["by_indicator"]
    with pytest.raises(RunOptionsInvalid, match="unknown indicator R-NOPE"):
        _run(session, system, options={"enable": ["R-NOPE"]})


def test_territorial_principle_subtracts_quantities_from_outside(session, system):
    rows = [row("P-ENE", 16.3, "亿kWh", eco="wetland"),
            row("P-ENE", 2.1, "亿kWh", eco="wetland", origin="outside"),
            row("R-WCON", 1, "亿m³")]
    book = prices.create_book(session, system, version="t", title="t", based_on="default")
    prices.upsert_entries(session, system, book.version, [
        {"parameter": "grid_electricity_price", "value": 0.3, "unit": "yuan/kWh",
         "price_year": 2024}])
    prices.publish_book(session, system, "t")
    run = _run(session, system, rows=rows, price_book_version="t")
    energy = session.scalar(sa.select(ValuationResult).where(
        ValuationResult.run_id == run.id, ValuationResult.indicator_code == "P-ENE"))
    assert (energy.quantity_gross, energy.quantity_outside, energy.quantity) == \
        (16.3e8, 2.1e8, 14.2e8)
    assert energy.value_current == pytest.approx(14.2e8 * 0.3)
    with pytest.raises(QuantitiesInvalid, match="exceeds the reported total"):
        _run(session, system, rows=[row("P-ENE", 1, "亿kWh", eco="wetland"),
                                    row("P-ENE", 2, "亿kWh", eco="wetland", origin="outside")])


def test_the_same_quantity_in_two_sets_is_refused(session, system):
    first, second = _set(session, system), _set(session, system)
    with pytest.raises(QuantitiesInvalid, match="more than one set"):
        runs.create_run(session, system, region_code=WANGMO, year=2024,
                        quantity_set_ids=[first.id, second.id])


def test_sets_of_another_year_or_region_are_refused(session, system):
    other_year = _set(session, system, [row("R-WCON", 1, "亿m³", year=2023)], year=2023)
    with pytest.raises(RunOptionsInvalid, match="is for 2023"):
        runs.create_run(session, system, region_code=WANGMO, year=2024,
                        quantity_set_ids=[other_year.id])
    xingyi = _set(session, system, [row("R-WCON", 1, "亿m³", region=XINGYI)], region=XINGYI)
    with pytest.raises(RunOptionsInvalid, match="outside 522326"):
        runs.create_run(session, system, region_code=WANGMO, year=2024,
                        quantity_set_ids=[xingyi.id])


def test_ratios_and_sanity_warnings(session, system):
    run = _run(session, system, context=[{
        "region_code": WANGMO, "gdp": {"value": 500, "unit": "亿元"},
        "area": {"value": 30.06, "unit": "万hm²"}, "population": {"value": 32.5, "unit": "万人"}}])
    ratio = run.ratios[WANGMO]
    assert ratio["gep_to_gdp"] == pytest.approx(run.gep_current / 500e8)
    assert ratio["gep_per_km2_yuan"] == pytest.approx(run.gep_current / 3006)
    assert ratio["gep_per_capita_yuan"] == pytest.approx(run.gep_current / 325_000)
    assert any("GEP/GDP of county 522326" in w for w in run.warnings)
    assert any("prices still to be confirmed" in w for w in run.warnings)
    with pytest.raises(RunOptionsInvalid, match="gdp needs a unit like yuan"):
        _run(session, system, context=[{"region_code": WANGMO, "gdp": {"value": 5,
                                                                        "unit": "km2"}}])
    with pytest.raises(RunOptionsInvalid, match="not 522326 or inside it"):
        _run(session, system, context=[{"region_code": XINGYI}])


def test_a_price_far_above_the_default_is_flagged(session, system):
    prices.create_book(session, system, version="odd", title="odd", based_on="default")
    prices.upsert_entries(session, system, "odd", [
        {"parameter": "reservoir_cost", "value": 61.107, "unit": "yuan/m3",
         "price_year": 2005, "index_series": "CPI-CN-1978"}])
    prices.publish_book(session, system, "odd")
    run = _run(session, system, price_book_version="odd")
    assert any("reservoir_cost" in w and "10.0x the default" in w for w in run.warnings)


def test_registrars_run_their_own_county_and_unpublished_runs_stay_private(session, system):
    run = _run(session, REGISTRAR)
    with pytest.raises(Forbidden):
        runs.create_run(session, REGISTRAR, region_code=XINGYI, year=2024,
                        quantity_set_ids=[_set(session, system, [row(
                            "R-WCON", 1, "亿m³", region=XINGYI)], region=XINGYI).id])
    with pytest.raises(Forbidden):
        runs.create_run(session, REGISTRAR, region_code=PREFECTURE, year=2024,
                        quantity_set_ids=[run.quantity_sets[0].id])
    for outsider in (None, OTHER_REGISTRAR, TRADER):
        with pytest.raises(RunNotFound):
            runs.get_run(session, outsider, run.id)
    with pytest.raises(Forbidden):
        runs.publish_run(session, REGISTRAR, run.id)
    runs.publish_run(session, system, run.id)
    assert runs.get_run(session, None, run.id).status == "published"
    listed = session.scalars(runs.list_runs(session, None)).all()
    assert [r.id for r in listed] == [run.id]



def test_listings_show_each_caller_the_runs_and_sets_it_may_read(session, system):
    wangmo = _run(session, REGISTRAR)
    xingyi_set = _set(session, system, [row("R-WCON", 1, "亿m³", region=XINGYI)], region=XINGYI)
    xingyi = runs.create_run(session, system, region_code=XINGYI, year=2024,
                             quantity_set_ids=[xingyi_set.id])
    published = _run(session, system)
    runs.publish_run(session, system, published.id)

    def listed_runs(actor):
        return {r.id for r in session.scalars(runs.list_runs(session, actor))}

    def listed_sets(actor):
        return {s.id for s in session.scalars(quantities.list_sets(session, actor))}

    everything = {wangmo.id, xingyi.id, published.id}
    assert listed_runs(system) == everything
    assert listed_runs(Principal(Role.AUDITOR, "token:auditor", token_id=6)) == everything
    assert listed_runs(REGISTRAR) == {wangmo.id, published.id}
    assert listed_runs(OTHER_REGISTRAR) == {xingyi.id, published.id}
    for outsider in (None, TRADER):
        assert listed_runs(outsider) == {published.id}
    sets = {s.id for r in (wangmo, xingyi, published) for s in r.quantity_sets}
    assert listed_sets(system) == sets
    assert listed_sets(REGISTRAR) == {s.id for r in (wangmo, published)
                                      for s in r.quantity_sets}
    assert listed_sets(OTHER_REGISTRAR) == {xingyi_set.id}
    with pytest.raises(Forbidden):
        listed_sets(TRADER)

def test_prefecture_run_and_a_county_slice_of_it(session, system):
    rows = [row("R-WCON", 9.8, "亿m³"), row("R-WCON", 5.0, "亿m³", region=XINGYI)]
    quantity_set = _set(session, system, rows, region=PREFECTURE)
    run = runs.create_run(session, system, region_code=PREFECTURE, year=2024,
                          quantity_set_ids=[quantity_set.id])
    assert set(run.summary["by_region"]) == {WANGMO, XINGYI}
    view = reporting.run_view(session, system, run.id, region_code=XINGYI)
    assert set(view.results["region_code"]) == {XINGYI}
    assert view.results["value_current"].sum() == pytest.approx(
        run.summary["by_region"][XINGYI]["current"])


def test_comparison_effects_sum_to_the_change(session, system):
    base = _run(session, system, rows=[row("R-WCON", 9.0, "亿m³", year=2023),
                                       row("C-REC", 900, "万人次", year=2023),
                                       row("P-AGR", 30, "亿元", year=2023)], year=2023)
    other = _run(session, system)
    result = runs.compare_runs(session, system, base.id, other.id)
    totals = result["totals"]
    assert totals["change"] == pytest.approx(other.gep_current - base.gep_current, rel=1e-12)
    assert totals["quantity_effect"] + totals["price_effect"] + totals["interaction"] + \
        totals["composition"] == pytest.approx(totals["change"], rel=1e-12)
    # forest water conservation: p0 = 6.1107 x CPI2023/CPI2005, Q0 = 9e8 m3, Q1 = 9.8e8 m3
    p0 = 6.1107 * 708.0 / 464.0
    forest = next(r for r in result["rows"] if r["indicator_code"] == "R-WCON"
                  and r["ecosystem_type"] == "forest")
    assert forest["quantity_effect"] == pytest.approx((9.8e8 - 9e8) * p0, rel=1e-12)
    assert forest["price_effect"] == pytest.approx(9e8 * 6.1107 * (709.4 - 708.0) / 464.0,
                                                   rel=1e-9)
    shrub = next(r for r in result["rows"] if r["indicator_code"] == "R-WCON"
                 and r["ecosystem_type"] == "shrubland")
    assert shrub["status"] == "other-only" and shrub["composition"] == shrub["value_1"]
    xingyi = _run(session, system, rows=[row("R-WCON", 1, "亿m³", region=XINGYI)],
                  region_code=XINGYI)
    with pytest.raises(RunsNotComparable):
        runs.compare_runs(session, system, base.id, xingyi.id)


def test_asset_value_is_an_npv_of_gep_and_never_added_to_it(session, system):
    run = _run(session, system)
    gep_before = run.gep_current
    result = runs.asset_value(session, system, run.id, discount_rates=[0.0, 0.05],
                              horizon_years=30)
    rows = {r["discount_rate"]: r for r in result["sensitivity"]}
    assert rows[0.0]["npv"] == pytest.approx(30 * run.gep_constant)
    assert rows[0.05]["npv"] == pytest.approx(run.gep_constant * (1 - 1.05 ** -30) / 0.05)
    assert "never added" in result["note"]
    assert runs.get_run(session, system, run.id).gep_current == gep_before
    carbon = runs.asset_value(session, system, run.id, discount_rates=[0.03, 0.08],
                              horizon_years=20, indicator_code="R-CARB")
    assert carbon["annual_flow_yuan"] == pytest.approx(run.summary["by_indicator"]["R-CARB"][
        "constant"])
    with pytest.raises(AssetValueInvalid, match="fraction"):
        runs.asset_value(session, system, run.id, discount_rates=[5, 8], horizon_years=20)


def test_a_custom_indicator_is_data_and_is_valued(session, system):
    indicators.create_custom_indicator(session, system, {
        "code": "R-NOISE", "category": "regulating", "name_zh": "降噪",
        "name_en": "Noise reduction", "quantity_units": ["m2"],
        "terms": [{"name": "value", "formula": "Q * noise_price * (1 - noise_share)"}],
        "parameters": {"noise_price": {"unit": "yuan/m2", "kind": "price"},
                       "noise_share": {"unit": "1", "kind": "coefficient"}}})
    prices.create_book(session, system, version="noise", title="n", based_on="default")
    prices.upsert_entries(session, system, "noise", [
        {"parameter": "noise_price", "value": 2.0, "unit": "yuan/m2", "price_year": 2024},
        {"parameter": "noise_share", "value": 0.25, "unit": "1"}])
    prices.publish_book(session, system, "noise")
    run = _run(session, system, rows=[row("R-NOISE", 10, "万m²", eco="urban")],
               price_book_version="noise")
    # 100,000 m2 x 2 yuan/m2 x (1 - 0.25) = 150,000 yuan
    assert run.summary["by_indicator"]["R-NOISE"]["current"] == pytest.approx(150_000.0)
    with pytest.raises(IndicatorDefinitionInvalid, match="already exists with unit"):
        indicators.create_custom_indicator(session, system, {
            "code": "R-PEST", "category": "regulating", "name_zh": "病虫害防治",
            "name_en": "Pest control", "quantity_units": ["ha"],
            "formula": "Q * noise_price",
            "parameters": {"noise_price": {"unit": "yuan/ha"}}})
    indicators.update_custom_indicator(session, system, "R-NOISE", {"active": False})
    with pytest.raises(QuantitiesInvalid, match="unknown indicator"):
        _set(session, system, [row("R-NOISE", 1, "m2", eco="urban")])
    assert runs.reproduce_run(session, system, run.id)["identical"]


def test_reported_missing_quantities_are_listed_unvalued(session, system):
    run = _run(session, system, rows=[row("R-WCON", 1, "亿m³"),
                                      row("R-FLOOD", None, None, eco="wetland")])
    missing = [u for u in run.unvalued if u["indicator_code"] == "R-FLOOD"]
    assert missing == [{**missing[0], "kind": "not-available",
                        "reason": "quantity reported as not available"}]
