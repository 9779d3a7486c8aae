"""Quantification of forest-carbon removals, pure: numbers in, numbers out (no I/O beyond
reading the package's own reference table).

Afforestation by carbon-stock difference (in the manner of CCER-14-001-V01 / AR-CM-001):

    stock (tCO2e) = stem volume (m3) x basic wood density (t/m3) x biomass expansion factor
                    x (1 + root:shoot ratio) x carbon fraction x 44/12

per species; the removals of a monitoring period are the stock at its end minus the stock at
its start, less the baseline removals and the leakage emissions. Estimates stay float64; the
issuance rounds the net removals DOWN to whole tonnes (`whole_tonnes`), never up, so a
fraction of a tonne is never issued.

Guizhou's single-tree carbon sink (单株碳汇), as piloted in Wangmo: trees registered per
household and parcel, at most 2 mu per household counted, at most 225 trees per mu (so at most
450 trees per household, pro rata below 2 mu), a per-tree annual figure per species (data of
the parameter set), 3 yuan per tree per year paid to the household for a 5-year term.

Issuance split: the buffer share, the share of proceeds and the overall-mitigation share are
each the gross quantity x share rounded DOWN to whole tonnes; the owner receives the rest, so
the remainder of every rounding stays with the project owner and the parts always sum to the
whole (Gold Standard: 1,000 -> 800 + 200; UNDP's registry: 1,000 with 5 % and 2 % -> 930 + 50
+ 20).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path

import numpy as np

#: tonnes of CO2 per tonne of carbon (molar masses 44 / 12)
CO2_PER_CARBON = 44.0 / 12.0
#: float slack when rounding estimates down to whole tonnes: 999.9999999999 is 1000
ROUNDING_TOLERANCE_T = 1e-9
#: shares (buffer, share of proceeds, overall mitigation) are integers in basis points
BASIS_POINTS = 10_000

REFERENCE_CSV = Path(__file__).parent / "reference" / "carbon_species.csv"

#: the species parameters' fields, their units and the plausible range a value must lie in
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "wood_density_t_per_m3": (0.1, 1.5),
    "biomass_expansion_factor": (1.0, 3.0),
    "root_shoot_ratio": (0.0, 1.0),
    "carbon_fraction": (0.3, 0.6),
    "tree_tco2e_per_year": (0.0, 1.0),
}


@dataclasses.dataclass(frozen=True)
class SpeciesParameters:
    """The factors of one species. `tree_tco2e_per_year` is the single-tree route's figure
    per tree and year (None where the parameter set gives none)."""

    species_code: str
    name_zh: str
    name_en: str | None
    wood_density_t_per_m3: float
    biomass_expansion_factor: float
    root_shoot_ratio: float
    carbon_fraction: float
    tree_tco2e_per_year: float | None = None
    status: str = "to-confirm"
    source: str | None = None

    @property
    def tco2e_per_m3(self) -> float:
        """tCO2e in the whole tree (above and below ground) per m3 of stem volume."""
        return (self.wood_density_t_per_m3 * self.biomass_expansion_factor
                * (1.0 + self.root_shoot_ratio) * self.carbon_fraction * CO2_PER_CARBON)


def _float(text: str | None) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


@cache
def builtin_species() -> dict[str, SpeciesParameters]:
    """The reference parameters (`reference/carbon_species.csv`, a copy of the prefecture's
    table), by species code. A parameter set starts from these and may add or override."""
    with REFERENCE_CSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = {}
    for row in rows:
        out[row["species_code"]] = SpeciesParameters(
            species_code=row["species_code"], name_zh=row["name_zh"], name_en=row["name_en"],
            wood_density_t_per_m3=float(row["wood_density_t_per_m3"]),
            biomass_expansion_factor=float(row["biomass_expansion_factor"]),
            root_shoot_ratio=float(row["root_shoot_ratio"]),
            carbon_fraction=float(row["carbon_fraction"]),
            tree_tco2e_per_year=_float(row.get("tree_tco2e_per_year")),
            status=row.get("status") or "to-confirm", source=row.get("source") or None)
    return out


def parameter_errors(values: Mapping[str, object]) -> list[dict]:
    """Every problem of one species' parameters (codes, names, finite values in range)."""
    errors: list[dict] = []
    code = values.get("species_code")
    if not isinstance(code, str) or not code or len(code) > 40 or not all(
            c.isascii() and (c.isalnum() or c in "_-") for c in code):
        errors.append({"field": "species_code",
                       "message": "1-40 ASCII letters, digits, '_' or '-'"})
    if not isinstance(values.get("name_zh"), str) or not str(values.get("name_zh")).strip():
        errors.append({"field": "name_zh", "message": "required"})
    for field, (low, high) in PARAMETER_RANGES.items():
        value = values.get(field)
        if value is None and field == "tree_tco2e_per_year":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            errors.append({"field": field, "message": "a finite number is required"})
        elif not low <= value <= high:
            errors.append({"field": field, "message": f"must lie between {low} and {high}"})
    return errors


