"""Emissions accounting of a thermal-power plant (pure: numbers in, numbers out; no I/O).

Two methods, as in the MEE power-generation GHG accounting guideline:

- **combustion**: E = sum over fuels of FC x NCV x CC x OF x 44/12, where FC is the fuel
  consumed (t, or 10^4 Nm3 for gas), NCV its net calorific value (GJ per unit), CC the carbon
  content per unit of heat (tC/GJ) and OF the oxidation rate (a fraction); 44/12 turns tonnes
  of carbon into tonnes of CO2;
- **generation**: E = electricity generated (MWh) x an emission factor (tCO2/MWh).

The arithmetic is exact: every input is a `Decimal` (as written, never a float), products and
sums are `Fraction`s, and the total is rounded **once**, to whole tonnes, half up (四舍五入:
x.5 goes up), never line by line. The pilot's obligation is the rounded verified emissions x
the year's share (basis points), rounded the same way, once.

Factors come from a versioned table (`FactorTable`, rows as in
`shared/reference/emission_factors.csv`: factor, year, value, unit, status, source); a value
is looked up for the report's year, else the latest earlier year, else the row without a year.
A measured NCV, CC or OF given by the plant is used instead of the table's default; the line
records which was used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

#: tonnes of CO2 per tonne of carbon (molar masses 44 and 12), exact
CO2_PER_C = Fraction(44, 12)
METHODS = ("combustion", "generation")
FACTOR_STATUSES = ("published", "to-confirm")
#: the largest quantity a line may state (far above any plant's year, below overflow)
MAX_QUANTITY = Decimal("1e12")
#: the most a report may total (1 Gt: far above any plant's year), tCO2
MAX_TOTAL_TCO2 = 10**9
#: the most significant digits, and the largest exponent either way, a number may have
MAX_DIGITS = 30


@dataclasses.dataclass(frozen=True)
class Fuel:
    """A fuel a plant may report, with the factor-table names of its defaults."""

    code: str
    name_zh: str
    name_en: str
    #: unit of consumption: t, or 10^4 Nm3 for gases
    unit: str
    ncv_factor: str  #: GJ per unit
    carbon_content_factor: str  #: tC/GJ
    oxidation_factor: str  #: fraction


#: the fuels a report may name; their default factors are rows of the factor table (a table
#: without a fuel's default needs the measured value on every line of that fuel)
FUELS: dict[str, Fuel] = {f.code: f for f in (
    Fuel("raw_coal", "原煤", "raw coal", "t", "raw_coal_average_ncv",
         "coal_default_carbon_content", "coal_oxidation_rate"),
    Fuel("natural_gas", "天然气", "natural gas", "10^4 Nm3", "natural_gas_ncv",
         "natural_gas_carbon_content", "natural_gas_oxidation_rate"),
    Fuel("diesel", "柴油", "diesel oil", "t", "diesel_ncv", "diesel_carbon_content",
         "diesel_oxidation_rate"),
)}
#: the factors a generation line may name: grid and fossil-power factors in tCO2/MWh
GENERATION_UNIT = "tCO2/MWh"


@dataclasses.dataclass(frozen=True)
class Factor:
    """One row of a factor table."""

    factor: str
    year: int | None
    value: Decimal
    unit: str
    status: str
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "year": self.year, "value": str(self.value),
                "unit": self.unit, "status": self.status, "source": self.source}


class FactorTable:
    """The rows of one version of the factor table, looked up by name and year."""

    def __init__(self, rows: Iterable[Factor]) -> None:
        self.rows = sorted(rows, key=lambda r: (r.factor, r.year or 0))
        self._by_name: dict[str, list[Factor]] = {}
        for row in self.rows:
            self._by_name.setdefault(row.factor, []).append(row)

    def lookup(self, factor: str, year: int) -> Factor | None:
        """The row of `factor` for `year`, else of the latest earlier year, else the row
        without a year; None if there is none."""
        rows = self._by_name.get(factor, [])
        dated = [r for r in rows if r.year is not None and r.year <= year]
        if dated:
            return max(dated, key=lambda r: r.year or 0)
        undated = [r for r in rows if r.year is None]
        return undated[0] if undated else None

    def content_sha256(self) -> str:
        """SHA-256 of the rows (canonical JSON): what a report records of its table."""
        text = json.dumps([r.as_dict() for r in self.rows], sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


def parse_decimal(value: Any) -> Decimal | None:
    """A number as written (text, int or Decimal; a float by its shortest repr), or None
    when it is not a finite number of at most MAX_DIGITS digits and an exponent within
    +-MAX_DIGITS. Never goes through binary floating point arithmetic."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, str):
        value = value.strip().replace(",", "")
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    if not number.is_finite():
        return None
    # a bounded size: 1e-999999999 is a valid decimal whose exact fraction would not fit in
    # memory, and no plant measures to more than a few dozen digits
    _sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) > MAX_DIGITS or not -MAX_DIGITS <= exponent <= MAX_DIGITS:
        return None
    return number


