"""Units: exact Chinese magnitudes, dimensions, per-year flows."""

from __future__ import annotations

from fractions import Fraction

import pytest

from ecovalue.units import UnitError, compatible, conversion_factor, convert, parse_unit


@pytest.mark.parametrize("unit,base,expected", [
    ("万t", "t", 10_000),
    ("亿m³", "m3", 100_000_000),
    ("亿kWh", "kWh", 100_000_000),
    ("万人次", "person-times", 10_000),
    ("万元", "yuan", 10_000),
    ("亿元", "元", 100_000_000),
    ("万hm²", "ha", 10_000),
    ("万m²", "m2", 10_000),
    ("km2", "ha", 100),
    ("亩", "ha", Fraction(1, 15)),
    ("kg", "t", Fraction(1, 1000)),
    ("元/吨", "yuan/t", 1),
    ("万元/hm2", "yuan/ha", 10_000),
    ("yuan/m3", "元/方", 1),
    ("%", "fraction", Fraction(1, 100)),
])
def test_exact_factors(unit, base, expected):
    assert conversion_factor(unit, base) == expected


def test_exact_values():
    assert convert(3, "亿m³", "m3") == 300_000_000
    assert convert(Fraction(15), "亩", "ha") == 1
    assert convert(1.5, "万t", "t") == 15_000.0
    assert convert(30.0, "亩", "ha") == 2.0


@pytest.mark.parametrize("a,b", [("t", "m3"), ("万元", "t"), ("tC", "tCO2"), ("ha", "m"),
                                 ("yuan/t", "yuan/m3"), ("t/a", "t")])
def test_wrong_dimension_is_refused(a, b):
    assert not compatible(a, b)
    with pytest.raises(UnitError):
        conversion_factor(a, b)


def test_annual_flows():
    assert parse_unit("t/a").is_annual and not parse_unit("t").is_annual
    assert compatible("万t", "t/a", annual=True)
    assert conversion_factor("亿m³", "m3/a", annual=True) == 100_000_000
    assert not compatible("万t", "m3/a", annual=True)


@pytest.mark.parametrize("text", ["", "furlong", "万", "t//a", "m3/", "xt", "万万"])
def test_unknown_units(text):
    with pytest.raises(UnitError):
        parse_unit(text)
