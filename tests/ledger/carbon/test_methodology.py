"""Quantification with hand-worked numbers, and the published registry cases
(../shared/reference/published_cases.md) as tests."""

from __future__ import annotations

import dataclasses
import math

import pytest

from ledger.carbon import methodology as m
from ledger.carbon import serials

SPECIES = m.builtin_species()

#: species -> (density x BEF, x (1 + R), x CF, x 44/12 = tCO2e per m3), worked by hand from
#: carbon_species.csv and rounded to 6 decimals
HAND_WORKED = {
    # 0.307 x 1.634 = 0.501638; x 1.246 = 0.625041; x 0.520 = 0.325021; x 44/12 = 1.191745
    "cunninghamia": (0.501638, 0.625041, 0.325021, 1.191745),
    # 0.380 x 1.472 = 0.559360; x 1.187 = 0.663960; x 0.460 = 0.305422; x 44/12 = 1.119880
    "pinus_massoniana": (0.559360, 0.663960, 0.305422, 1.119880),
    # 0.578 x 1.263 = 0.730014; x 1.221 = 0.891347; x 0.525 = 0.467957; x 44/12 = 1.715843
    "eucalyptus": (0.730014, 0.891347, 0.467957, 1.715843),
    # 0.598 x 1.674 = 1.001052; x 1.261 = 1.262327; x 0.4834 = 0.610209; x 44/12 = 2.237432
    "hard_broadleaf": (1.001052, 1.262327, 0.610209, 2.237432),
    # 0.443 x 1.586 = 0.702598; x 1.289 = 0.905649; x 0.4956 = 0.448840; x 44/12 = 1.645745
    "soft_broadleaf": (0.702598, 0.905649, 0.448840, 1.645745),
}


def test_every_reference_species_is_worked_by_hand():
    assert set(SPECIES) == set(HAND_WORKED)


@pytest.mark.parametrize("code", sorted(HAND_WORKED))
def test_stock_per_species_matches_the_hand_worked_chain(code):
    p = SPECIES[code]
    biomass, with_roots, carbon, co2 = HAND_WORKED[code]
    assert p.wood_density_t_per_m3 * p.biomass_expansion_factor == pytest.approx(biomass,
                                                                                 abs=1e-6)
    assert biomass * (1 + p.root_shoot_ratio) == pytest.approx(with_roots, abs=2e-6)
    assert with_roots * p.carbon_fraction == pytest.approx(carbon, abs=2e-6)
    assert p.tco2e_per_m3 == pytest.approx(co2, abs=1e-6)
    assert m.stock_tco2e(100.0, p) == pytest.approx(100 * co2, abs=1e-4)
    # stock difference between two monitoring dates: 1,000 m3 -> 1,250 m3
    assert m.stock_change_tco2e(1000.0, 1250.0, p) == pytest.approx(250 * co2, abs=1e-3)


def test_chinese_fir_stand_over_a_monitoring_period():
    # 50 ha of Chinese fir growing from 3,000 to 3,900 m3: 900 m3 x 1.191745 = 1,072.57 tCO2e;
    # baseline 20 t, leakage 2 % of the actual (21.45 t): net 1,031.12 -> 1,031 credits
    fir = SPECIES["cunninghamia"]
    actual = m.stock_change_tco2e(3000.0, 3900.0, fir)
    assert actual == pytest.approx(1072.5703, abs=1e-3)
    net = m.net_removals_tco2e(actual, baseline_tco2e=20.0, leakage_tco2e=0.02 * actual)
    assert net == pytest.approx(1072.5703 - 20 - 21.4514, abs=1e-3)
    assert m.whole_tonnes(net) == 1031


def test_mixed_stand_splits_volume_by_composition():
    changes = m.parcel_removals(7, 1000.0, 1200.0, {"cunninghamia": 0.6,
                                                    "pinus_massoniana": 0.4}, SPECIES)
    by = {c.species_code: c for c in changes}
    assert by["cunninghamia"].volume_end_m3 == pytest.approx(720.0)
    assert by["cunninghamia"].removals_tco2e == pytest.approx(120 * 1.191745, abs=1e-3)
    assert by["pinus_massoniana"].removals_tco2e == pytest.approx(80 * 1.119880, abs=1e-3)


