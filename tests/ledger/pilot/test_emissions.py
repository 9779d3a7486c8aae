"""The emission formulas with hand-worked numbers: exact arithmetic, one rounding (half up)
of the total, the factor table's look-up by year, and every bad line reported at once."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction
from pathlib import Path

import pytest

from ledger.pilot import emissions
from ledger.pilot.services.factors import REFERENCE_FILE, parse_table

SHARED = Path("/work/shared/reference/emission_factors.csv")


@pytest.fixture(scope="module")
def table() -> emissions.FactorTable:
    return emissions.FactorTable(parse_table(REFERENCE_FILE.read_bytes()))


def test_raw_coal_at_the_reference_defaults(table):
    # 120,000 t x 20.908 GJ/t = 2,508,960 GJ; x 0.03085 tC/GJ = 77,401.416 tC;
    # x 0.99 = 76,627.40184 tC; x 44/12 = 280,967.14008 tCO2 -> 280,967
    result = emissions.compute("combustion", [{"fuel": "raw_coal", "consumption": "120000"}],
                               table, 2025)
    assert result.errors == []
    assert result.total_exact == Fraction("280967.14008")
    assert result.total_tco2 == 280_967
    line = result.lines[0].as_dict()
    assert line["tco2_exact"] == "280967.140080"
    assert line["ncv_gj_per_unit_source"] == "table:raw_coal_average_ncv:-:to-confirm"
    assert line["carbon_content_tc_per_gj_source"] == \
        "table:coal_default_carbon_content:2022:to-confirm"
    assert line["oxidation_rate_source"] == "table:coal_oxidation_rate:2021:published"


def test_measured_values_and_two_fuels_round_once_not_per_line(table):
    # coal, measured: 50,000 x 21.5 = 1,075,000 GJ; x 0.0270 = 29,025 tC; x 0.98 = 28,444.5 tC;
    # x 44/12 = 104,296.5 tCO2 exactly. Diesel at the defaults: 30 t x 42.652 = 1,279.56 GJ;
    # x 0.0202 = 25.847112 tC; x 0.98 = 25.33016976 tC; x 44/12 = 92.87728912 tCO2.
    # Sum 104,389.37728912 -> 104,389 (rounding each line first would give 104,297 + 93 =
    # 104,390).
    lines = [{"fuel": "raw_coal", "consumption": "50000", "ncv_gj_per_unit": "21.5",
              "carbon_content_tc_per_gj": "0.0270", "oxidation_rate": "0.98"},
             {"fuel": "diesel", "consumption": 30}]
    result = emissions.compute("combustion", lines, table, 2025)
    assert [r.tco2 for r in result.lines] == [Fraction("104296.5"), Fraction("92.87728912")]
    assert result.total_exact == Fraction("104389.37728912")
    assert result.total_tco2 == 104_389
    assert result.lines[0].values["oxidation_rate_source"] == "measured"


def test_half_up_on_an_exact_half(table):
    # the measured coal line alone is 104,296.5 tCO2: half up gives 104,297
    line = {"fuel": "raw_coal", "consumption": "50000", "ncv_gj_per_unit": "21.5",
            "carbon_content_tc_per_gj": "0.0270", "oxidation_rate": "0.98"}
    assert emissions.compute("combustion", [line], table, 2025).total_tco2 == 104_297
    assert emissions.round_half_up(Fraction(5, 2)) == 3
    assert emissions.round_half_up(Fraction(24999, 10000)) == 2
    # exact at any size: no decimal context to run out of digits
    assert emissions.round_half_up(Fraction(10**40 * 2 + 1, 2)) == 10**40 + 1


def test_floats_are_read_as_written():
    # 0.1 + 0.2 in binary floating point is 0.30000000000000004; read as written it is 0.3
    assert emissions.parse_decimal(0.1) + emissions.parse_decimal(0.2) == D("0.3")
    assert emissions.parse_decimal("1,200,000.5") == D("1200000.5")
    for bad in ("NaN", "inf", "abc", True, None, [1], "1e-999999999", "1e999999999",
                "1" * 31):
        assert emissions.parse_decimal(bad) is None
    assert emissions.parse_decimal("0.000000000000000000000000000001") == D("1e-30")


def test_generation_uses_the_latest_factor_not_after_the_year(table):
    # 1,000,000 MWh x 0.8273 tCO2/MWh (fossil_power 2023, the latest for 2025) = 827,300
    result = emissions.compute("generation", [
        {"generation_mwh": "1000000", "factor": "fossil_power"}], table, 2025)
    assert result.total_tco2 == 827_300
    assert result.lines[0].values["factor_year"] == 2023
    # for 2022 the 2022 factor: 1,000,000 x 0.8325 = 832,500
    assert emissions.compute("generation", [
        {"generation_mwh": "1000000", "factor": "fossil_power"}], table, 2022).total_tco2 \
        == 832_500
    # 2020 is older than every fossil_power row: refused, not guessed
    early = emissions.compute("generation", [
        {"generation_mwh": "10", "factor": "fossil_power"}], table, 2020)
    assert early.errors and early.total_tco2 == 0


def test_every_bad_line_is_reported(table):
    lines = [{"fuel": "lignite", "consumption": "10"},
             {"fuel": "raw_coal", "consumption": "-5"},
             {"fuel": "raw_coal"},
             {"fuel": "raw_coal", "consumption": "1", "oxidation_rate": "99"},
             {"fuel": "raw_coal", "consumption": "abc"},
             {"fuel": "raw_coal", "consumption": "100"}]
    result = emissions.compute("combustion", lines, table, 2025, numbers=[2, 3, 4, 5, 6, 7])
    found = {(e.line, e.field): e.message for e in result.errors}
    assert "unknown fuel 'lignite'" in found[(2, "fuel")]
    assert found[(3, "consumption")] == "must not be negative"
    assert found[(4, "consumption")] == "required"
    assert found[(5, "oxidation_rate")] == "at most 1"
    assert "not a number" in found[(6, "consumption")]
    assert result.lines == [] and result.total_tco2 == 0  # nothing computed at all
    huge = emissions.compute("combustion", [{"fuel": "raw_coal", "consumption": "1e12"}],
                             table, 2025)
    assert "more than 1,000,000,000 tCO2" in huge.errors[0].message
    wrong_unit = emissions.compute("generation", [
        {"generation_mwh": "5", "factor": "coal_oxidation_rate"}], table, 2025)
    assert "not tCO2/MWh" in wrong_unit.errors[0].message


def test_a_table_without_a_fuel_default_needs_the_measured_value():
    bare = emissions.FactorTable([emissions.Factor("coal_oxidation_rate", 2021, D("0.99"),
                                                   "fraction", "published")])
    missing = emissions.compute("combustion", [{"fuel": "raw_coal", "consumption": "1"}],
                                bare, 2025)
    assert {e.field for e in missing.errors} == {"ncv_gj_per_unit", "carbon_content_tc_per_gj"}
    measured = emissions.compute("combustion", [{
        "fuel": "raw_coal", "consumption": "3", "ncv_gj_per_unit": "20",
        "carbon_content_tc_per_gj": "0.03"}], bare, 2025)
    # 3 x 20 x 0.03 x 0.99 x 44/12 = 1.782 x 11/3 = 6.534
    assert measured.total_exact == Fraction("6.534") and measured.total_tco2 == 7


def test_obligation_and_shortfall_arithmetic():
    # 280,967 t x 50 bp = 1,404.835 -> 1,405; 234,139 x 50 bp = 1,170.695 -> 1,171
    assert emissions.obligation_t(280_967, 50) == 1_405
    assert emissions.obligation_t(234_139, 50) == 1_171
    assert emissions.obligation_t(1_000, 5) == 1  # 0.5 t: half up
    assert emissions.obligation_t(999, 5) == 0  # 0.4995 t
    assert emissions.obligation_t(7, 10_000) == 7
    where = emissions.position(1_405, 400, 600, 5_000)
    assert (where.shortfall_t, where.paid_fen, where.shortfall_fen) == (405, 3_000_000, 2_025_000)
    assert emissions.position(1_405, 400, 1_005, 5_000).shortfall_t == 0
    with pytest.raises(ValueError):
        emissions.position(10, 6, 5, 100)  # beyond the obligation
    with pytest.raises(ValueError):
        emissions.obligation_t(10, 10_001)


def test_the_reference_table_carries_the_shared_file_unchanged():
    shared = {(f.factor, f.year): f for f in parse_table(SHARED.read_bytes())} \
        if SHARED.exists() else {}
    ours = {(f.factor, f.year): f for f in parse_table(REFERENCE_FILE.read_bytes())}
    for key, factor in shared.items():
        assert ours[key] == factor
    # the fuels' defaults we added are all marked to-confirm
    added = [f for key, f in ours.items() if key not in shared]
    assert all(f.status == "to-confirm" for f in added)
    assert {f.factor for f in added} >= {"natural_gas_ncv", "diesel_ncv"} or not shared
