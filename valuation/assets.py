"""Asset values: the net present value of expected future GEP flows (SEEA EA monetary asset
account) and product-level valuations. Pure functions over numpy-financial; no I/O.

An asset value is a stock, GEP is a flow: the two are never added. Conventions:

- `discount_rate` and `growth` are fractions (0.05 for 5 %); a value above 1 is refused as a
  percent in disguise;
- flows arrive at the end of each year t = 1..horizon; the first flow is `annual_flow`, then
  it grows by `growth` a year: F_t = F x (1 + g)^(t - 1);
- NPV = sum F_t / (1 + r)^t, computed with numpy_financial.npv on [0, F_1, ..., F_T]
  (numpy-financial discounts its first value by (1 + r)^0). With r = 0 this is the plain sum.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy_financial as npf

MAX_HORIZON_YEARS = 200


class AssetInputError(ValueError):
    """Inputs an NPV cannot be computed from (message says which and why)."""


def _check(discount_rate: float, horizon_years: int, growth: float) -> None:
    if not np.isfinite(discount_rate) or not -1 < discount_rate <= 1:
        raise AssetInputError(f"discount_rate {discount_rate} must be a fraction in (-1, 1] "
                              "(0.05 for 5 %)")
    if not np.isfinite(growth) or not -1 < growth <= 1:
        raise AssetInputError(f"growth {growth} must be a fraction in (-1, 1] (0.02 for 2 %)")
    if int(horizon_years) != horizon_years or not 1 <= horizon_years <= MAX_HORIZON_YEARS:
        raise AssetInputError(f"horizon must be a whole number of years from 1 to "
                              f"{MAX_HORIZON_YEARS}")


def flows(annual_flow: float, horizon_years: int, growth: float = 0.0) -> np.ndarray:
    """F_t = F (1 + g)^(t - 1), t = 1..horizon."""
    _check(0.0, horizon_years, growth)
    return annual_flow * np.power(1.0 + growth, np.arange(int(horizon_years)))


def npv(annual_flow: float, discount_rate: float, horizon_years: int,
        growth: float = 0.0) -> float:
    """Present value of `horizon_years` end-of-year flows starting at `annual_flow`."""
    _check(discount_rate, horizon_years, growth)
    stream = np.concatenate(([0.0], flows(annual_flow, horizon_years, growth)))
    return float(npf.npv(discount_rate, stream))


@dataclasses.dataclass(frozen=True)
class SensitivityRow:
    discount_rate: float
    growth: float
    npv: float
    #: NPV / annual flow: how many years of today's flow the asset is worth
    years_of_flow: float | None


def sensitivity(annual_flow: float, discount_rates: Sequence[float], horizon_years: int,
                growths: Sequence[float] = (0.0,)) -> list[SensitivityRow]:
    """NPV for every combination of rate and growth (at least two rates, as reviewers ask)."""
    if len(set(discount_rates)) < 2:
        raise AssetInputError("a sensitivity table needs at least two different discount rates")
    rows = []
    for growth in growths:
        for rate in sorted(set(discount_rates)):
            value = npv(annual_flow, rate, horizon_years, growth)
            rows.append(SensitivityRow(rate, growth, value,
                                       value / annual_flow if annual_flow else None))
    return rows


@dataclasses.dataclass(frozen=True)
class ProductValuation:
    """NPV of a product's annual physical flow valued at a unit price, e.g. a forest carbon
    parcel's sequestration over a crediting period."""

    annual_quantity: float
    unit_price: float
    annual_value: float
    discount_rate: float
    horizon_years: int
    growth: float
    npv: float
    total_quantity: float
    #: NPV per unit of physical flow over the period: a reference price per tonne (or m3 ...)
    npv_per_unit: float | None
    #: NPV per hectare, when the area is known
    npv_per_ha: float | None


def product_npv(annual_quantity: float, unit_price: float, discount_rate: float,
                horizon_years: int, *, growth: float = 0.0,
                area_ha: float | None = None) -> ProductValuation:
    """Value of `annual_quantity` a year at `unit_price` over `horizon_years` (growth applies to
    the value, e.g. a real carbon-price trend); per-unit and per-hectare reference prices."""
    if not np.isfinite(annual_quantity) or not np.isfinite(unit_price):
        raise AssetInputError("annual quantity and unit price must be finite numbers")
    if area_ha is not None and not (np.isfinite(area_ha) and area_ha > 0):
        raise AssetInputError("area_ha must be a positive number")
    annual_value = annual_quantity * unit_price
    value = npv(annual_value, discount_rate, horizon_years, growth)
    total = annual_quantity * horizon_years
    return ProductValuation(
        annual_quantity=annual_quantity, unit_price=unit_price, annual_value=annual_value,
        discount_rate=discount_rate, horizon_years=int(horizon_years), growth=growth, npv=value,
        total_quantity=total, npv_per_unit=value / total if total else None,
        npv_per_ha=value / area_ha if area_ha else None,
    )
