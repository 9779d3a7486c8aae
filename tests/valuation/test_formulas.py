"""Pure valuation arithmetic, checked against published and hand-worked numbers."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from valuation import formulas, registry
from valuation.formulas import PriceEntry, PriceProblem, RegionContext

#: fixed-base CPI (1978 = 100) as stated in valuation/reference/price_indices.csv (to-confirm)
CASE8_CPI = {"CPI": {2007: 493.6, 2008: 522.7, 2014: 606.7}}
SPECS = registry.builtin_parameters()


def reference_cpi() -> dict[int, float]:
    text = resources.files("valuation").joinpath("reference/price_indices.csv").read_text()
    return {int(r["year"]): float(r["value"]) for r in csv.DictReader(text.splitlines())
            if r["series"] == "CPI-CN-1978"}


# --- published case 8 (Gaotianyan 2014) ------------------------------------------------------


def test_published_case_8_carbon_price_379_87_yuan_per_tco2_at_2014_prices():
    entry = PriceEntry("carbon_price", 1200.0, "yuan/tC", 2008, "CPI")
    adjusted = formulas.adjust_price(entry, SPECS["carbon_price"], "tCO2", year=2014,
                                     base_year=2014, indices=CASE8_CPI)
    assert round(adjusted.index_factor, 4) == 1.1607  # 606.7 / 522.7
    assert adjusted.unit_factor == pytest.approx(12 / 44)
    assert round(adjusted.value_current, 2) == 379.87  # 1200 x 12/44 x 1.1607
    assert "44/12" in adjusted.unit_note


def test_published_case_8_oxygen_price_1160_70():
    entry = PriceEntry("oxygen_price", 1000.0, "yuan/t", 2008, "CPI")
    adjusted = formulas.adjust_price(entry, SPECS["oxygen_price"], "t", year=2014,
                                     base_year=2014, indices=CASE8_CPI)
    assert round(adjusted.value_current, 2) == 1160.70


def test_case_8_discrepancy_2007_base_would_give_1_2291_not_the_published_figure():
    """The case text names CPI 2007 = 493.60, but 606.70 / 493.60 = 1.2291: the published
    1.1607 is 606.70 / 522.70, i.e. CPI 2008 (the year LY/T 1721-2008 was issued)."""
    entry = PriceEntry("carbon_price", 1200.0, "yuan/tC", 2007, "CPI")
    adjusted = formulas.adjust_price(entry, SPECS["carbon_price"], "tCO2", year=2014,
                                     base_year=2014, indices=CASE8_CPI)
    assert round(adjusted.index_factor, 4) == 1.2291
    assert round(adjusted.value_current, 2) == 402.26
    assert round(adjusted.value_current, 2) != 379.87


def test_case_8_reproduces_with_the_shipped_index_series_and_default_book():
    cpi = reference_cpi()
    assert (cpi[2007], cpi[2008], cpi[2014]) == (493.6, 522.7, 606.7)
    book = {r["parameter"]: r for r in csv.DictReader(resources.files("valuation").joinpath(
        "reference/default_price_book.csv").read_text().splitlines())}
    carbon = book["carbon_price"]
    entry = PriceEntry("carbon_price", float(carbon["value"]), carbon["unit"],
                       int(carbon["price_year"]), carbon["index_series"])
    adjusted = formulas.adjust_price(entry, SPECS["carbon_price"], "tCO2", year=2014,
                                     base_year=2014, indices={"CPI-CN-1978": cpi})
    assert round(adjusted.value_current, 2) == 379.87


# --- price adjustment --------------------------------------------------------------------------


def test_constant_price_at_the_base_year_equals_the_current_price():
    entry = PriceEntry("reservoir_cost", 6.1107, "yuan/m3", 2005, "CPI")
    indices = {"CPI": {2005: 464.0, 2020: 686.5, 2024: 709.4}}
    same = formulas.adjust_price(entry, SPECS["reservoir_cost"], "m3", year=2024,
                                 base_year=2024, indices=indices)
    assert same.value_constant == same.value_current
    other = formulas.adjust_price(entry, SPECS["reservoir_cost"], "m3", year=2024,
                                  base_year=2020, indices=indices)
    assert other.value_current == pytest.approx(6.1107 * 709.4 / 464.0)
    assert other.value_constant == pytest.approx(6.1107 * 686.5 / 464.0)


def test_a_year_without_index_is_a_problem_never_a_factor_of_one():
    entry = PriceEntry("reservoir_cost", 6.1107, "yuan/m3", 2005, "CPI")
    with pytest.raises(PriceProblem, match="no value for 2025"):
        formulas.adjust_price(entry, SPECS["reservoir_cost"], "m3", year=2025, base_year=2025,
                              indices={"CPI": {2005: 464.0}})
    with pytest.raises(PriceProblem, match="unknown"):
        formulas.adjust_price(entry, SPECS["reservoir_cost"], "m3", year=2024, base_year=2024,
                              indices={})


def test_price_units_convert_exactly_and_wrong_dimensions_are_problems():
    per_kg = PriceEntry("abatement_cost.SO2", 1.2, "元/kg", 2024, None)
    adjusted = formulas.adjust_price(per_kg, SPECS["abatement_cost[]"], "t", year=2024,
                                     base_year=2024, indices={})
    assert adjusted.value_current == pytest.approx(1200.0)
    per_wan_m3 = PriceEntry("reservoir_cost", 61107, "元/万m3", 2024, None)
    assert formulas.adjust_price(per_wan_m3, SPECS["reservoir_cost"], "m3", year=2024,
                                 base_year=2024, indices={}).value_current == \
        pytest.approx(6.1107)
    wrong = PriceEntry("reservoir_cost", 6.1, "yuan/t", 2005, None)
    with pytest.raises(PriceProblem, match="cannot be converted"):
        formulas.adjust_price(wrong, SPECS["reservoir_cost"], "m3", year=2024, base_year=2024,
                              indices={})


def test_coefficients_are_never_index_adjusted():
    density = PriceEntry("soil_bulk_density", 1.3, "t/m3", None, None)
    adjusted = formulas.adjust_price(density, SPECS["soil_bulk_density"], "t", year=2024,
                                     base_year=2010, indices={})
    assert adjusted.value_current == adjusted.value_constant == 1.3


# --- territorial principle ---------------------------------------------------------------------


def _territorial_rows(rows):
    return pd.DataFrame(rows, columns=[*formulas.TERRITORIAL_KEY, "quantity", "origin"])


def test_quantities_from_outside_the_region_are_subtracted():
    rows = _territorial_rows([
        ("522326", "P-ENE", "", "wetland", "kWh", False, 16.3e8, "local"),
        ("522326", "P-ENE", "", "wetland", "kWh", False, 2.1e8, "outside"),
        ("522326", "R-WCON", "", "forest", "m3", False, 5e8, "local"),
    ])
    net, problems = formulas.apply_territorial_principle(rows)
    assert problems == []
    energy = net[net["indicator_code"] == "P-ENE"].iloc[0]
    assert (energy["quantity_gross"], energy["quantity_outside"], energy["quantity"]) == \
        (16.3e8, 2.1e8, 16.3e8 - 2.1e8)
    water = net[net["indicator_code"] == "R-WCON"].iloc[0]
    assert (water["quantity_outside"], water["quantity"]) == (0.0, 5e8)


def test_outside_quantities_without_or_above_a_total_are_problems():
    rows = _territorial_rows([
        ("522326", "P-ENE", "", "wetland", "kWh", False, 1.0, "local"),
        ("522326", "P-ENE", "", "wetland", "kWh", False, 2.0, "outside"),
        ("522326", "P-WAT", "", "wetland", "m3", False, 5.0, "outside"),
    ])
    _net, problems = formulas.apply_territorial_principle(rows)
    messages = " | ".join(p["message"] for p in problems)
    assert "exceeds the reported total" in messages
    assert "no reported total" in messages


# --- valuation -------------------------------------------------------------------------------

INDICES = {"CPI": {2003: 438.7, 2005: 464.0, 2020: 686.5, 2024: 709.4}}
PRICES = {
    "reservoir_cost": PriceEntry("reservoir_cost", 6.1107, "yuan/m3", 2005, "CPI"),
    "sediment_share": PriceEntry("sediment_share", 0.24, "1"),
    "soil_bulk_density": PriceEntry("soil_bulk_density", 1.2, "t/m3"),
    "dredging_cost": PriceEntry("dredging_cost", 12.6, "yuan/m3", 2024, None),
    "abatement_cost.SO2": PriceEntry("abatement_cost.SO2", 1200, "yuan/t", 2003, "CPI"),
}


def _quantities(rows):
    frame = pd.DataFrame(rows, columns=["region_code", "indicator_code", "item",
                                        "ecosystem_type", "quantity", "quantity_unit", "money"])
    frame["quantity_gross"] = frame["quantity"]
    frame["quantity_outside"] = 0.0
    return frame


def _value(rows, prices=PRICES, year=2024, base_year=2020):
    return formulas.value_quantities(_quantities(rows), registry.builtin_indicators(), prices,
                                     INDICES, year=year, base_year=base_year,
                                     deflator_series="CPI")


def test_value_is_quantity_times_adjusted_price_hand_worked():
    valuation = _value([
        ("522326", "R-WCON", "", "forest", 1e8, "m3", False),
        ("522326", "R-AIR", "SO2", "forest", 2000.0, "t", False),
    ])
    rows = valuation.results.set_index("indicator_code")
    # 1e8 m3 x 6.1107 yuan/m3 x 709.4/464.0 = 934,252,280.17 yuan
    assert rows.loc["R-WCON", "value_current"] == pytest.approx(934_252_280.17, abs=0.01)
    assert rows.loc["R-WCON", "adjustment_factor"] == pytest.approx(709.4 / 464.0)
    assert rows.loc["R-WCON", "unit_price"] == pytest.approx(9.342522801724, rel=1e-12)
    assert rows.loc["R-WCON", "value_constant"] == pytest.approx(1e8 * 6.1107 * 686.5 / 464.0)
    # 2000 t x 1200 yuan/t x 709.4/438.7 = 3,880,920.90 yuan
    assert rows.loc["R-AIR", "value_current"] == pytest.approx(3_880_920.90, abs=0.01)
    assert valuation.prices["reservoir_cost@yuan/m3"]["index_factor"] == \
        pytest.approx(709.4 / 464.0)


def test_missing_parameter_leaves_the_term_unvalued_and_the_rest_proceeds():
    valuation = _value([("522326", "R-SOIL", "", "forest", 1000.0, "t", False),
                        ("522326", "R-CLIM", "", "forest", 5e6, "kWh", False)])
    soil = valuation.results.set_index("indicator_code").loc["R-SOIL"]
    # sediment term only: 1000 t x 0.24 / 1.2 t/m3 x 12.6 yuan/m3 = 2520 yuan
    assert soil["value_current"] == pytest.approx(2520.0)
    assert not soil["complete"]
    assert soil["terms"] == ["sediment"]
    reasons = {(u["indicator_code"], u["term"]): u["reason"] for u in valuation.unvalued}
    assert "nitrogen_price" in reasons[("R-SOIL", "nitrogen")] or \
        "soil_n_content" in reasons[("R-SOIL", "nitrogen")]
    assert "electricity_price" in reasons[("R-CLIM", None)]
    assert "R-CLIM" not in set(valuation.results["indicator_code"])


def test_a_zero_in_a_denominator_is_unvalued_not_infinite():
    prices = {**PRICES, "soil_bulk_density": PriceEntry("soil_bulk_density", 0.0, "t/m3")}
    valuation = _value([("522326", "R-SOIL", "", "forest", 1000.0, "t", False)], prices)
    assert valuation.results.empty
    assert any("non-finite" in u["reason"] for u in valuation.unvalued)


def test_values_reported_in_yuan_are_their_own_value_and_deflated_for_constant_prices():
    valuation = _value([("522326", "P-AGR", "", "farmland", 3.55e9, "yuan", True)])
    row = valuation.results.iloc[0]
    assert row["value_current"] == 3.55e9
    assert row["value_constant"] == pytest.approx(3.55e9 * 686.5 / 709.4)


def test_gep_equals_sum_of_categories_and_of_ecosystem_types():
    valuation = _value([
        ("522326", "R-WCON", "", "forest", 1e8, "m3", False),
        ("522326", "R-WCON", "", "shrubland", 3e7, "m3", False),
        ("522326", "R-AIR", "SO2", "forest", 2000.0, "t", False),
        ("522326", "P-AGR", "", "farmland", 3.55e9, "yuan", True),
    ])
    summary = formulas.summarize(valuation.results)
    gep = summary["gep"]["current"]
    assert gep == pytest.approx(sum(v["current"] for v in summary["by_category"].values()))
    assert gep == pytest.approx(sum(v["current"] for v in summary["by_ecosystem_type"].values()))
    assert summary["gep"]["constant"] == pytest.approx(
        sum(v["constant"] for v in summary["by_category"].values()))


# --- comparison --------------------------------------------------------------------------------


def _results(rows):
    return pd.DataFrame(rows, columns=["indicator_code", "item", "region_code",
                                       "ecosystem_type", "quantity_unit", "category",
                                       "quantity", "value_current", "value_constant"])


def test_change_is_split_into_quantity_price_interaction_and_composition_hand_worked():
    base = _results([
        ("R-WCON", "", "522326", "forest", "m3", "regulating", 100.0, 200.0, 200.0),
        ("C-REC", "", "522326", "forest", "visit", "cultural", 10.0, 30.0, 30.0),
    ])
    other = _results([
        ("R-WCON", "", "522326", "forest", "m3", "regulating", 120.0, 300.0, 300.0),
        ("R-CARB", "", "522326", "forest", "tCO2", "regulating", 5.0, 50.0, 50.0),
    ])
    rows = formulas.decompose_change(base, other).set_index("indicator_code")
    water = rows.loc["R-WCON"]
    # p0 = 2, p1 = 2.5: quantity (120-100) x 2 = 40; price 0.5 x 100 = 50; interaction 20 x 0.5
    assert (water["quantity_effect"], water["price_effect"], water["interaction"]) == \
        pytest.approx((40.0, 50.0, 10.0))
    assert water["change"] == 100.0
    assert rows.loc["R-CARB", "composition"] == 50.0
    assert rows.loc["C-REC", "composition"] == -30.0
    parts = rows[["quantity_effect", "price_effect", "interaction", "composition"]].sum().sum()
    assert parts == rows["change"].sum() == (300 + 50) - (200 + 30)


def test_decomposition_parts_sum_to_the_change_for_awkward_floats():
    rng = np.random.default_rng(7)
    n = 50
    keys = [("R-WCON", "", "522326", f"e{i}", "m3", "regulating") for i in range(n)]
    q0, q1 = rng.uniform(1e6, 1e9, n), rng.uniform(1e6, 1e9, n)
    p0, p1 = rng.uniform(0.1, 20, n), rng.uniform(0.1, 20, n)
    base = _results([(*k, a, a * p, a * p) for k, a, p in zip(keys, q0, p0)])
    other = _results([(*k, a, a * p, a * p) for k, a, p in zip(keys, q1, p1)])
    rows = formulas.decompose_change(base, other)
    parts = rows["quantity_effect"] + rows["price_effect"] + rows["interaction"] + rows[
        "composition"]
    np.testing.assert_allclose(parts, rows["change"], rtol=1e-13, atol=1e-6)
    order = rows["ecosystem_type"].str[1:].astype(int).to_numpy()
    exact = ((q1 - q0) * p0 + (p1 - p0) * q0 + (q1 - q0) * (p1 - p0))[order]
    np.testing.assert_allclose(rows["quantity_effect"] + rows["price_effect"]
                               + rows["interaction"], exact, rtol=1e-9)


# --- ratios and sanity warnings ------------------------------------------------------------------


def _summary(provisioning, regulating, cultural):
    results = _results([
        ("P-AGR", "", "522326", "farmland", "yuan", "provisioning", 1.0, provisioning, 0.0),
        ("R-WCON", "", "522326", "forest", "m3", "regulating", 1.0, regulating, 0.0),
        ("C-REC", "", "522326", "forest", "visit", "cultural", 1.0, cultural, 0.0)])
    return formulas.summarize(results)


@pytest.mark.parametrize(("gdp", "level", "warned"), [
    (100e8, "county", True),    # GEP/GDP 0.5
    (20e8, "county", False),    # 2.5
    (2e8, "county", True),      # 25
    (100e8, "prefecture", False),
])
def test_gep_to_gdp_outside_1_to_20_warns_for_a_county(gdp, level, warned):
    summary = _summary(10e8, 30e8, 10e8)
    contexts = [RegionContext("522326", level, gdp, 3006.0, 325_000.0)]
    ratios = formulas.ratios(summary, contexts, "522326")
    assert ratios["522326"]["gep_to_gdp"] == pytest.approx(50e8 / gdp)
    assert ratios["522326"]["gep_per_km2_yuan"] == pytest.approx(50e8 / 3006)
    assert ratios["522326"]["gep_per_capita_yuan"] == pytest.approx(50e8 / 325_000)
    warnings = formulas.sanity_warnings(summary, ratios, contexts, "522326", {}, {})
    assert any("GEP/GDP" in w for w in warnings) is warned


@pytest.mark.parametrize(("regulating", "warned"), [(10e8, True), (30e8, False), (980e8, True)])
def test_regulating_share_outside_40_to_95_percent_warns(regulating, warned):
    summary = _summary(10e8, regulating, 10e8)
    warnings = formulas.sanity_warnings(summary, {}, [], "522326", {}, {})
    assert any("regulating services" in w for w in warnings) is warned


def test_a_unit_price_more_than_five_times_the_default_warns():
    used = {"reservoir_cost@yuan/m3": {"parameter": "reservoir_cost", "unit": "yuan/m3",
                                       "value_current": 60.0}}
    warnings = formulas.sanity_warnings(_summary(1, 2, 1), {}, [], "x", used,
                                        {"reservoir_cost@yuan/m3": 9.34})
    assert any("6.4x the default" in w for w in warnings)
    assert not any("default" in w for w in formulas.sanity_warnings(
        _summary(1, 2, 1), {}, [], "x", used, {"reservoir_cost@yuan/m3": 20.0}))


def test_flood_storage_hand_worked():
    # lake 2e7 m3 + 0.35 x reservoir 1e8 m3 + 0.3 m x marsh 5e6 m2 = 2e7 + 3.5e7 + 1.5e6
    assert formulas.flood_storage(2e7, 1e8, 5e6) == pytest.approx(56.5e6)
