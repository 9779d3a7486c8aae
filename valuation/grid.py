"""The grid route: per-cell biophysical inputs -> physical quantities, aggregated by region and
ecosystem type. Pure numpy/pandas, vectorised over millions of cells; no I/O.

Cell formulas (MEE 2020 technical guideline for terrestrial GEP; GB/T 46869-2025):

- water conservation (R-WCON, m3):   Q = (P - R - ET) [mm] x 1e-3 x A [m2]
- soil retention (R-SOIL, t):        Q = R x K x LS x (1 - C x P) x A [hm2]
  (RUSLE potential minus actual erosion; R in MJ mm/(hm2 h a), K in t hm2 h/(hm2 MJ mm))
- sand fixation (R-SAND, t):         RWEQ potential minus actual wind erosion:
  S_L = 2z/s^2 x Q_max x exp(-(z/s)^2), Q_max = 109.8 x (WF EF SCF K' C),
  s = 150.71 x (WF EF SCF K' C)^-0.3711, potential with C = 1; S_L in kg/m2, z = 50 m
- CO2 fixed (R-CARB, tCO2):          Q = 1.63 x NPP [t dry matter]
- O2 released (R-O2, t):             Q = 1.19 x NPP [t dry matter]
  NPP [g dry matter/m2] x A x 1e-6; NPP given in gC/m2 is divided by the carbon fraction
- climate regulation (R-CLIM, kWh):  E = ET_hot [mm] x 1e-3 x A x 1000 kg/m3 x latent heat
  [kJ/kg] / 3600 [kJ/kWh] / EER (air conditioning; ET on days above 26 C)
- air (R-AIR) and water (R-WQ) purification, t per pollutant: removal rate of the ecosystem
  type [t/(km2 a)] x area, capped per region by the emission or load (`cap_by_emissions`)

Validation collects every problem (missing columns, NaNs, impossible negatives, unknown
ecosystem types) and reports them all; nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from valuation.registry import ECOSYSTEM_TYPES, normalize_ecosystem_type

CO2_PER_DRY_MATTER = 1.63  #: t CO2 fixed per t of dry matter produced (photosynthesis)
O2_PER_DRY_MATTER = 1.19  #: t O2 released per t of dry matter produced
DEFAULT_CARBON_FRACTION = 0.45  #: t C per t of dry matter, to turn gC NPP into dry matter
DEFAULT_LATENT_HEAT_KJ_PER_KG = 2260.0  #: latent heat of vaporisation used by the guideline
DEFAULT_EER = 3.0  #: energy-efficiency ratio of an air conditioner (gep_indicators.csv: about 3)
DEFAULT_RWEQ_Z_M = 50.0  #: downwind distance z of RWEQ, m
AIR_ITEMS = ("SO2", "NOx", "dust")
WATER_ITEMS = ("COD", "NH3-N", "TN", "TP")

#: indicator -> input columns it needs (besides region_code, ecosystem_type, area_m2)
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "R-WCON": ("precipitation_mm", "runoff_mm", "evapotranspiration_mm"),
    "R-SOIL": ("rainfall_erosivity", "soil_erodibility", "slope_length_steepness",
               "cover_management", "support_practice"),
    "R-SAND": ("weather_factor", "erodible_fraction", "crust_factor", "roughness_factor",
               "vegetation_factor"),
    "R-CARB": ("npp",),
    "R-O2": ("npp",),
    "R-CLIM": ("et_hot_mm",),
    "R-AIR": (),
    "R-WQ": (),
}
GRID_INDICATORS = tuple(REQUIRED_COLUMNS)
UNITS = {"R-WCON": "m3", "R-SOIL": "t", "R-SAND": "t", "R-CARB": "tCO2", "R-O2": "t",
         "R-CLIM": "kWh", "R-AIR": "t", "R-WQ": "t"}

#: columns that must lie in [0, 1]
_FRACTIONS = ("cover_management", "support_practice", "erodible_fraction", "crust_factor",
              "vegetation_factor")


class GridError(ValueError):
    """The grid input cannot be used; `problems` lists every issue ({column, message, row})."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(p["message"] for p in problems[:5]))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class GridOptions:
    npp_basis: str = "dry_matter"  #: dry_matter (g DM/m2) or carbon (g C/m2)
    carbon_fraction: float = DEFAULT_CARBON_FRACTION
    latent_heat_kj_per_kg: float = DEFAULT_LATENT_HEAT_KJ_PER_KG
    eer: float = DEFAULT_EER
    rweq_z_m: float = DEFAULT_RWEQ_Z_M
    #: keep (sum the signed cell balance) or zero (cells where ET + runoff > P count 0)
    negative_water_balance: str = "keep"
    #: ecosystem type -> pollutant -> removal rate t/(km2 a), for R-AIR / R-WQ
    removal_rates: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    #: region -> pollutant -> emission or load t/a (caps removal); absent = no cap, warned
    emissions: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Mapping) else v)
                for k, v in dataclasses.asdict(self).items()}