def round_half_up(value: Fraction) -> int:
    """`value` to a whole number, half up (2.5 -> 3, 2.4999 -> 2), in integer arithmetic
    (exact at any size); values are never negative here, for which this is also "half away
    from zero"."""
    return math.floor(value + Fraction(1, 2))


def exact_text(value: Fraction, places: int = 6) -> str:
    """An exact quantity shown to `places` decimals, half up (for reading; sums use the
    Fraction itself)."""
    scaled = round_half_up(value * 10**places)
    whole, part = divmod(scaled, 10**places)
    return f"{whole}.{part:0{places}d}"


@dataclasses.dataclass(frozen=True)
class LineResult:
    """One computed line: the values used (with where each came from) and its exact CO2."""

    line: int
    kind: str  #: fuel or generation
    values: dict[str, Any]
    tco2: Fraction

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "kind": self.kind, **self.values,
                "tco2_exact": exact_text(self.tco2)}


@dataclasses.dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str


@dataclasses.dataclass(frozen=True)
class Computation:
    """The lines of a report computed, or the errors of every bad line (never both)."""

    lines: list[LineResult]
    errors: list[LineError]
    total_exact: Fraction
    #: the total rounded once to whole tonnes, half up
    total_tco2: int


def combustion_tco2(consumption: Decimal, ncv_gj_per_unit: Decimal,
                    carbon_content_tc_per_gj: Decimal, oxidation_rate: Decimal) -> Fraction:
    """FC x NCV x CC x OF x 44/12, exact (tonnes of CO2)."""
    return (Fraction(consumption) * Fraction(ncv_gj_per_unit)
            * Fraction(carbon_content_tc_per_gj) * Fraction(oxidation_rate) * CO2_PER_C)


def generation_tco2(generation_mwh: Decimal, factor_tco2_per_mwh: Decimal) -> Fraction:
    """Generation x emission factor, exact (tonnes of CO2)."""
    return Fraction(generation_mwh) * Fraction(factor_tco2_per_mwh)


def _quantity(raw: Any, field: str, line: int, errors: list[LineError], *,
              required: bool, at_most: Decimal | None = MAX_QUANTITY,
              positive: bool = False) -> Decimal | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            errors.append(LineError(line, field, "required"))
        return None
    number = parse_decimal(raw)
    if number is None:
        errors.append(LineError(line, field, f"not a number (or more than {MAX_DIGITS} "
                                             f"digits): {str(raw)[:40]!r}"))
        return None
    if number < 0:
        errors.append(LineError(line, field, "must not be negative"))
        return None
    if positive and number == 0:
        errors.append(LineError(line, field, "must be greater than zero"))
        return None
    if at_most is not None and number > at_most:
        errors.append(LineError(line, field, f"at most {at_most}"))
        return None
    return number


def _factor(table: FactorTable, name: str, year: int, unit: str | None, line: int, field: str,
            errors: list[LineError]) -> Factor | None:
    row = table.lookup(name, year)
    if row is None:
        errors.append(LineError(line, field, f"no measured value given and the factor table "
                                             f"has no {name!r} for {year} or earlier"))
        return None
    if unit is not None and row.unit != unit:
        errors.append(LineError(line, field, f"the table's {name!r} is in {row.unit}, not "
                                             f"{unit}"))
        return None
    return row


def _fuel_line(number: int, raw: Mapping[str, Any], table: FactorTable, year: int,
               errors: list[LineError]) -> LineResult | None:
    before = len(errors)
    code = raw.get("fuel")
    fuel = FUELS.get(code.strip()) if isinstance(code, str) else None
    if fuel is None:
        errors.append(LineError(number, "fuel", f"unknown fuel {str(code)[:40]!r}; one of "
                                                f"{', '.join(FUELS)}"))
    consumption = _quantity(raw.get("consumption"), "consumption", number, errors,
                            required=True)
    given = {
        "ncv_gj_per_unit": _quantity(raw.get("ncv_gj_per_unit"), "ncv_gj_per_unit", number,
                                     errors, required=False, positive=True),
        "carbon_content_tc_per_gj": _quantity(raw.get("carbon_content_tc_per_gj"),
                                              "carbon_content_tc_per_gj", number, errors,
                                              required=False, positive=True,
                                              at_most=Decimal(1)),
        "oxidation_rate": _quantity(raw.get("oxidation_rate"), "oxidation_rate", number,
                                    errors, required=False, positive=True,
                                    at_most=Decimal(1)),
    }
    if fuel is None or consumption is None or len(errors) > before:
        return None
    used: dict[str, Any] = {"fuel": fuel.code, "consumption": str(consumption),
                            "consumption_unit": fuel.unit}
    units = {"ncv_gj_per_unit": f"GJ/{fuel.unit}", "carbon_content_tc_per_gj": "tC/GJ",
             "oxidation_rate": "fraction"}
    names = {"ncv_gj_per_unit": fuel.ncv_factor,
             "carbon_content_tc_per_gj": fuel.carbon_content_factor,
             "oxidation_rate": fuel.oxidation_factor}
    values: dict[str, Decimal] = {}
    for field, measured in given.items():
        if measured is not None:
            values[field] = measured
            used[field], used[f"{field}_source"] = str(measured), "measured"
            continue
        row = _factor(table, names[field], year, units[field], number, field, errors)
        if row is None:
            continue
        values[field] = row.value
        used[field] = str(row.value)
        used[f"{field}_source"] = f"table:{row.factor}:{row.year or '-'}:{row.status}"
    if len(errors) > before:
        return None
    return LineResult(number, "fuel", used, combustion_tco2(
        consumption, values["ncv_gj_per_unit"], values["carbon_content_tc_per_gj"],
        values["oxidation_rate"]))


