"""Units of measure with exact conversion, including Chinese statistical magnitudes.

A unit is parsed from text such as `t`, `万t`, `亿m³`, `万人次`, `亿kWh`, `万元`, `万hm²`, `亩`,
`yuan/m3`, `tCO2/a` or `元/吨`: an optional magnitude (万 = 10^4, 亿 = 10^8, 千 = 10^3,
百 = 10^2), a base unit, optionally `/ base unit`. Factors are `Fraction`s, so 3.2 亿m³ is exactly
320,000,000 m³ and a round trip never drifts; floats appear only when a value is converted.

Dimensions are explicit: mass, volume, area, length, energy, money, count-like quantities (visits,
trees, head of livestock, persons), CO₂ mass and carbon mass (tC and tCO₂ are different
dimensions: 44/12 is chemistry, not a unit conversion), time. A per-year suffix (`/a`, `/yr`,
`/年`) marks an annual flow; GEP quantities are annual, so `compatible(..., annual=True)` lets
`万t` stand for `t/a`.

We keep our own small table instead of a general units library: the magnitudes, 亩, 人次 and
元 are not in such libraries by default, and exactness matters more than breadth here.
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from functools import lru_cache

from ecovalue.errors import ValidationFailed

Dimension = tuple[tuple[str, int], ...]  # sorted (base dimension, exponent) pairs


def _dim(**exponents: int) -> Dimension:
    return tuple(sorted((k, v) for k, v in exponents.items() if v))


MAGNITUDES = {"万": Fraction(10_000), "亿": Fraction(100_000_000), "千": Fraction(1000),
              "百": Fraction(100)}

#: symbol -> (dimension, factor to the dimension's base unit). Base units: t, m³, m², m, kWh,
#: yuan, visit, tree, head, person, tCO₂, tC, a (year).
_BASE: dict[str, tuple[Dimension, Fraction]] = {}


def _define(dimension: Dimension, factor: Fraction | int | str, *symbols: str) -> None:
    for symbol in symbols:
        _BASE[symbol] = (dimension, Fraction(factor))


MASS, VOLUME, AREA, LENGTH = _dim(mass=1), _dim(length=3), _dim(length=2), _dim(length=1)
ENERGY, MONEY, TIME = _dim(energy=1), _dim(money=1), _dim(time=1)
_define(MASS, 1, "t", "吨", "tonne")
_define(MASS, Fraction(1, 1000), "kg", "公斤", "千克")
_define(MASS, Fraction(1, 2000), "斤", "jin")
_define(MASS, Fraction(1, 1_000_000), "g", "克")
_define(VOLUME, 1, "m3", "m³", "立方米", "方")
_define(VOLUME, Fraction(1, 1000), "L", "l", "升")
_define(AREA, 1, "m2", "m²", "平方米")
_define(AREA, 10_000, "ha", "hm2", "hm²", "公顷")
_define(AREA, Fraction(10_000, 15), "亩", "mu")
_define(AREA, 1_000_000, "km2", "km²", "平方公里", "平方千米")
_define(LENGTH, 1, "m", "米")
_define(LENGTH, Fraction(1, 1000), "mm", "毫米")
_define(LENGTH, 1000, "km", "公里")
_define(ENERGY, 1, "kWh", "kwh", "度", "千瓦时")
_define(ENERGY, 1000, "MWh")
_define(ENERGY, 1_000_000, "GWh")
_define(MONEY, 1, "yuan", "元", "CNY")
_define(_dim(visit=1), 1, "person-time", "person-times", "visit", "visits", "人次")
_define(_dim(person=1), 1, "person", "persons", "人")
_define(_dim(tree=1), 1, "tree", "trees", "株", "棵")
_define(_dim(head=1), 1, "head", "头", "只")
_define(_dim(co2=1), 1, "tCO2", "tCO2e", "tCO₂", "tCO₂e", "吨二氧化碳", "吨二氧化碳当量")
_define(_dim(carbon=1), 1, "tC", "吨碳")
_define(TIME, 1, "a", "yr", "year", "年")
_define(_dim(), 1, "1", "fraction")
_define(_dim(), Fraction(1, 100), "%", "percent")

_PER_YEAR = _dim(time=-1)


@dataclasses.dataclass(frozen=True)
class Unit:
    symbol: str  #: as written by the user, trimmed
    dimension: Dimension
    factor: Fraction  #: multiply a value in this unit by `factor` to get base units

    @property
    def is_annual(self) -> bool:
        return dict(self.dimension).get("time") == -1

    def without_per_year(self) -> Dimension:
        if not self.is_annual:
            return self.dimension
        return tuple(p for p in self.dimension if p[0] != "time")


class UnitError(ValidationFailed):
    code, title = "unit-error", "Unknown or incompatible unit"


def combine(a: Dimension, b: Dimension, sign: int) -> Dimension:
    """The dimension of a product (sign 1) or a quotient (sign -1) of `a` and `b`."""
    exps = dict(a)
    for name, exp in b:
        exps[name] = exps.get(name, 0) + sign * exp
    return _dim(**exps)


def _parse_term(term: str) -> tuple[Dimension, Fraction]:
    factor = Fraction(1)
    while term and term[0] in MAGNITUDES and term not in _BASE:
        factor *= MAGNITUDES[term[0]]
        term = term[1:]
    if term not in _BASE:
        raise KeyError(term)
    dimension, base_factor = _BASE[term]
    return dimension, factor * base_factor


@lru_cache(maxsize=1024)
def parse_unit(text: str) -> Unit:
    """Parse a unit; raises UnitError for anything not in the table."""
    symbol = (text or "").strip()
    normalized = re.sub(r"\s+", "", symbol).replace("每", "/")
    parts = normalized.split("/") if normalized else []
    if not parts or len(parts) > 3 or not all(parts):
        raise UnitError(f"unknown unit {text!r}", errors=[{"field": "unit", "message":
                                                              f"unknown unit {text!r}"}])
    try:
        dimension, factor = _parse_term(parts[0])
        for denominator in parts[1:]:
            d_dim, d_factor = _parse_term(denominator)
            dimension, factor = combine(dimension, d_dim, -1), factor / d_factor
    except KeyError as exc:
        raise UnitError(f"unknown unit {text!r} (part {exc.args[0]!r} not recognised)",
                        errors=[{"field": "unit", "message": f"unknown unit {text!r}"}]) from None
    return Unit(symbol, dimension, factor)


def compatible(a: str | Unit, b: str | Unit, *, annual: bool = False) -> bool:
    """Same dimension; with `annual=True` a per-year suffix on either side is ignored."""
    ua = a if isinstance(a, Unit) else parse_unit(a)
    ub = b if isinstance(b, Unit) else parse_unit(b)
    if annual:
        return ua.without_per_year() == ub.without_per_year()
    return ua.dimension == ub.dimension


def conversion_factor(from_unit: str | Unit, to_unit: str | Unit, *,
                      annual: bool = False) -> Fraction:
    """Exact factor f with value_in_to = value_in_from * f; UnitError if dimensions differ."""
    source = from_unit if isinstance(from_unit, Unit) else parse_unit(from_unit)
    target = to_unit if isinstance(to_unit, Unit) else parse_unit(to_unit)
    if not compatible(source, target, annual=annual):
        message = (f"unit {source.symbol!r} cannot be converted to {target.symbol!r}: "
                   f"different dimensions")
        raise UnitError(message, errors=[{"field": "unit", "message": message}])
    return source.factor / target.factor


def convert(value: float | Fraction, from_unit: str | Unit, to_unit: str | Unit, *,
            annual: bool = False) -> float | Fraction:
    """Convert a value; exact for int/Fraction input, float for float input."""
    factor = conversion_factor(from_unit, to_unit, annual=annual)
    if isinstance(value, float):
        return value * factor.numerator / factor.denominator
    return value * factor


def dimension_name(unit: str | Unit) -> str:
    """Human name of a unit's dimension, e.g. 'mass', 'money/volume', 'mass/time'."""
    dimension = (unit if isinstance(unit, Unit) else parse_unit(unit)).dimension
    return show_dimension(dimension) if dimension else "1"


def show_dimension(dimension: Dimension) -> str:
    """A dimension as text, e.g. 'mass', 'money/volume'; 'a pure number' when it has none."""
    if not dimension:
        return "a pure number"
    top = [n if e == 1 else f"{n}^{e}" for n, e in dimension if e > 0]
    bottom = [n if e == -1 else f"{n}^{-e}" for n, e in dimension if e < 0]
    text = "*".join(top) or "1"
    return f"{text}/{'*'.join(bottom)}" if bottom else text
