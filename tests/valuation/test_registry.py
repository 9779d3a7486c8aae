"""The indicator registry is data and complete: every reference indicator, checked formulas."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from valuation import registry
from valuation.registry import IndicatorDef, ParameterSpec, Term


def test_every_indicator_of_the_reference_file_is_in_the_registry():
    text = resources.files("valuation").joinpath("reference/gep_indicators.csv").read_text()
    codes = [row["code"] for row in csv.DictReader(text.splitlines())]
    assert list(registry.builtin_indicators()) == codes
    assert len(codes) == 18


def test_the_package_copy_of_the_reference_file_is_the_shared_one():
    shared = resources.files("valuation").joinpath("reference/gep_indicators.csv").read_text()
    assert "R-O2,regulating,释氧" in shared and "C-LAND" in shared


def test_every_builtin_definition_passes_the_checks():
    known = registry.builtin_indicators()
    for definition in known.values():
        assert registry.check_definition(definition, known) == [], definition.code


def test_oxygen_is_optional_and_off_by_default_and_guards_carbon():
    known = registry.builtin_indicators()
    assert not known["R-O2"].default_enabled and known["R-O2"].optional
    assert "R-CARB" in known["R-O2"].double_counts_with
    assert "R-O2" in known["R-CARB"].double_counts_with
    assert known["R-CARB"].allow_negative and not known["R-WCON"].allow_negative


def _custom(**changes):
    data = {"code": "R-NOISE", "category": "regulating", "name_zh": "降噪",
            "name_en": "Noise reduction", "quantity_units": ("m2",),
            "terms": (Term("value", "Q * noise_price"),),
            "parameters": {"noise_price": ParameterSpec("noise_price", "yuan/m2", "price")},
            "custom": True}
    data.update(changes)
    return IndicatorDef(**data)


@pytest.mark.parametrize(("changes", "message"), [
    ({}, None),
    ({"code": "P-NOISE"}, "starts with R-"),
    ({"code": "noise"}, "code must look like"),
    ({"terms": (Term("value", "noise_price * 2"),)}, "must use the quantity Q"),
    ({"terms": (Term("value", "Q * unknown_price"),)}, "undeclared parameter"),
    ({"terms": (Term("value", "Q * noise_price + Q"),)}, "cannot add"),
    ({"parameters": {"noise_price": ParameterSpec("noise_price", "yuan/t", "price")}},
     "not yuan"),
    ({"terms": (Term("value", "Q ** 2 * noise_price"),)}, "Pow is not allowed"),
    ({"quantity_units": ("万元",)}, "cannot be money"),
    ({"quantity_units": ("furlong",)}, "unknown unit"),
    ({"double_counts_with": ("R-NOPE",)}, "unknown indicator"),
])
def test_custom_definitions_are_checked(changes, message):
    problems = registry.check_definition(_custom(**changes), registry.builtin_indicators())
    if message is None:
        assert problems == []
    else:
        assert any(message in p["message"] for p in problems), problems


def test_ecosystem_types_accept_chinese_names():
    assert registry.normalize_ecosystem_type("森林") == "forest"
    assert registry.normalize_ecosystem_type(None) == "unspecified"
    assert registry.normalize_ecosystem_type("Forest") == "forest"
    assert registry.normalize_ecosystem_type("jungle") is None
