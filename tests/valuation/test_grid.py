"""Grid route: every cell formula against hand-worked numbers; aggregation; bad grids."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from valuation import grid
from valuation.grid import GridError, GridOptions

CELL = 900.0  # a 30 m x 30 m cell, m2


def test_water_conservation_hand_worked():
    # (1200 - 300 - 600) mm = 0.3 m over 900 m2 = 270 m3
    assert grid.water_conservation_m3(1200.0, 300.0, 600.0, CELL) == pytest.approx(270.0)


def test_rusle_soil_retention_hand_worked():
    # R K LS = 4000 x 0.03 x 2.5 = 300 t/hm2; x (1 - 0.1 x 1) = 270 t/hm2; x 0.09 hm2 = 24.3 t
    assert grid.soil_retention_t(4000.0, 0.03, 2.5, 0.1, 1.0, CELL) == pytest.approx(24.3)


def test_npp_to_co2_and_o2_hand_worked():
    # 800 g DM/m2 x 900 m2 = 720 kg = 0.72 t DM; CO2 1.63 x 0.72 = 1.1736 t; O2 0.8568 t
    dry = grid.dry_matter_t(800.0, CELL)
    assert dry == pytest.approx(0.72)
    assert grid.co2_fixed_t(dry) == pytest.approx(1.1736)
    assert grid.o2_released_t(dry) == pytest.approx(0.8568)
    # 360 g C/m2 / 0.45 = 800 g DM/m2
    assert grid.dry_matter_t(360.0, CELL, basis="carbon") == pytest.approx(0.72)


def test_climate_regulation_hand_worked():
    # 100 mm x 900 m2 = 90 m3 = 90,000 kg; x 2260 kJ/kg = 203,400,000 kJ = 56,500 kWh; / EER 3
    assert grid.climate_regulation_kwh(100.0, CELL) == pytest.approx(56_500 / 3)


def test_rweq_sand_fixation_hand_worked():
    wf, ef, scf, kr, c, z = 10.0, 0.3, 0.5, 0.8, 0.2, 50.0

    def loss(product: float) -> float:
        q_max = 109.8 * product
        s = 150.71 * product ** -0.3711
        return 2 * z / s ** 2 * q_max * math.exp(-(z / s) ** 2)

    actual = loss(wf * ef * scf * kr * c)      # 0.2400 -> 0.03872 kg/m2
    potential = loss(wf * ef * scf * kr * 1.0)  # 1.2000 -> 0.5855 kg/m2
    assert actual == pytest.approx(0.038722, rel=1e-4)
    assert potential == pytest.approx(0.58552, rel=1e-4)
    assert grid.sand_fixation_t(wf, ef, scf, kr, c, CELL) == pytest.approx(
        (potential - actual) * CELL / 1000)


def _cells(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({
        "region_code": ["522326", "522326", "522301", "522326"][:n],
        "ecosystem_type": ["forest", "森林", "forest", "farmland"][:n],
        "area_m2": [CELL] * n,
        "precipitation_mm": [1200.0] * n, "runoff_mm": [300.0] * n,
        "evapotranspiration_mm": [600.0] * n,
        "rainfall_erosivity": [4000.0] * n, "soil_erodibility": [0.03] * n,
        "slope_length_steepness": [2.5] * n, "cover_management": [0.1] * n,
        "support_practice": [1.0] * n,
        "npp": [800.0] * n, "et_hot_mm": [100.0] * n,
        "weather_factor": [10.0] * n, "erodible_fraction": [0.3] * n, "crust_factor": [0.5] * n,
        "roughness_factor": [0.8] * n, "vegetation_factor": [0.2] * n,
    })


def test_compute_aggregates_by_region_and_ecosystem_type():
    result = grid.compute(_cells(), ["R-WCON", "R-SOIL", "R-CARB", "R-O2", "R-CLIM", "R-SAND"])
    frame = result.quantities.set_index(["region_code", "ecosystem_type", "indicator_code"])
    # two Wangmo forest cells (森林 is forest): 2 x 270 m3
    assert frame.loc[("522326", "forest", "R-WCON"), "quantity"] == pytest.approx(540.0)
    assert frame.loc[("522326", "farmland", "R-SOIL"), "quantity"] == pytest.approx(24.3)
    assert frame.loc[("522301", "forest", "R-CARB"), "quantity"] == pytest.approx(1.1736)
    assert frame.loc[("522326", "forest", "R-O2"), "quantity"] == pytest.approx(2 * 0.8568)
    assert frame.loc[("522326", "forest", "R-CLIM"), "unit"] == "kWh"
    assert result.cells == 4
    total = result.quantities.groupby("indicator_code")["quantity"].sum()
    assert total["R-WCON"] == pytest.approx(4 * 270.0)


def test_air_and_water_purification_from_rates_capped_by_emissions():
    options = GridOptions(removal_rates={"forest": {"SO2": 10.0, "COD": 2.0}},
                          emissions={"522326": {"SO2": 0.01}})
    cells = _cells(3)
    cells["area_m2"] = 1e6  # 1 km2 each
    result = grid.compute(cells, ["R-AIR", "R-WQ"], options)
    frame = result.quantities.set_index(["region_code", "indicator_code", "item"])
    # Wangmo: 2 km2 forest x 10 t/km2 = 20 t SO2, capped at its emission of 0.01 t
    assert frame.loc[("522326", "R-AIR", "SO2"), "quantity"] == pytest.approx(0.01)
    # Xingyi has no emission figure: 10 t, uncapped, with a warning
    assert frame.loc[("522301", "R-AIR", "SO2"), "quantity"] == pytest.approx(10.0)
    assert frame.loc[("522326", "R-WQ", "COD"), "quantity"] == pytest.approx(4.0)
    assert any("not capped" in w for w in result.warnings)
    assert any("capped by emissions" in w for w in result.warnings)


def test_negative_water_balance_is_reported_and_kept_or_zeroed_explicitly():
    cells = _cells(2)
    cells.loc[1, "evapotranspiration_mm"] = 1000.0  # 1200 - 300 - 1000 = -100 mm -> -90 m3
    kept = grid.compute(cells, ["R-WCON"])
    assert kept.quantities["quantity"].sum() == pytest.approx(270.0 - 90.0)
    assert any("1 cell(s)" in w and "kept" in w for w in kept.warnings)
    zeroed = grid.compute(cells, ["R-WCON"], GridOptions(negative_water_balance="zero"))
    assert zeroed.quantities["quantity"].sum() == pytest.approx(270.0)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda c: c.drop(columns=["runoff_mm", "area_m2"]), "missing column(s): area_m2, runoff_mm"),
    (lambda c: c.assign(precipitation_mm=[1200.0, np.nan, 1.0, np.nan]),
     "precipitation_mm: 2 cell(s) without a finite value (NaN or empty), first at row(s) [3, 5]"),
    (lambda c: c.assign(npp=[1.0, -1.0, 1.0, 1.0]), "npp: 1 negative cell(s), first at row(s) [3]"),
    (lambda c: c.assign(cover_management=[1.5, 0.1, 0.1, 0.1]), "cover_management must lie in"),
    (lambda c: c.assign(area_m2=[0.0, 1.0, 1.0, 1.0]), "zero area"),
    (lambda c: c.assign(ecosystem_type=["forest", "jungle", "forest", "forest"]),
     "unknown ecosystem type 'jungle' at row(s) [3]"),
    (lambda c: c.assign(runoff_mm=["a", "b", "c", "d"]), "runoff_mm must be numeric"),
    (lambda c: c.iloc[0:0], "the grid has no cells"),
])
def test_bad_grids_are_refused_with_every_problem_named(change, expected):
    with pytest.raises(GridError) as caught:
        grid.compute(change(_cells()), ["R-WCON", "R-SOIL", "R-CARB"])
    messages = [p["message"] for p in caught.value.problems]
    assert any(expected in m for m in messages), messages


def test_unknown_grid_indicator_and_missing_rates_are_refused():
    with pytest.raises(GridError, match="not computable by the grid route: R-FLOOD"):
        grid.compute(_cells(), ["R-FLOOD"])
    with pytest.raises(GridError, match="R-AIR needs removal_rates"):
        grid.compute(_cells(), ["R-AIR"])
