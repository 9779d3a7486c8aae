"""GEP valuation arithmetic: pure functions, numbers in and numbers out (numpy/pandas, no I/O).

The method is physical quantity x unit price, indicator by indicator, per region and ecosystem
type (NDRC/NBS GEP accounting specification 2022; GB/T 46869-2025). This module

- adjusts a reference price to the accounting year with a price index (`adjust_price`),
- applies the territorial principle (`apply_territorial_principle`),
- values quantity rows with the registry's formulas, vectorised per indicator and item
  (`value_quantities`), leaving every row it cannot value *unvalued with a reason*,
- totals by category, ecosystem type and region (`summarize`), computes GEP/GDP, per km² and per
  capita ratios and the sanity warnings (`sanity_warnings`),
- splits the change between two runs into quantity, price and interaction effects
  (`decompose_change`),
- and holds the small stand-alone formulas of the method (flood storage).

Values are float64 yuan at full precision; nothing here rounds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from ecovalue.units import UnitError, conversion_factor, parse_unit
from valuation import expressions
from valuation.registry import IndicatorDef, ParameterSpec, substitute_q

#: 1 tC corresponds to 44/12 tCO2 (molar masses of CO2 and C); a price per tC is a price per
#: 44/12 tCO2, so per tCO2 it is multiplied by 12/44
CARBON_TO_CO2 = Fraction(44, 12)

#: columns of a quantity frame handed to `value_quantities`
QUANTITY_COLUMNS = ("region_code", "indicator_code", "item", "ecosystem_type", "quantity",
                    "quantity_unit", "quantity_gross", "quantity_outside", "money")

#: the key of a result row
RESULT_KEY = ["indicator_code", "item", "region_code", "ecosystem_type", "quantity_unit"]


# --- prices ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PriceEntry:
    """One parameter of a price book, as stored."""

    parameter: str  #: resolved name: `reservoir_cost`, `abatement_cost.SO2`
    value: float
    unit: str
    price_year: int | None = None
    index_series: str | None = None
    confirmation: str = "to-confirm"
    source: str = ""


@dataclasses.dataclass(frozen=True)
class AdjustedPrice:
    """A parameter as a run uses it: converted to the formula's unit and, for a price, adjusted
    from its price year to the accounting year (current) and to the base year (constant)."""

    parameter: str
    kind: str  #: price or coefficient
    book_value: float
    book_unit: str
    unit: str  #: the unit the formula expects
    unit_factor: float  #: exact unit conversion (incl. 12/44 for tC -> tCO2), as a float
    unit_note: str
    price_year: int | None
    index_series: str | None
    index_factor: float  #: I(accounting year) / I(price year); 1 for coefficients
    index_factor_constant: float  #: I(base year) / I(price year)
    value_reference: float  #: book value in the formula's unit, not index-adjusted
    value_current: float
    value_constant: float
    confirmation: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class PriceProblem(Exception):
    """Why a parameter cannot be used (the indicator term stays unvalued with this reason)."""


IndexTable = Mapping[str, Mapping[int, float]]


def index_factor(indices: IndexTable, series: str, from_year: int, to_year: int) -> float:
    """I(to_year) / I(from_year) of a fixed-base index series; PriceProblem when a year is
    missing (a missing index is never taken as 1)."""
    values = indices.get(series)
    if values is None:
        raise PriceProblem(f"price index series {series} is unknown")
    for year in (from_year, to_year):
        if year not in values:
            raise PriceProblem(f"price index {series} has no value for {year}")
    if from_year == to_year:
        return 1.0
    return float(values[to_year]) / float(values[from_year])


def unit_factor(book_unit: str, target_unit: str) -> tuple[Fraction, str]:
    """Exact factor from `book_unit` to `target_unit`. Carbon and CO2 are different dimensions
    in ecovalue.units (44/12 is chemistry, not a unit conversion); here, and only here, a price
    per tC may serve where a price per tCO2 is expected (x 12/44), and the note says so."""
    try:
        return conversion_factor(book_unit, target_unit), ""
    except UnitError:
        pass
    source, target = parse_unit(book_unit), parse_unit(target_unit)
    exps = dict(source.dimension)
    carbon = exps.pop("carbon", 0)
    if carbon:
        exps["co2"] = exps.get("co2", 0) + carbon
        as_co2 = tuple(sorted((k, v) for k, v in exps.items() if v))
        if as_co2 == target.dimension:
            # value per tC^carbon -> per tCO2^carbon: 1 tC = 44/12 tCO2
            factor = source.factor / target.factor * CARBON_TO_CO2 ** carbon
            return factor, f"{book_unit} -> {target_unit} with 1 tC = 44/12 tCO2 (x {factor})"
    raise PriceProblem(f"unit {book_unit!r} cannot be converted to {target_unit!r}")


def adjust_price(entry: PriceEntry, spec: ParameterSpec, quantity_unit: str, *, year: int,
                 base_year: int, indices: IndexTable) -> AdjustedPrice:
    """Convert a book entry to the unit the formula expects and adjust a price to the
    accounting year and the base year; raises PriceProblem with the reason it cannot."""
    target = substitute_q(spec.unit, quantity_unit)
    try:
        factor, note = unit_factor(entry.unit, target)
    except UnitError as exc:
        raise PriceProblem(exc.detail) from None
    if not np.isfinite(entry.value):
        raise PriceProblem(f"{entry.parameter} is not a finite number")
    reference = entry.value * factor.numerator / factor.denominator
    current_factor = constant_factor = 1.0
    if spec.kind == "price":
        if entry.price_year is None:
            raise PriceProblem(f"{entry.parameter} has no price year")
        if entry.index_series:
            current_factor = index_factor(indices, entry.index_series, entry.price_year, year)
            constant_factor = index_factor(indices, entry.index_series, entry.price_year,
                                           base_year)
    return AdjustedPrice(
        parameter=entry.parameter, kind=spec.kind, book_value=entry.value, book_unit=entry.unit,
        unit=target, unit_factor=float(factor), unit_note=note, price_year=entry.price_year,
        index_series=entry.index_series, index_factor=current_factor,
        index_factor_constant=constant_factor, value_reference=reference,
        value_current=reference * current_factor, value_constant=reference * constant_factor,
        confirmation=entry.confirmation, source=entry.source,
    )


def resolve_parameter(name: str, item: str) -> str:
    """`abatement_cost[]` with item SO2 -> `abatement_cost.SO2`; without an item, the base name
    (an average price); plain names stay."""
    if name.endswith("[]"):
        base = name[:-2]
        return f"{base}.{item}" if item else base
    return name


# --- territorial principle ---------------------------------------------------------------------

TERRITORIAL_KEY = ["region_code", "indicator_code", "item", "ecosystem_type", "quantity_unit",
                   "money"]


def apply_territorial_principle(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """GB/T 46869-2025 defines GEP as the value of the ecosystem products of all ecosystems of
    the region *minus the value of ecosystem products that come from outside the region*.

    Rule implemented: for each region x indicator x item x ecosystem type (x canonical unit),
    accounted quantity = reported quantity (`origin` = local) - sum of the quantities tagged
    `origin` = outside (the part of the reported total produced by ecosystems outside the
    region, e.g. water transferred in, visits to a site managed across the border). Values
    follow from the net quantity, so value(net) = value(reported) - value(outside) at the same
    price. An outside quantity without a reported total, or larger than it, is an error
    (nothing to subtract from / a negative remainder), never silently clipped.

    `rows` has the columns of TERRITORIAL_KEY plus `quantity` and `origin`; returns one row per
    key with quantity (net), quantity_gross, quantity_outside, and the problems found.
    """
    problems: list[dict] = []
    if rows.empty:
        empty = rows.drop(columns=["origin"], errors="ignore").copy()
        empty["quantity_gross"] = pd.Series(dtype="float64")
        empty["quantity_outside"] = pd.Series(dtype="float64")
        return empty, problems
    local = rows[rows["origin"] == "local"].groupby(TERRITORIAL_KEY, sort=True, dropna=False)[
        "quantity"].sum()
    outside = rows[rows["origin"] == "outside"].groupby(TERRITORIAL_KEY, sort=True,
                                                        dropna=False)["quantity"].sum()
    joined = pd.concat({"quantity_gross": local, "quantity_outside": outside}, axis=1)
    suspicious = joined["quantity_gross"].isna() | (joined["quantity_outside"].notna() & (
        joined["quantity_outside"] > joined["quantity_gross"]))
    for key, row in joined[suspicious].iterrows():
        where = dict(zip(TERRITORIAL_KEY, key))
        label = (f"{where['indicator_code']} {where['item'] or ''} in {where['region_code']} "
                 f"({where['ecosystem_type']})").replace("  ", " ")
        if pd.isna(row["quantity_gross"]):
            problems.append({**where, "message": f"{label}: a quantity tagged as from outside "
                             "the region has no reported total to be subtracted from"})
        elif not pd.isna(row["quantity_outside"]) and row["quantity_outside"] > row[
                "quantity_gross"] and row["quantity_gross"] >= 0:
            problems.append({**where, "message": f"{label}: the quantity from outside the region "
                             f"({row['quantity_outside']:g}) exceeds the reported total "
                             f"({row['quantity_gross']:g})"})
    joined = joined[joined["quantity_gross"].notna()].copy()
    joined["quantity_outside"] = joined["quantity_outside"].fillna(0.0)
    joined["quantity"] = joined["quantity_gross"] - joined["quantity_outside"]
    return joined.reset_index(), problems


# --- valuation -------------------------------------------------------------------------------


@dataclasses.dataclass
class Valuation:
    results: pd.DataFrame  #: one row per RESULT_KEY that has a value
    unvalued: list[dict]  #: rows/terms left unvalued, each with a reason
    prices: dict[str, dict]  #: every parameter used: AdjustedPrice.to_dict() (key: name@unit)
    warnings: list[str]


RESULT_COLUMNS = [
    "indicator_code", "category", "item", "region_code", "ecosystem_type", "quantity",
    "quantity_unit", "quantity_gross", "quantity_outside", "unit_price", "unit_price_constant",
    "adjustment_factor", "value_reference", "value_current", "value_constant", "complete",
    "terms", "parameters",
]


def _empty_results() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in RESULT_COLUMNS})


def value_quantities(
    quantities: pd.DataFrame,
    indicators: Mapping[str, IndicatorDef],
    prices: Mapping[str, PriceEntry],
    indices: IndexTable,
    *,
    year: int,
    base_year: int,
    deflator_series: str,
) -> Valuation:
    """Value every quantity row. `quantities` has QUANTITY_COLUMNS (net quantities in the
    indicator's canonical unit, or in yuan where `money` is true). Rows are processed per
    (indicator, item, unit): parameters are resolved once per group and each formula is
    evaluated on the group's whole quantity array."""
    unvalued: list[dict] = []
    used_prices: dict[str, dict] = {}
    warnings: list[str] = []
    frames: list[pd.DataFrame] = []
    if quantities.empty:
        return Valuation(_empty_results(), unvalued, used_prices, warnings)
    ordered = quantities.sort_values(RESULT_KEY, kind="stable").reset_index(drop=True)
    groups = ordered.groupby(["indicator_code", "item", "quantity_unit", "money"], sort=True)
    for (code, item, unit, money), group in groups:
        definition = indicators[code]
        q = group["quantity"].to_numpy(dtype="float64")
        n = len(q)
        base = group[["indicator_code", "item", "region_code", "ecosystem_type", "quantity",
                      "quantity_unit", "quantity_gross", "quantity_outside"]].copy()

        def leave_unvalued(reason: str, term: str | None = None,
                           rows: pd.DataFrame = group) -> None:
            for record in rows.itertuples(index=False):
                unvalued.append({
                    # called within this iteration only: the loop's code, item and unit are its own
                    "indicator_code": code, "item": item,  # noqa: B023
                    "region_code": record.region_code,
                    "ecosystem_type": record.ecosystem_type, "term": term,
                    "quantity": float(record.quantity), "reason": reason,
                    "quantity_unit": unit,  # noqa: B023
                })

        if money:
            try:
                deflate = index_factor(indices, deflator_series, year, base_year)
            except PriceProblem as exc:
                leave_unvalued(f"reported value in yuan cannot be deflated to {base_year} "
                               f"prices: {exc}")
                continue
            current, constant, reference = q.copy(), q * deflate, q.copy()
            valued_terms = [["reported value"]] * n
            params: list[list[str]] = [[]] * n
            complete = np.ones(n, dtype=bool)
        else:
            current = np.zeros(n)
            constant = np.zeros(n)
            reference = np.zeros(n)
            any_term = False
            term_names: list[str] = []
            param_names: list[str] = []
            missing_terms: list[tuple[str, str]] = []
            terms = definition.terms_for(item, unit)
            if not terms:
                leave_unvalued(f"{code} has no value term for "
                               + (f"sub-item {item} " if item else "")
                               + f"in {unit}")
                continue
            for term in terms:
                formula = term.parsed
                resolved: dict[str, AdjustedPrice] = {}
                problem = None
                for name in formula.parameters:
                    full = resolve_parameter(name, item)
                    entry = prices.get(full)
                    if entry is None:
                        problem = f"the price book has no parameter {full}"
                        break
                    try:
                        resolved[name] = adjust_price(entry, definition.parameters[name], unit,
                                                      year=year, base_year=base_year,
                                                      indices=indices)
                    except PriceProblem as exc:
                        problem = f"{full}: {exc}"
                        break
                if problem is not None:
                    missing_terms.append((term.name, problem))
                    continue
                values = {}
                for attribute in ("value_current", "value_constant", "value_reference"):
                    scalars = {k: getattr(v, attribute) for k, v in resolved.items()}

                    def lookup(name: str, s: dict[str, Any] = scalars) -> Any:
                        # evaluated right below, within this iteration
                        return q if name == expressions.QUANTITY else s[name]  # noqa: B023

                    values[attribute] = np.broadcast_to(expressions.evaluate(formula, lookup),
                                                        (n,)).astype("float64")
                if not all(np.isfinite(v).all() for v in values.values()):
                    missing_terms.append((term.name, "the formula gives a non-finite value "
                                          "(a parameter of 0 in a denominator?)"))
                    continue
                current += values["value_current"]
                constant += values["value_constant"]
                reference += values["value_reference"]
                any_term = True
                term_names.append(term.name)
                for adjusted in resolved.values():
                    key = f"{adjusted.parameter}@{adjusted.unit}"
                    used_prices[key] = adjusted.to_dict()
                    param_names.append(key)
            for term_name, reason in missing_terms:
                label = (f"term {term_name} not valued: " if len(terms) > 1 else "") + reason
                leave_unvalued(label, term_name if len(terms) > 1 else None)
            if not any_term:
                continue
            valued_terms = [term_names] * n
            params = [sorted(set(param_names))] * n
            complete = np.full(n, not missing_terms)
        frame = base.reset_index(drop=True)
        frame["category"] = definition.category
        frame["value_current"] = current
        frame["value_constant"] = constant
        frame["value_reference"] = reference
        with np.errstate(divide="ignore", invalid="ignore"):
            nonzero = q != 0
            frame["unit_price"] = np.where(nonzero, current / np.where(nonzero, q, 1), np.nan)
            frame["unit_price_constant"] = np.where(nonzero, constant / np.where(nonzero, q, 1),
                                                    np.nan)
            ref_nonzero = reference != 0
            frame["adjustment_factor"] = np.where(
                ref_nonzero, current / np.where(ref_nonzero, reference, 1), np.nan)
        frame["complete"] = complete
        frame["terms"] = list(valued_terms)
        frame["parameters"] = list(params)
        frames.append(frame)
    results = (pd.concat(frames, ignore_index=True)[RESULT_COLUMNS] if frames
               else _empty_results())
    if not results.empty:
        results = results.sort_values(RESULT_KEY, kind="stable").reset_index(drop=True)
    return Valuation(results, unvalued, used_prices, warnings)


def missing_indicators(enabled: Iterable[str], quantities: pd.DataFrame,
                       regions: Sequence[str]) -> list[dict]:
    """Enabled indicators with no quantity row at all in the scope: unvalued, never zero."""
    present = set(quantities["indicator_code"]) if not quantities.empty else set()
    scope = ", ".join(regions)
    return [{"indicator_code": code, "item": "", "region_code": None, "ecosystem_type": None,
             "term": None, "quantity": None, "quantity_unit": None,
             "reason": f"no quantity reported for {scope}"}
            for code in enabled if code not in present]


# --- totals, ratios, warnings ----------------------------------------------------------------


def summarize(results: pd.DataFrame) -> dict[str, Any]:
    """GEP and its breakdowns, current and constant prices. GEP = sum of categories = sum of
    ecosystem types = sum of regions, since all are sums of the same result rows."""

    def by(column: str) -> dict[str, dict[str, float]]:
        if results.empty:
            return {}
        grouped = results.groupby(column, sort=True)[["value_current", "value_constant"]].sum()
        return {str(k): {"current": float(v["value_current"]), "constant": float(v[
            "value_constant"])} for k, v in grouped.iterrows()}

    total_current = float(results["value_current"].sum()) if not results.empty else 0.0
    total_constant = float(results["value_constant"].sum()) if not results.empty else 0.0
    by_region_category: dict[str, dict[str, float]] = {}
    if not results.empty:
        table = results.groupby(["region_code", "category"], sort=True)["value_current"].sum()
        for (region, category), value in table.items():
            by_region_category.setdefault(str(region), {})[str(category)] = float(value)
    return {
        "gep": {"current": total_current, "constant": total_constant},
        "by_category": by("category"),
        "by_ecosystem_type": by("ecosystem_type"),
        "by_region": by("region_code"),
        "by_indicator": by("indicator_code"),
        "by_region_category": by_region_category,
    }


@dataclasses.dataclass(frozen=True)
class RegionContext:
    """Socio-economic figures of a region for ratios (all optional)."""

    region_code: str
    level: str  #: county, prefecture, township ...
    gdp_yuan: float | None = None
    area_km2: float | None = None
    population: float | None = None


def ratios(summary: Mapping[str, Any], contexts: Sequence[RegionContext],
           scope_code: str) -> dict[str, dict[str, float | None]]:
    """GEP/GDP, GEP per km2 and per capita (current prices) per region with context; the scope
    region's GEP is the run's total."""
    out: dict[str, dict[str, float | None]] = {}
    for context in contexts:
        if context.region_code == scope_code:
            gep = summary["gep"]["current"]
        else:
            gep = summary["by_region"].get(context.region_code, {}).get("current")
        if gep is None:
            continue
        out[context.region_code] = {
            "gep_yuan": gep,
            "gep_to_gdp": gep / context.gdp_yuan if context.gdp_yuan else None,
            "gep_per_km2_yuan": gep / context.area_km2 if context.area_km2 else None,
            "gep_per_capita_yuan": gep / context.population if context.population else None,
        }
    return out


GEP_TO_GDP_RANGE = (1.0, 20.0)
REGULATING_SHARE_RANGE = (0.40, 0.95)
PRICE_RATIO_LIMIT = 5.0


def sanity_warnings(summary: Mapping[str, Any], region_ratios: Mapping[str, Mapping],
                    contexts: Sequence[RegionContext], scope_code: str,
                    used_prices: Mapping[str, Mapping], default_prices: Mapping[str, float],
                    ) -> list[str]:
    """Plausibility checks a reviewer would make; they warn, they do not block.

    - GEP/GDP outside 1-20 for a county;
    - regulating services outside 40-95 % of GEP (for the scope and each region);
    - a parameter more than 5x (or less than 1/5 of) the default book's value, both converted
      and adjusted the same way (`default_prices`: name@unit -> current value).
    """
    warnings: list[str] = []
    levels = {c.region_code: c.level for c in contexts}
    for code, values in sorted(region_ratios.items()):
        ratio = values.get("gep_to_gdp")
        if ratio is not None and levels.get(code) == "county" and not (
                GEP_TO_GDP_RANGE[0] <= ratio <= GEP_TO_GDP_RANGE[1]):
            warnings.append(f"GEP/GDP of county {code} is {ratio:.2f}, outside the usual "
                            f"{GEP_TO_GDP_RANGE[0]:g}-{GEP_TO_GDP_RANGE[1]:g} for a county: "
                            "check quantities, units (万/亿) and prices")

    def share_warning(label: str, by_category: Mapping[str, float], total: float) -> None:
        if total <= 0:
            return
        share = by_category.get("regulating", 0.0) / total
        low, high = REGULATING_SHARE_RANGE
        if not low <= share <= high:
            warnings.append(f"regulating services are {share:.1%} of GEP of {label}, outside "
                            f"the usual {low:.0%}-{high:.0%}: check for missing or "
                            "overstated indicators")

    total = summary["gep"]["current"]
    share_warning(scope_code, {k: v["current"] for k, v in summary["by_category"].items()},
                  total)
    if len(summary["by_region"]) > 1:
        for region, categories in summary["by_region_category"].items():
            share_warning(region, categories, sum(categories.values()))
    for key, price in sorted(used_prices.items()):
        default = default_prices.get(key)
        if not default or not price["value_current"]:
            continue
        ratio = price["value_current"] / default
        if ratio > PRICE_RATIO_LIMIT:
            warnings.append(f"{price['parameter']} = {price['value_current']:.6g} "
                            f"{price['unit']} is {ratio:.1f}x the default book's "
                            f"{default:.6g}: check the price and its unit")
        elif ratio < 1 / PRICE_RATIO_LIMIT:
            warnings.append(f"{price['parameter']} = {price['value_current']:.6g} "
                            f"{price['unit']} is below 1/{PRICE_RATIO_LIMIT:g} of the default "
                            f"book's {default:.6g}: check the price and its unit")
    return warnings


# --- comparison ------------------------------------------------------------------------------

COMPARISON_KEY = ["indicator_code", "item", "region_code", "ecosystem_type", "quantity_unit"]


def decompose_change(base: pd.DataFrame, other: pd.DataFrame, *,
                     basis: str = "current", real_money_volume: bool = False) -> pd.DataFrame:
    """Change of value from run `base` (0) to run `other` (1), row by row, with
    V = Q x p where p is the effective unit price of the row (value / quantity):

        V1 - V0 = (Q1 - Q0) p0          quantity effect (Laspeyres: at base prices)
                + (p1 - p0) Q0          price effect (at base quantities)
                + (Q1 - Q0)(p1 - p0)    interaction

    The three parts sum exactly (algebraically) to the change; numerically the interaction is
    the remainder, so the parts close to within float64 rounding (~1e-16 relative).
    A row valued in only one of the runs has no price in the other: its whole value is the
    `composition` effect (indicator, item, region or ecosystem type entering or leaving), so
    that for every row and in total
        change = quantity_effect + price_effect + interaction + composition.
    Rows are compared at the finest key (indicator, item, region, ecosystem type, unit), where
    quantity and price are well defined; sums over rows give the indicator-level split.
    `basis` = constant compares values at the base year's prices.

    Rows reported in yuan (output values) have no physical quantity; with `real_money_volume`
    (both runs share a base year) their volume is the constant-price value, so that their
    price effect is inflation and their quantity effect the real change.
    """
    value = "value_current" if basis == "current" else "value_constant"
    if real_money_volume:
        base, other = base.copy(), other.copy()
        for frame in (base, other):
            money = frame["quantity_unit"] == "yuan"
            frame.loc[money, "quantity"] = frame.loc[money, "value_constant"]
    columns = [*COMPARISON_KEY, "category", "quantity", value]
    left = base[columns].rename(columns={"quantity": "quantity_0", value: "value_0",
                                         "category": "category_0"})
    right = other[columns].rename(columns={"quantity": "quantity_1", value: "value_1",
                                           "category": "category_1"})
    merged = left.merge(right, on=COMPARISON_KEY, how="outer", sort=True)
    merged["category"] = merged["category_1"].fillna(merged["category_0"])
    both = merged["value_0"].notna() & merged["value_1"].notna()
    q0, q1 = merged["quantity_0"].to_numpy(float), merged["quantity_1"].to_numpy(float)
    v0, v1 = merged["value_0"].to_numpy(float), merged["value_1"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p0 = np.where(q0 != 0, v0 / np.where(q0 != 0, q0, 1), 0.0)
        p1 = np.where(q1 != 0, v1 / np.where(q1 != 0, q1, 1), 0.0)
    both_arr = both.to_numpy()
    # a row with Q0 = 0 and V0 = 0 has no observable price: use p1 for it (its change is then a
    # pure quantity effect) and symmetrically p0 when Q1 = 0
    p0 = np.where(both_arr & (q0 == 0), p1, p0)
    p1 = np.where(both_arr & (q1 == 0), p0, p1)
    dq, dp = np.nan_to_num(q1 - q0), p1 - p0
    merged["value_0"] = np.nan_to_num(v0)
    merged["value_1"] = np.nan_to_num(v1)
    merged["change"] = merged["value_1"] - merged["value_0"]
    merged["quantity_effect"] = np.where(both_arr, dq * p0, 0.0)
    merged["price_effect"] = np.where(both_arr, dp * np.nan_to_num(q0), 0.0)
    # the interaction is computed as the remainder change - quantity - price effect, which is
    # algebraically (Q1 - Q0)(p1 - p0); as a remainder it closes the sum to the float
    # rounding of one addition
    merged["interaction"] = np.where(
        both_arr, merged["change"] - merged["quantity_effect"] - merged["price_effect"], 0.0)
    merged["composition"] = np.where(both_arr, 0.0, merged["change"])
    merged["unit_price_0"] = np.where(merged["value_0"].notna() & both_arr, p0, np.nan)
    merged["unit_price_1"] = np.where(both_arr, p1, np.nan)
    merged["status"] = np.where(both_arr, "both", np.where(
        merged["quantity_1"].isna(), "base-only", "other-only"))
    return merged[[*COMPARISON_KEY, "category", "status", "quantity_0", "quantity_1",
                   "unit_price_0", "unit_price_1", "value_0", "value_1", "change",
                   "quantity_effect", "price_effect", "interaction", "composition"]]


# --- stand-alone formulas of the method ------------------------------------------------------


def flood_storage(lake_storage_m3: Any, reservoir_capacity_m3: Any, marsh_area_m2: Any, *,
                  reservoir_share: float = 0.35, marsh_depth_m: float = 0.3) -> Any:
    """Flood regulation capacity (R-FLOOD, m3): lake storage (from the region's own lake
    regression) + 0.35 x total reservoir capacity + 0.3 m x marsh area."""
    return (np.asarray(lake_storage_m3, dtype="float64")
            + reservoir_share * np.asarray(reservoir_capacity_m3, dtype="float64")
            + marsh_depth_m * np.asarray(marsh_area_m2, dtype="float64"))