def test_a_stand_that_lost_volume_has_negative_removals_and_issues_nothing():
    loss = m.stock_change_tco2e(1000.0, 900.0, SPECIES["eucalyptus"])
    assert loss == pytest.approx(-171.5843, abs=1e-3)
    assert m.whole_tonnes(loss) == 0
    assert m.whole_tonnes(float("nan")) == 0


def test_whole_tonnes_rounds_down_but_absorbs_float_noise():
    assert m.whole_tonnes(999.999) == 999
    assert m.whole_tonnes(0.1 + 0.2 + 999.7) == 1000  # 999.9999999999999 in float64
    assert m.whole_tonnes(1000.0) == 1000


def test_plots_scale_up_to_the_parcel_by_mean_volume_per_hectare():
    plots = [m.Plot("P1", 1, "cunninghamia", 0.06, 9.0, 10.8),
             m.Plot("P2", 1, "cunninghamia", 0.04, 5.0, 6.2),
             m.Plot("P2", 1, "pinus_massoniana", 0.04, 1.0, 1.4)]
    # parcel of 20 ha, plots cover 0.10 ha: factor 200
    out = m.expand_plots(plots, {1: 20.0})
    assert out == [(1, "cunninghamia", pytest.approx(2800.0), pytest.approx(3400.0)),
                   (1, "pinus_massoniana", pytest.approx(200.0), pytest.approx(280.0))]


def test_composition_errors_name_unknown_species_and_bad_sums():
    assert m.composition_errors({"cunninghamia": 1.0}, SPECIES) == []
    problems = m.composition_errors({"oak": 0.5, "cunninghamia": 0.2}, SPECIES)
    assert problems[0]["field"] == "species_composition.oak"
    assert m.composition_errors({"cunninghamia": 0.7}, SPECIES)[0]["message"].startswith(
        "the shares sum to 0.7")
    assert m.composition_errors({}, SPECIES)


def test_parameter_errors_check_every_factor():
    good = dataclasses.asdict(SPECIES["cunninghamia"])
    assert m.parameter_errors(good) == []
    bad = {**good, "carbon_fraction": 52.0, "root_shoot_ratio": float("inf"),
           "species_code": "杉木"}
    fields = {e["field"] for e in m.parameter_errors(bad)}
    assert fields == {"carbon_fraction", "root_shoot_ratio", "species_code"}


# --- single-tree route (published case 1) ---------------------------------------------------


@pytest.mark.parametrize(("area_mu", "cap"), [
    (2.0, 450), (3.5, 450),  # at most 2 mu count, at most 450 trees
    (1.0, 225), (0.5, 112),  # pro rata below 2 mu (112.5 trees: a fraction does not count)
    (1.6, 360), (0.0, 0),
])
def test_household_tree_cap(area_mu, cap):
    assert m.household_tree_cap(area_mu) == cap


def test_tree_count_over_the_cap_is_refused():
    assert m.tree_cap_error(450, 2.0) is None
    assert "exceed the household's cap of 450" in m.tree_cap_error(451, 2.0)
    assert "cap of 225" in m.tree_cap_error(226, 1.0)


def test_wangmo_village_single_tree_totals():
    # Dalang: 128 households x 450 trees x 3 yuan = 172,800 yuan a year
    dalang_trees = 128 * m.household_tree_cap(2.0)
    assert dalang_trees == 57_600
    assert m.single_tree_payment_fen(dalang_trees) == 172_800_00
    # Xinhe: 137 x 450 x 3 = 184,950 yuan a year
    assert m.single_tree_payment_fen(137 * m.household_tree_cap(2.0)) == 184_950_00
    # a provincial purchase event: 140,382 trees x 3 yuan = 421,146 yuan
    assert m.single_tree_payment_fen(140_382) == 421_146_00
    # the five-year term of a full household
    assert m.single_tree_payment_fen(450, years=m.WANGMO_RULES.term_years) == 6_750_00


def test_single_tree_removals_use_the_per_tree_figure_as_data():
    fir = dataclasses.replace(SPECIES["cunninghamia"], tree_tco2e_per_year=0.0183)
    removals = m.single_tree_removals_tco2e({"cunninghamia": 57_600}, 1.0,
                                            {"cunninghamia": fir})
    assert removals["cunninghamia"] == pytest.approx(1054.08)
    with pytest.raises(ValueError, match="no per-tree figure"):
        m.single_tree_removals_tco2e({"pinus_massoniana": 1}, 1.0, SPECIES)