# --- cell formulas ----------------------------------------------------------------------------


def water_conservation_m3(precipitation_mm: Any, runoff_mm: Any, evapotranspiration_mm: Any,
                          area_m2: Any) -> np.ndarray:
    """(P - R - ET) mm x area m2 / 1000 = m3 of water conserved."""
    return (precipitation_mm - runoff_mm - evapotranspiration_mm) * area_m2 * 1e-3


def soil_retention_t(r: Any, k: Any, ls: Any, c: Any, p: Any, area_m2: Any) -> np.ndarray:
    """RUSLE: potential (R K LS) minus actual (R K LS C P) erosion, t/hm2 x area in hm2."""
    return r * k * ls * (1.0 - c * p) * (area_m2 * 1e-4)


def rweq_loss_kg_m2(wf: Any, ef: Any, scf: Any, k_rough: Any, c_veg: Any,
                    z: float = DEFAULT_RWEQ_Z_M) -> np.ndarray:
    """RWEQ wind erosion S_L (kg/m2) at downwind distance z (m)."""
    return _rweq_loss(wf * ef * scf * k_rough * c_veg, z)


def _rweq_loss(product: Any, z: float) -> np.ndarray:
    """S_L from the product WF EF SCF K' C (>= 0). A product of 0 gives s = inf and a loss of
    exactly 0, so no special case is needed (the inf is silenced, never returned)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = np.power(product, -0.3711)
        s *= 150.71
        ratio = z / s
        loss = np.exp(-(ratio * ratio))
        loss *= product
        loss *= 2.0 * z * 109.8
        loss /= s * s
    return loss


def sand_fixation_t(wf: Any, ef: Any, scf: Any, k_rough: Any, c_veg: Any, area_m2: Any,
                    z: float = DEFAULT_RWEQ_Z_M) -> np.ndarray:
    """Potential (no vegetation, C = 1) minus actual RWEQ loss, kg/m2 x m2 / 1000 = t."""
    base = wf * ef * scf * k_rough
    fixed = _rweq_loss(base, z)
    fixed -= _rweq_loss(base * c_veg, z)
    fixed *= area_m2 * 1e-3
    return fixed


def dry_matter_t(npp: Any, area_m2: Any, *, basis: str = "dry_matter",
                 carbon_fraction: float = DEFAULT_CARBON_FRACTION) -> np.ndarray:
    """NPP per m2 (g dry matter, or g C with basis=carbon) x area -> t dry matter."""
    grams = npp * area_m2
    if basis == "carbon":
        grams = grams / carbon_fraction
    return grams * 1e-6


def co2_fixed_t(dry_matter: Any) -> np.ndarray:
    return CO2_PER_DRY_MATTER * dry_matter


def o2_released_t(dry_matter: Any) -> np.ndarray:
    return O2_PER_DRY_MATTER * dry_matter


def climate_regulation_kwh(et_hot_mm: Any, area_m2: Any, *,
                           latent_heat_kj_per_kg: float = DEFAULT_LATENT_HEAT_KJ_PER_KG,
                           eer: float = DEFAULT_EER) -> np.ndarray:
    """Energy absorbed by evapotranspiration on hot days, as air-conditioning electricity:
    mm/1000 x m2 x 1000 kg/m3 x kJ/kg / 3600 kJ/kWh / EER."""
    return et_hot_mm * area_m2 * (latent_heat_kj_per_kg / 3600.0 / eer)


def cap_by_emissions(removal: pd.DataFrame, emissions: Mapping[str, Mapping[str, float]],
                     ) -> tuple[pd.DataFrame, list[str]]:
    """Cap pollutant removal per region and pollutant at the region's emission (or load):
    when capacity exceeds it, every ecosystem type's removal is scaled by emission/capacity
    (so the parts still sum to the cap). `removal` has region_code, ecosystem_type, item,
    quantity. Regions without an emission figure are left uncapped, with a warning."""
    warnings: list[str] = []
    if removal.empty:
        return removal, warnings
    frame = removal.copy()
    totals = frame.groupby(["region_code", "item"], sort=True)["quantity"].transform("sum")
    caps = np.array([emissions.get(r, {}).get(i, np.nan)
                     for r, i in zip(frame["region_code"], frame["item"])], dtype="float64")
    missing = sorted({f"{r}/{i}" for r, i, c in zip(frame["region_code"], frame["item"], caps)
                      if np.isnan(c)})
    if missing:
        warnings.append("pollutant removal not capped (no emission/load given) for "
                        + ", ".join(missing))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(~np.isnan(caps) & (totals.to_numpy() > caps),
                         caps / totals.to_numpy(), 1.0)
    capped = (scale < 1).sum()
    if capped:
        warnings.append(f"pollutant removal capped by emissions in {capped} region x ecosystem "
                        "x pollutant rows")
    frame["quantity"] = frame["quantity"].to_numpy() * scale
    return frame, warnings


# --- validation and the whole route ------------------------------------------------------------


def required_columns(indicators: Iterable[str]) -> list[str]:
    needed = ["region_code", "ecosystem_type", "area_m2"]
    for code in indicators:
        for column in REQUIRED_COLUMNS[code]:
            if column not in needed:
                needed.append(column)
    return needed


def _first_rows(mask: np.ndarray, limit: int = 5) -> list[int]:
    """1-based file row numbers (header = row 1) of the first offending cells."""
    return [int(i) + 2 for i in np.flatnonzero(mask)[:limit]]


def validate(cells: pd.DataFrame, indicators: Sequence[str], options: GridOptions,
             ) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    unknown = [c for c in indicators if c not in REQUIRED_COLUMNS]
    if unknown:
        problems.append({"column": None, "message": "not computable by the grid route: "
                         + ", ".join(unknown)
                         + f" (grid indicators: {', '.join(GRID_INDICATORS)})"})
        return problems
    if not indicators:
        problems.append({"column": None, "message": "no grid indicator requested"})
        return problems
    missing = [c for c in required_columns(indicators) if c not in cells.columns]
    if missing:
        problems.append({"column": ", ".join(missing),
                         "message": "missing column(s): " + ", ".join(missing)})
    if len(cells) == 0:
        problems.append({"column": None, "message": "the grid has no cells"})
    if options.npp_basis not in ("dry_matter", "carbon"):
        problems.append({"column": "npp", "message": "npp_basis must be dry_matter or carbon"})
    if not 0 < options.carbon_fraction <= 1:
        problems.append({"column": "npp", "message": "carbon_fraction must be in (0, 1]"})
    if options.eer <= 0 or options.latent_heat_kj_per_kg <= 0 or options.rweq_z_m <= 0:
        problems.append({"column": None, "message": "eer, latent heat and z must be positive"})
    if options.negative_water_balance not in ("keep", "zero"):
        problems.append({"column": None,
                         "message": "negative_water_balance must be keep or zero"})
    for code, items in (("R-AIR", AIR_ITEMS), ("R-WQ", WATER_ITEMS)):
        if code in indicators:
            usable = {p for rates in options.removal_rates.values() for p in rates if p in items}
            if not usable:
                problems.append({"column": None, "message": f"{code} needs removal_rates (t per "
                                 f"km2 and year by ecosystem type) for {', '.join(items)}"})
    for eco, rates in options.removal_rates.items():
        if normalize_ecosystem_type(eco) is None:
            problems.append({"column": None, "message": f"removal_rates: unknown ecosystem "
                             f"type {eco!r}"})
        for pollutant, rate in rates.items():
            if pollutant not in AIR_ITEMS + WATER_ITEMS:
                problems.append({"column": None, "message": f"removal_rates: unknown pollutant "
                                 f"{pollutant!r}"})
            elif not (np.isfinite(rate) and rate >= 0):
                problems.append({"column": None, "message": f"removal_rates: {eco}/{pollutant} "
                                 "must be a finite number >= 0"})
    if missing or len(cells) == 0:
        return problems
    for column in required_columns(indicators)[2:]:
        values = cells[column]
        if not pd.api.types.is_numeric_dtype(values.dtype):
            problems.append({"column": column, "message": f"{column} must be numeric"})
            continue
        array = values.to_numpy(dtype="float64", copy=False)
        bad = ~np.isfinite(array)
        if bad.any():
            problems.append({"column": column, "row": _first_rows(bad)[0],
                             "message": f"{column}: {int(bad.sum())} cell(s) without a finite "
                             f"value (NaN or empty), first at row(s) {_first_rows(bad)}"})
            continue
        negative = array < 0
        if negative.any():
            problems.append({"column": column, "row": _first_rows(negative)[0],
                             "message": f"{column}: {int(negative.sum())} negative cell(s), "
                             f"first at row(s) {_first_rows(negative)}"})
        if column == "area_m2" and (array == 0).any():
            zero = array == 0
            problems.append({"column": column, "row": _first_rows(zero)[0],
                             "message": f"area_m2: {int(zero.sum())} cell(s) of zero area, "
                             f"first at row(s) {_first_rows(zero)}"})
        if column in _FRACTIONS and (array > 1).any():
            above = array > 1
            problems.append({"column": column, "row": _first_rows(above)[0],
                             "message": f"{column} must lie in [0, 1]: {int(above.sum())} "
                             f"cell(s) above 1, first at row(s) {_first_rows(above)}"})
    for column in ("region_code", "ecosystem_type"):
        values = cells[column]
        if values.isna().any():
            bad = values.isna().to_numpy()
            problems.append({"column": column, "row": _first_rows(bad)[0],
                             "message": f"{column}: {int(bad.sum())} empty cell(s), first at "
                             f"row(s) {_first_rows(bad)}"})
    return problems


@dataclasses.dataclass
class GridResult:
    quantities: pd.DataFrame  #: region_code, ecosystem_type, indicator_code, item, quantity, unit
    cells: int
    warnings: list[str]


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer code per cell and the labels; a categorical column is used as it is (no
    per-cell string work), any other column is factorised."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return (values.cat.codes.to_numpy().astype(np.int64),
                [str(c) for c in values.cat.categories])
    codes, labels = pd.factorize(values, sort=True)
    return codes.astype(np.int64), [str(label) for label in labels]


def _group_codes(cells: pd.DataFrame) -> tuple[np.ndarray, list[str], list[str], list[dict]]:
    """Integer group per cell (region x ecosystem type) and the labels of both axes."""
    problems: list[dict[str, Any]] = []
    region_codes, regions = _codes(cells["region_code"])
    eco_codes, ecos = _codes(cells["ecosystem_type"])
    eco_labels = []
    for position, label in enumerate(ecos):
        normal = normalize_ecosystem_type(label)
        if normal is None:
            rows = _first_rows(eco_codes == position)
            if rows:
                problems.append({"column": "ecosystem_type", "row": rows[0], "message":
                                 f"unknown ecosystem type {label!r} at row(s) {rows}; use one "
                                 f"of {', '.join(ECOSYSTEM_TYPES)}"})
        eco_labels.append(normal or label)
    group = region_codes * max(len(ecos), 1) + eco_codes
    return group, regions, eco_labels, problems


def compute(cells: pd.DataFrame, indicators: Sequence[str],
            options: GridOptions | None = None) -> GridResult:
    """Per-cell quantities of `indicators`, summed per region x ecosystem type. Raises
    GridError listing every problem of the input."""
    options = options or GridOptions()
    indicators = list(dict.fromkeys(indicators))
    problems = validate(cells, indicators, options)
    if problems:
        raise GridError(problems)
    group, regions, ecos, problems = _group_codes(cells)
    if problems:
        raise GridError(problems)
    n_groups = len(regions) * max(len(ecos), 1)
    warnings: list[str] = []

    def column(name: str) -> np.ndarray:
        return cells[name].to_numpy(dtype="float64", copy=False)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=n_groups)

    area = column("area_m2")
    sums: dict[tuple[str, str], np.ndarray] = {}
    if "R-WCON" in indicators:
        water = water_conservation_m3(column("precipitation_mm"), column("runoff_mm"),
                                      column("evapotranspiration_mm"), area)
        negative = water < 0
        count = int(negative.sum())
        if count:
            verb = "kept (signed sum)" if options.negative_water_balance == "keep" else \
                "counted as 0"
            warnings.append(f"R-WCON: {count} cell(s) lose more water to runoff and ET than "
                            f"they receive ({water[negative].sum():.6g} m3); {verb}")
            if options.negative_water_balance == "zero":
                water = np.where(negative, 0.0, water)
        sums[("R-WCON", "")] = total(water)
    if "R-SOIL" in indicators:
        sums[("R-SOIL", "")] = total(soil_retention_t(
            column("rainfall_erosivity"), column("soil_erodibility"),
            column("slope_length_steepness"), column("cover_management"),
            column("support_practice"), area))
    if "R-SAND" in indicators:
        sums[("R-SAND", "")] = total(sand_fixation_t(
            column("weather_factor"), column("erodible_fraction"), column("crust_factor"),
            column("roughness_factor"), column("vegetation_factor"), area, options.rweq_z_m))
    if "R-CARB" in indicators or "R-O2" in indicators:
        dm = total(dry_matter_t(column("npp"), area, basis=options.npp_basis,
                                carbon_fraction=options.carbon_fraction))
        if "R-CARB" in indicators:
            sums[("R-CARB", "")] = co2_fixed_t(dm)
        if "R-O2" in indicators:
            sums[("R-O2", "")] = o2_released_t(dm)
    if "R-CLIM" in indicators:
        sums[("R-CLIM", "")] = total(climate_regulation_kwh(
            column("et_hot_mm"), area, latent_heat_kj_per_kg=options.latent_heat_kj_per_kg,
            eer=options.eer))
    removal_frames = []
    if "R-AIR" in indicators or "R-WQ" in indicators:
        area_km2 = total(area) * 1e-6
        eco_of_group = np.tile(np.arange(max(len(ecos), 1)), len(regions))
        for code, items in (("R-AIR", AIR_ITEMS), ("R-WQ", WATER_ITEMS)):
            if code not in indicators:
                continue
            for pollutant in items:
                rates = np.array([_rate(options.removal_rates, eco, pollutant) for eco in ecos])
                if np.isnan(rates).all():
                    continue
                per_group = np.nan_to_num(rates[eco_of_group]) * area_km2
                removal_frames.append((code, pollutant, per_group))
    rows = []
    labels = [(r, e) for r in regions for e in (ecos or ["unspecified"])]
    present = np.bincount(group, minlength=n_groups) > 0
    for (code, item), values in sums.items():
        for index in np.flatnonzero(present):
            region, eco = labels[index]
            rows.append((region, eco, code, item, float(values[index]), UNITS[code]))
    removal_rows = []
    for code, pollutant, values in removal_frames:
        for index in np.flatnonzero(present):
            region, eco = labels[index]
            removal_rows.append((region, eco, code, pollutant, float(values[index]), "t"))
    if removal_rows:
        removal = pd.DataFrame(removal_rows, columns=["region_code", "ecosystem_type",
                                                      "indicator_code", "item", "quantity",
                                                      "unit"])
        capped, cap_warnings = cap_by_emissions(removal, options.emissions)
        warnings.extend(cap_warnings)
        rows.extend(capped.itertuples(index=False, name=None))
    frame = pd.DataFrame(rows, columns=["region_code", "ecosystem_type", "indicator_code",
                                        "item", "quantity", "unit"])
    frame = frame.groupby(["region_code", "ecosystem_type", "indicator_code", "item", "unit"],
                          sort=True, as_index=False)["quantity"].sum()
    return GridResult(frame[["region_code", "ecosystem_type", "indicator_code", "item",
                             "quantity", "unit"]], len(cells), warnings)


def _rate(rates: Mapping[str, Mapping[str, float]], eco: str, pollutant: str) -> float:
    for key, values in rates.items():
        if normalize_ecosystem_type(key) == eco and pollutant in values:
            return float(values[pollutant])
    return np.nan
