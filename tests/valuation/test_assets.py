"""Asset values: NPV of expected flows (numpy-financial) and product-level reference prices."""

from __future__ import annotations

import pytest

from valuation import assets
from valuation.assets import AssetInputError


def test_npv_with_rate_zero_equals_the_plain_sum():
    assert assets.npv(100.0, 0.0, 30) == pytest.approx(3000.0)
    flows = assets.flows(100.0, 10, 0.02)
    assert assets.npv(100.0, 0.0, 10, growth=0.02) == pytest.approx(flows.sum())


def test_npv_hand_worked_annuity_and_growth():
    # 100 a year for 3 years at 5 %: 100/1.05 + 100/1.05^2 + 100/1.05^3 = 272.3248
    assert assets.npv(100.0, 0.05, 3) == pytest.approx(272.324803, abs=1e-6)
    # closed form of the ordinary annuity: F (1 - (1 + r)^-T) / r
    assert assets.npv(1e8, 0.04, 30) == pytest.approx(1e8 * (1 - 1.04 ** -30) / 0.04)
    # growing flows 100, 110, 121 at 10 %: each is worth 100/1.1 -> 3 x 90.909
    assert assets.npv(100.0, 0.10, 3, growth=0.10) == pytest.approx(3 * 100 / 1.1)


def test_sensitivity_table_over_at_least_two_rates():
    table = assets.sensitivity(1e8, [0.08, 0.03, 0.05], 30)
    assert [row.discount_rate for row in table] == [0.03, 0.05, 0.08]
    assert table[0].npv > table[1].npv > table[2].npv
    assert table[1].years_of_flow == pytest.approx((1 - 1.05 ** -30) / 0.05)
    with pytest.raises(AssetInputError, match="at least two"):
        assets.sensitivity(1e8, [0.05, 0.05], 30)


@pytest.mark.parametrize("rate", [5.0, 8, -1.0, float("nan")])
def test_a_percent_in_disguise_or_impossible_rate_is_refused(rate):
    with pytest.raises(AssetInputError, match="fraction"):
        assets.npv(100.0, rate, 10)


@pytest.mark.parametrize("horizon", [0, 201, 2.5])
def test_horizon_must_be_whole_years(horizon):
    with pytest.raises(AssetInputError, match="horizon"):
        assets.npv(100.0, 0.05, horizon)


def test_product_npv_of_a_carbon_parcel_as_reference_price():
    # 1,200 tCO2 a year at 444.17 yuan/tCO2 for a 20-year crediting period at 5 %
    valued = assets.product_npv(1200.0, 444.17, 0.05, 20, area_ha=300.0)
    annual = 1200.0 * 444.17
    expected = annual * (1 - 1.05 ** -20) / 0.05
    assert valued.npv == pytest.approx(expected)
    assert valued.total_quantity == 24_000.0
    assert valued.npv_per_unit == pytest.approx(expected / 24_000.0)
    assert valued.npv_per_ha == pytest.approx(expected / 300.0)
    # at a rate of 0 the reference price per tonne is the unit price itself
    assert assets.product_npv(1200.0, 444.17, 0.0, 20).npv_per_unit == pytest.approx(444.17)