# --- issuance arithmetic (published cases 5, 6) ---------------------------------------------


def test_gold_standard_flat_buffer_1000_gives_800_and_200():
    split = m.split_issuance(1000, buffer_share_bp=2000)
    assert (split.owner_t, split.buffer_t) == (800, 200)


def test_undp_issuance_split_example():
    split = m.split_issuance(1000, buffer_share_bp=0, share_of_proceeds_bp=500,
                             overall_mitigation_bp=200)
    assert (split.owner_t, split.share_of_proceeds_t, split.overall_mitigation_t) == (930, 50, 20)


@pytest.mark.parametrize("quantity", [0, 1, 4, 5, 999, 1001, 12_345, 10**12 + 7])
def test_buffer_rounds_down_and_the_remainder_goes_to_the_owner(quantity):
    split = m.split_issuance(quantity, buffer_share_bp=2000, share_of_proceeds_bp=500,
                             overall_mitigation_bp=200)
    assert split.buffer_t == quantity * 20 // 100
    assert split.buffer_t <= quantity * 0.2 + 1e-6
    assert split.buffer_t + split.share_of_proceeds_t + split.overall_mitigation_t \
        + split.owner_t == quantity
    assert all(isinstance(v, int) for v in dataclasses.astuple(split))


def test_split_refuses_shares_over_the_whole():
    with pytest.raises(ValueError):
        m.split_issuance(100, buffer_share_bp=9000, share_of_proceeds_bp=2000)


def test_methodologies_state_their_buffer_and_crediting_period():
    assert m.METHODOLOGIES["afforestation"].crediting_years == (20, 40)
    assert m.METHODOLOGIES["afforestation"].buffer_share_bp == 2000
    assert math.isclose(m.CO2_PER_CARBON, 44 / 12)


# --- serial blocks (published case 7) ------------------------------------------------------


def test_serial_blocks_are_inclusive():
    block = serials.parse_block("QXN-522326-WM-AR-001-2023-000001-000100")
    assert block.quantity_t == 100
    assert (block.county_code, block.project_code, block.vintage_year) == \
        ("522326", "WM-AR-001", 2023)
    assert str(block) == "QXN-522326-WM-AR-001-2023-000001-000100"
    assert serials.size((5, 5)) == 1


@pytest.mark.parametrize("text", [
    "QXN-522326-WM-2023-000100-000001",  # reversed
    "QXN-522326-WM-2023-000000-000010",  # zero
    "QXN-52232-WM-2023-000001-000010",  # county code
    "VCS-522326-WM-2023-000001-000010",  # programme
    "QXN-522326-WM-2023-1-10",  # too few digits
    "QXN-522326--2023-000001-000010",  # no project
    "", None, 12,
])
def test_malformed_serials_are_refused(text):
    with pytest.raises(serials.SerialError):
        serials.parse_block(text)


def test_take_splits_the_last_block_and_merge_joins_neighbours():
    taken, left = serials.take([(1, 10), (21, 30)], 15)
    assert taken == [(1, 10), (21, 25)] and left == [(26, 30)]
    assert serials.merge([(26, 30), (11, 25), (1, 10)]) == [(1, 30)]
    assert serials.merge([(26, 30), (1, 10)]) == [(1, 10), (26, 30)]
    with pytest.raises(ValueError):
        serials.take([(1, 10)], 11)


def test_take_exact_needs_the_serials_inside_one_held_block():
    taken, left = serials.take_exact([(1, 100), (201, 300)], (50, 60))
    assert taken == [(50, 60)] and left == [(1, 49), (61, 100), (201, 300)]
    with pytest.raises(ValueError):
        serials.take_exact([(1, 100), (201, 300)], (90, 210))


def test_partition_problems_find_overlaps_and_gaps():
    assert serials.partition_problems((1, 100), {"a": [(1, 60)], "b": [(61, 100)]}) == []
    assert serials.partition_problems((1, 100), {"a": [(1, 60)], "b": [(50, 100)]})
    assert "61-70" in serials.partition_problems((1, 100), {"a": [(1, 60)],
                                                           "b": [(71, 100)]})[0]
    assert serials.partition_problems((1, 100), {"a": [(1, 101)]})