# --- stocks and removals ---------------------------------------------------------------------


def stock_tco2e(stem_volume_m3: float | np.ndarray, species: SpeciesParameters
                ) -> float | np.ndarray:
    """Carbon stock of the trees (above- and below-ground biomass) as tCO2e."""
    if isinstance(stem_volume_m3, np.ndarray):
        return stem_volume_m3.astype(np.float64) * species.tco2e_per_m3
    return float(stem_volume_m3) * species.tco2e_per_m3


def stock_change_tco2e(volume_start_m3: float, volume_end_m3: float,
                       species: SpeciesParameters) -> float:
    """Removals between two monitoring dates: stock at the end minus stock at the start
    (negative when the stand lost volume, e.g. felling or fire)."""
    return float(stock_tco2e(volume_end_m3, species)) - float(stock_tco2e(volume_start_m3,
                                                                          species))


def split_by_composition(volume_m3: float, composition: Mapping[str, float]
                         ) -> dict[str, float]:
    """A stand's stem volume split among its species by their volume shares (summing to 1)."""
    return {code: volume_m3 * share for code, share in composition.items()}


def composition_errors(composition: object, known: Iterable[str]) -> list[dict]:
    """Problems of a species composition: species codes known to the parameter set, shares
    positive and summing to 1 (within 1e-6)."""
    if not isinstance(composition, Mapping) or not composition:
        return [{"field": "species_composition",
                 "message": "at least one species with its volume share"}]
    errors = []
    known = set(known)
    total = 0.0
    for code, share in composition.items():
        if code not in known:
            errors.append({"field": f"species_composition.{code}",
                           "message": f"species {code!r} has no parameters in the set"})
        if isinstance(share, bool) or not isinstance(share, (int, float)) \
                or not math.isfinite(share) or not 0 < share <= 1:
            errors.append({"field": f"species_composition.{code}",
                           "message": "a share greater than 0 and at most 1"})
        else:
            total += share
    if not errors and abs(total - 1.0) > 1e-6:
        errors.append({"field": "species_composition",
                       "message": f"the shares sum to {total:g}, not 1"})
    return errors


@dataclasses.dataclass(frozen=True)
class SpeciesChange:
    """The removals of one species on one parcel over a monitoring period."""

    parcel_id: int
    species_code: str
    volume_start_m3: float
    volume_end_m3: float
    tco2e_per_m3: float
    removals_tco2e: float


def parcel_removals(parcel_id: int, volume_start_m3: float, volume_end_m3: float,
                    composition: Mapping[str, float],
                    species: Mapping[str, SpeciesParameters]) -> list[SpeciesChange]:
    """Stock difference of one parcel, species by species (volumes split by composition)."""
    start = split_by_composition(volume_start_m3, composition)
    end = split_by_composition(volume_end_m3, composition)
    return [SpeciesChange(parcel_id, code, start[code], end[code], species[code].tco2e_per_m3,
                          stock_change_tco2e(start[code], end[code], species[code]))
            for code in composition]