def _generation_line(number: int, raw: Mapping[str, Any], table: FactorTable, year: int,
                     errors: list[LineError]) -> LineResult | None:
    before = len(errors)
    generation = _quantity(raw.get("generation_mwh"), "generation_mwh", number, errors,
                           required=True)
    name = raw.get("factor")
    if not isinstance(name, str) or not name.strip():
        errors.append(LineError(number, "factor", "required: a factor of the table in "
                                                  f"{GENERATION_UNIT}, e.g. fossil_power"))
        row = None
    else:
        row = _factor(table, name.strip(), year, GENERATION_UNIT, number, "factor", errors)
    if generation is None or row is None or len(errors) > before:
        return None
    return LineResult(number, "generation", {
        "generation_mwh": str(generation), "factor": row.factor, "factor_year": row.year,
        "factor_tco2_per_mwh": str(row.value), "factor_status": row.status},
        generation_tco2(generation, row.value))


def compute(method: str, lines: Sequence[Mapping[str, Any]], table: FactorTable, year: int,
            *, numbers: Sequence[int] | None = None) -> Computation:
    """Compute a report's lines by `method` with `table`'s factors for `year`: every bad line
    is reported (unknown fuel, negative or missing consumption, a factor the table lacks),
    never stopping at the first. `numbers` are the lines' numbers to report (rows of an
    uploaded file); default 1, 2, ..."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    numbers = list(numbers) if numbers is not None else list(range(1, len(lines) + 1))
    errors: list[LineError] = []
    results: list[LineResult] = []
    compute_line = _fuel_line if method == "combustion" else _generation_line
    for number, raw in zip(numbers, lines, strict=True):
        result = compute_line(number, raw, table, year, errors)
        if result is not None:
            results.append(result)
    if errors:
        return Computation([], errors, Fraction(0), 0)
    total = sum((r.tco2 for r in results), Fraction(0))
    if total > MAX_TOTAL_TCO2:
        return Computation([], [LineError(numbers[0] if numbers else 0, "lines",
                                          f"the report totals more than {MAX_TOTAL_TCO2:,} "
                                          "tCO2; check the units")], Fraction(0), 0)
    return Computation(results, [], total, round_half_up(total))


def obligation_t(verified_tco2: int, share_bp: int) -> int:
    """The tonnes a plant must compensate: verified emissions x share (basis points, 1 bp =
    0.01 %), rounded once, half up."""
    if verified_tco2 < 0 or not 0 <= share_bp <= 10_000:
        raise ValueError("emissions must not be negative and the share is 0-10,000 bp")
    return round_half_up(Fraction(verified_tco2 * share_bp, 10_000))


@dataclasses.dataclass(frozen=True)
class Position:
    """Where an obligation stands: what is owed, what settled it, what is missing."""

    obligation_t: int
    retired_t: int
    fee_t: int
    paid_fen: int
    shortfall_t: int
    #: what paying the shortfall as a fee would cost
    shortfall_fen: int


def position(obligation: int, retired_t: int, fee_t: int, fee_fen_per_tco2: int) -> Position:
    """The arithmetic of an obligation: shortfall = obligation - retired - covered by fee
    (never negative: settlement refuses to go beyond the obligation)."""
    shortfall = obligation - retired_t - fee_t
    if min(obligation, retired_t, fee_t, fee_fen_per_tco2) < 0 or shortfall < 0:
        raise ValueError("an obligation is never settled beyond its tonnes")
    return Position(obligation, retired_t, fee_t, fee_t * fee_fen_per_tco2, shortfall,
                    shortfall * fee_fen_per_tco2)