@dataclasses.dataclass(frozen=True)
class Plot:
    """One inventory plot: its area and the stem volume of one species measured on it at the
    start and at the end of the period."""

    plot_code: str
    parcel_id: int
    species_code: str
    plot_area_ha: float
    volume_start_m3: float
    volume_end_m3: float


def expand_plots(plots: Sequence[Plot], parcel_area_ha: Mapping[int, float]
                 ) -> list[tuple[int, str, float, float]]:
    """Plot measurements scaled up to their parcels: per parcel and species, the mean volume
    per hectare of the parcel's plots (total volume over total plot area) x the parcel's
    area. Returns (parcel id, species, volume at start m3, volume at end m3)."""
    plot_area: dict[tuple[int, str], float] = {}
    for plot in plots:  # a plot listing several species counts its area once
        plot_area.setdefault((plot.parcel_id, plot.plot_code), plot.plot_area_ha)
    area: dict[int, float] = {}
    for (parcel_id, _code), plot_ha in plot_area.items():
        area[parcel_id] = area.get(parcel_id, 0.0) + plot_ha
    sums: dict[tuple[int, str], list[float]] = {}
    for plot in plots:
        entry = sums.setdefault((plot.parcel_id, plot.species_code), [0.0, 0.0])
        entry[0] += plot.volume_start_m3
        entry[1] += plot.volume_end_m3
    out = []
    for (parcel_id, code), (start, end) in sorted(sums.items()):
        factor = parcel_area_ha[parcel_id] / area[parcel_id]
        out.append((parcel_id, code, start * factor, end * factor))
    return out


def net_removals_tco2e(actual_tco2e: float, baseline_tco2e: float = 0.0,
                       leakage_tco2e: float = 0.0) -> float:
    """Net anthropogenic removals: actual net change in stocks minus the baseline's and minus
    leakage (CCER-14-001: ER = dC_actual - dC_baseline - LK). May be negative."""
    return float(actual_tco2e) - float(baseline_tco2e) - float(leakage_tco2e)


def whole_tonnes(estimate_tco2e: float) -> int:
    """Credits from an estimate: rounded DOWN to whole tonnes (never up; a negative or
    non-finite estimate issues nothing). The tolerance absorbs float noise only."""
    if not math.isfinite(estimate_tco2e) or estimate_tco2e <= 0:
        return 0
    return math.floor(estimate_tco2e + ROUNDING_TOLERANCE_T)


# --- single-tree route -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SingleTreeRules:
    """The published rules of Guizhou's single-tree carbon sink (Wangmo pilot)."""

    max_area_mu: float = 2.0
    max_trees_per_mu: int = 225
    max_trees_per_household: int = 450
    payment_fen_per_tree_year: int = 300  # 3 yuan
    term_years: int = 5


WANGMO_RULES = SingleTreeRules()


def household_tree_cap(area_mu: float, rules: SingleTreeRules = WANGMO_RULES) -> int:
    """How many trees of a household count: 225 per mu of its enrolled land, pro rata below
    2 mu, at most 2 mu counted, never more than 450 (a fraction of a tree does not count)."""
    if not math.isfinite(area_mu) or area_mu <= 0:
        return 0
    counted = min(area_mu, rules.max_area_mu)
    return min(math.floor(counted * rules.max_trees_per_mu + ROUNDING_TOLERANCE_T),
               rules.max_trees_per_household)


def tree_cap_error(trees: int, area_mu: float,
                   rules: SingleTreeRules = WANGMO_RULES) -> str | None:
    """Why `trees` registered for a household on `area_mu` exceed the cap, or None."""
    cap = household_tree_cap(area_mu, rules)
    if trees > cap:
        return (f"{trees} trees exceed the household's cap of {cap} ({rules.max_trees_per_mu} "
                f"per mu on at most {rules.max_area_mu:g} mu, at most "
                f"{rules.max_trees_per_household} per household; {area_mu:g} mu enrolled)")
    return None


def single_tree_removals_tco2e(trees_by_species: Mapping[str, int], years: float,
                               species: Mapping[str, SpeciesParameters]) -> dict[str, float]:
    """Removals of registered trees over `years`: trees x the per-tree figure x years, by
    species (KeyError/ValueError for a species without a per-tree figure)."""
    out = {}
    for code, count in trees_by_species.items():
        figure = species[code].tree_tco2e_per_year
        if figure is None:
            raise ValueError(f"species {code!r} has no per-tree figure")
        out[code] = count * figure * years
    return out


def single_tree_payment_fen(trees: int, years: int = 1,
                            rules: SingleTreeRules = WANGMO_RULES) -> int:
    """What the programme pays a household (or a village) for `trees` over `years`, in fen."""
    return trees * rules.payment_fen_per_tree_year * years


# --- issuance split --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class IssuanceSplit:
    """Where the tonnes of an issuance go; the parts sum to `quantity_t`."""

    quantity_t: int
    buffer_t: int
    share_of_proceeds_t: int
    overall_mitigation_t: int
    owner_t: int


def share_of(quantity_t: int, share_bp: int) -> int:
    """`quantity_t` x `share_bp` / 10,000 rounded down, in exact integer arithmetic."""
    return quantity_t * share_bp // BASIS_POINTS


def split_issuance(quantity_t: int, *, buffer_share_bp: int, share_of_proceeds_bp: int = 0,
                   overall_mitigation_bp: int = 0) -> IssuanceSplit:
    """Buffer, share of proceeds and overall mitigation, each rounded down from the gross
    quantity; the owner receives the remainder (including every rounding remainder)."""
    if quantity_t < 0:
        raise ValueError("a quantity cannot be negative")
    shares = (buffer_share_bp, share_of_proceeds_bp, overall_mitigation_bp)
    if any(s < 0 for s in shares) or sum(shares) > BASIS_POINTS:
        raise ValueError("shares are 0..10,000 basis points and sum to at most 10,000")
    buffer_t = share_of(quantity_t, buffer_share_bp)
    proceeds_t = share_of(quantity_t, share_of_proceeds_bp)
    mitigation_t = share_of(quantity_t, overall_mitigation_bp)
    return IssuanceSplit(quantity_t, buffer_t, proceeds_t, mitigation_t,
                         quantity_t - buffer_t - proceeds_t - mitigation_t)


# --- methodologies ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Methodology:
    code: str
    name_zh: str
    name_en: str
    reference: str
    #: buffer share withheld from every issuance (non-permanence risk), basis points
    buffer_share_bp: int
    #: the crediting period's allowed length, whole years (inclusive)
    crediting_years: tuple[int, int]
    #: where a monitoring report's removals may come from
    sources: tuple[str, ...]


METHODOLOGIES: dict[str, Methodology] = {m.code: m for m in (
    Methodology("afforestation", "碳汇造林(碳储量变化法)",
                "Afforestation by carbon-stock difference",
                "in the manner of CCER-14-001-V01 / AR-CM-001-V01", 2000, (20, 40),
                ("catalog", "inventory_plots")),
    Methodology("forest_management", "森林经营碳汇", "Improved forest management",
                "in the manner of CCER-14-003-V01", 2000, (20, 60),
                ("catalog", "inventory_plots")),
    Methodology("single_tree", "单株碳汇", "Single-tree carbon sink (Guizhou)",
                "Guizhou single-tree carbon sink programme, Wangmo pilot rules", 2000, (5, 5),
                ("tree_registry",)),
)}
