"""The indicator registry, as data.

Built-in indicators come from the package's reference files (no code change to adjust them):

- `reference/gep_indicators.csv`: code, category, names, physical quantity, method, formula text,
  status and source, as the national specification lists them (a copy of the shared reference);
- `reference/indicator_rules.csv`: accepted quantity units, item vocabulary, whether a quantity in
  yuan (output value, revenue) is its own value, whether negative quantities are possible,
  whether the indicator is on by default, which indicators it double counts with, and whether
  the grid route computes it;
- `reference/indicator_terms.csv`: the value formula(s) in the safe expression language of
  `valuation.expressions`, one row per additive term (R-SOIL has three);
- `reference/parameters.csv`: every price-book parameter a formula may name, with its unit.

Admins add custom indicators (`valuation.models.CustomIndicator`) in the same shape; both are
turned into `IndicatorDef`s here and checked the same way (formula whitelisted, every parameter
declared with a unit, result dimension is money).
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from ecovalue.units import MONEY, UnitError, parse_unit, show_dimension
from valuation import expressions
from valuation.expressions import Formula, FormulaError

CATEGORIES = ("provisioning", "regulating", "cultural")
CATEGORY_PREFIX = {"provisioning": "P", "regulating": "R", "cultural": "C"}
CODE_RE = re.compile(r"^[PRC]-[A-Z0-9]{2,12}(-[A-Z0-9]{1,12})?\Z")
#: an item (product, pollutant, sector, site): 1-40 characters, no dot (it separates the item
#: in a parameter name: agri_price.水稻), no control characters, no outer spaces
ITEM_RE = re.compile(r"^[^\s.\x00-\x1f\x7f]([^.\x00-\x1f\x7f]{0,38}[^\s.\x00-\x1f\x7f])?\Z")

#: ecosystem types (GB/T 46869-2025 / MEE 2020 first-level classes); rows without one are
#: "unspecified" and still count in every total
ECOSYSTEM_TYPES = ("forest", "shrubland", "grassland", "wetland", "farmland", "urban", "desert",
                   "glacier", "marine", "other", "unspecified")
ECOSYSTEM_ALIASES = {
    "森林": "forest", "灌丛": "shrubland", "草地": "grassland", "湿地": "wetland",
    "农田": "farmland", "城镇": "urban", "荒漠": "desert", "冰川": "glacier", "冰川积雪": "glacier",
    "海洋": "marine", "其他": "other", "未分类": "unspecified", "": "unspecified",
    "shrub": "shrubland", "cropland": "farmland", "water": "wetland",
}

#: indicators whose items are the national method's sub-items (not an open product list)
SUB_ITEM_INDICATORS = ("R-SOIL", "R-FLOOD", "R-CLIM")

#: the placeholder for "the canonical unit of the quantity row" in a parameter's unit
Q_PLACEHOLDER = "{Q}"


class DefinitionError(ValueError):
    """An indicator definition is inconsistent; `problems` lists every issue found."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(p["message"] for p in problems))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    name: str  #: `reservoir_cost`, or `abatement_cost[]` for a per-item parameter
    unit: str  #: expected unit; may contain {Q}
    kind: str  #: price (index-adjusted) or coefficient (physical, never adjusted)
    description: str = ""

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Term:
    name: str
    formula: str
    #: the sub-item whose rows this term values ("" = rows without a sub-item of their own:
    #: every item of an open vocabulary, and rows with no item)
    item: str = ""
    #: the canonical quantity unit it applies to ("" = every accepted unit)
    unit: str = ""

    @property
    def parsed(self) -> Formula:
        return expressions.parse(self.formula)

    def to_dict(self) -> dict[str, str]:
        data = {"name": self.name, "formula": self.formula}
        if self.item:
            data["item"] = self.item
        if self.unit:
            data["unit"] = self.unit
        return data


#: Chinese names of the national method's sub-items (items that have terms of their own, or
#: that split an indicator by source) and of the other closed item lists (water sectors,
#: pollutants), accepted in quantity tables beside the codes
SUB_ITEM_ALIASES = {
    "减少泥沙淤积": "sediment", "泥沙淤积": "sediment", "减少泥沙": "sediment", "泥沙": "sediment",
    "减少氮面源污染": "nitrogen", "减少氮": "nitrogen", "氮": "nitrogen", "N": "nitrogen",
    "减少磷面源污染": "phosphorus", "减少磷": "phosphorus", "磷": "phosphorus",
    "P": "phosphorus",
    "湖泊": "lake", "湖泊调蓄": "lake", "水库": "reservoir", "水库调蓄": "reservoir",
    "沼泽": "marsh", "沼泽调蓄": "marsh",
    "植被蒸腾": "transpiration", "蒸腾": "transpiration", "植被蒸腾降温增湿": "transpiration",
    "水面蒸发": "evaporation", "蒸发": "evaporation", "水面蒸发降温增湿": "evaporation",
    # the closed item lists of the standard tables (water sectors, pollutants) as papers and
    # statistical yearbooks name them
    "生活": "domestic", "生活用水": "domestic", "生活用水量": "domestic",
    "工业": "industrial", "工业用水": "industrial", "工业用水量": "industrial",
    "农业": "agricultural", "农业用水": "agricultural", "农业用水量": "agricultural",
    "生态": "ecological", "生态用水": "ecological", "生态环境用水": "ecological",
    "二氧化硫": "SO2", "氮氧化物": "NOx", "粉尘": "dust", "工业粉尘": "dust",
    "化学需氧量": "COD", "氨氮": "NH3-N", "总氮": "TN", "总磷": "TP",
}


@dataclasses.dataclass(frozen=True)
class IndicatorDef:
    code: str
    category: str
    name_zh: str
    name_en: str
    quantity_units: tuple[str, ...]  #: accepted canonical units; rows convert to the first match
    terms: tuple[Term, ...]
    parameters: Mapping[str, ParameterSpec]  #: every parameter the terms name
    items: tuple[str, ...] | None = ()  #: allowed items; None = open vocabulary; () = none
    money_quantity: bool = False  #: a quantity in yuan is its own value (output value, revenue)
    allow_negative: bool = False
    default_enabled: bool = True
    double_counts_with: tuple[str, ...] = ()
    grid: bool = False
    physical_quantity: str = ""
    valuation_method: str = ""
    value_formula_text: str = ""
    status: str = "standard"
    source: str = ""
    note: str = ""
    custom: bool = False

    @property
    def optional(self) -> bool:
        return not self.default_enabled

    def canonical_unit(self, unit: str) -> str | None:
        """The accepted unit `unit` converts to, or None if its dimension fits none."""
        parsed = parse_unit(unit)
        for candidate in self.quantity_units:
            if parsed.without_per_year() == parse_unit(candidate).without_per_year():
                return candidate
        return None

    @property
    def sub_items(self) -> tuple[str, ...]:
        """The items that are sub-items of the national method (R-SOIL: sediment, nitrogen,
        phosphorus; R-FLOOD: lake, reservoir, marsh; R-CLIM: transpiration, evaporation):
        each is its own result row, they sum to the indicator, and giving both the indicator
        and its sub-items for one region and ecosystem type counts twice."""
        return self.items if self.items and self.code in SUB_ITEM_INDICATORS else ()

    def terms_for(self, item: str, unit: str) -> tuple[Term, ...]:
        """The terms that value rows of `item` in canonical `unit`: the item's own terms
        where it has some, else the general ones; each only for its unit if it names one."""
        own = [t for t in self.terms if t.item and t.item == item]
        chosen = own if own else [t for t in self.terms if not t.item]
        return tuple(t for t in chosen if not t.unit or t.unit == unit)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["parameters"] = {k: v.to_dict() for k, v in sorted(self.parameters.items())}
        data["terms"] = [t.to_dict() for t in self.terms]
        data["quantity_units"] = list(self.quantity_units)
        data["items"] = None if self.items is None else list(self.items)
        data["double_counts_with"] = list(self.double_counts_with)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndicatorDef:
        values = dict(data)
        values["parameters"] = {k: ParameterSpec(**v) for k, v in values["parameters"].items()}
        values["terms"] = tuple(Term(**t) for t in values["terms"])
        values["quantity_units"] = tuple(values["quantity_units"])
        values["items"] = None if values.get("items") is None else tuple(values["items"])
        values["double_counts_with"] = tuple(values.get("double_counts_with") or ())
        return cls(**values)


# --- reference files -----------------------------------------------------------------------------


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("valuation").joinpath(f"reference/{name}").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split("|") if p.strip())


def _flag(text: str) -> bool:
    return text.strip().lower() == "true"


@lru_cache(maxsize=1)
def builtin_parameters() -> dict[str, ParameterSpec]:
    """Parameter specs of the built-in formulas (reference/parameters.csv)."""
    return {row["name"]: ParameterSpec(row["name"], row["unit"], row["kind"], row["description"])
            for row in _read_csv("parameters.csv")}


@lru_cache(maxsize=1)
def builtin_indicators() -> dict[str, IndicatorDef]:
    """The built-in registry, in the order of gep_indicators.csv."""
    rules = {row["code"]: row for row in _read_csv("indicator_rules.csv")}
    terms: dict[str, list[Term]] = {}
    for row in _read_csv("indicator_terms.csv"):
        terms.setdefault(row["code"], []).append(Term(row["term"], row["formula"],
                                                      row.get("item") or "",
                                                      row.get("unit") or ""))
    specs = builtin_parameters()
    registry: dict[str, IndicatorDef] = {}
    for row in _read_csv("gep_indicators.csv"):
        code = row["code"]
        rule = rules[code]
        items = rule["items"].strip()
        definition_terms = tuple(terms[code])
        names: set[str] = set()
        for term in definition_terms:
            names.update(term.parsed.parameters)
        registry[code] = IndicatorDef(
            code=code, category=row["category"], name_zh=row["name_zh"], name_en=row["name_en"],
            quantity_units=_split(rule["quantity_units"]), terms=definition_terms,
            parameters={n: specs[n] for n in sorted(names)},
            items=None if items == "*" else _split(items),
            money_quantity=_flag(rule["money_quantity"]),
            allow_negative=_flag(rule["allow_negative"]),
            default_enabled=_flag(rule["default_enabled"]),
            double_counts_with=_split(rule["double_counts_with"]), grid=_flag(rule["grid"]),
            physical_quantity=row["physical_quantity"], valuation_method=row["valuation_method"],
            value_formula_text=row["value_formula"], status=row["status"], source=row["source"],
            note=rule["note"],
        )
    for definition in registry.values():
        problems = check_definition(definition, registry)
        if problems:  # pragma: no cover - the reference files are tested
            raise DefinitionError(problems)
    return registry


# --- checks ----------------------------------------------------------------------------------


def substitute_q(unit: str, quantity_unit: str) -> str:
    """`yuan/{Q}` with Q = `m3` -> `yuan/m3`."""
    return unit.replace(Q_PLACEHOLDER, quantity_unit)


def check_definition(definition: IndicatorDef,
                     known: Mapping[str, IndicatorDef] | None = None) -> list[dict[str, str]]:
    """Every problem of a definition (empty when fine): code and category agree, units parse,
    terms are whitelisted formulas that use Q and every parameter they name is declared, and
    each term's result is money for every accepted quantity unit."""
    problems: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        problems.append({"field": field, "message": message})

    if not CODE_RE.match(definition.code):
        bad("code", "code must look like R-NOISE: P-, R- or C- then 2-12 capitals or digits")
    elif definition.category not in CATEGORIES:
        bad("category", f"category must be one of {', '.join(CATEGORIES)}")
    elif definition.code[0] != CATEGORY_PREFIX[definition.category]:
        bad("code", f"a {definition.category} indicator's code starts with "
                    f"{CATEGORY_PREFIX[definition.category]}-")
    if not definition.quantity_units:
        bad("quantity_units", "at least one quantity unit is required")
    for unit in definition.quantity_units:
        try:
            parsed = parse_unit(unit)
        except UnitError:
            bad("quantity_units", f"unknown unit {unit!r}")
            continue
        if parsed.without_per_year() == MONEY:
            bad("quantity_units", "a quantity unit cannot be money; use money_quantity for "
                                  "output values")
    if definition.items is not None:
        for item in definition.items:
            if not ITEM_RE.match(item):
                bad("items", f"invalid item name {item!r}")
    for other in definition.double_counts_with:
        if other == definition.code:
            bad("double_counts_with", "an indicator cannot double count with itself")
        elif known is not None and other not in known:
            bad("double_counts_with", f"unknown indicator {other!r}")
    if not definition.terms:
        bad("terms", "at least one value term is required")
    names = [t.name for t in definition.terms]
    if len(set(names)) != len(names):
        bad("terms", "term names must be unique")
    for spec in definition.parameters.values():
        try:
            parse_unit(substitute_q(spec.unit, "t"))
        except UnitError:
            bad(f"parameters.{spec.name}", f"unknown unit {spec.unit!r}")
        if spec.kind not in ("price", "coefficient"):
            bad(f"parameters.{spec.name}", "kind must be price or coefficient")
    if problems:
        return problems
    for term in definition.terms:
        field = f"terms.{term.name}"
        try:
            formula = term.parsed
        except FormulaError as exc:
            bad(field, str(exc))
            continue
        if not formula.uses_quantity:
            bad(field, "each term must use the quantity Q, so that value follows quantity")
        missing = [n for n in formula.parameters if n not in definition.parameters]
        if missing:
            bad(field, "undeclared parameter(s): " + ", ".join(m.replace("[]", "[item]")
                                                             for m in missing))
            continue
        if formula.item_parameters and definition.items == ():
            bad(field, "name[item] needs an item vocabulary (items)")
        if term.item and (definition.items is None or term.item not in definition.items):
            bad(field, f"item {term.item!r} is not one of the indicator's items")
        if term.unit and term.unit not in definition.quantity_units:
            bad(field, f"unit {term.unit!r} is not one of the indicator's quantity units")
        for unit in definition.quantity_units:
            if term.unit and unit != term.unit:
                continue
            dims = {expressions.QUANTITY: parse_unit(unit).without_per_year()}
            for name, spec in definition.parameters.items():
                dims[name] = parse_unit(substitute_q(spec.unit, unit)).dimension
            try:
                result = expressions.dimension_of(formula, dims)
            except FormulaError as exc:
                bad(field, str(exc))
                break
            if result != MONEY:
                bad(field, f"with Q in {unit} the term gives "
                           f"{show_dimension(result)}, not yuan")
                break
    return problems


def merge(builtin: Mapping[str, IndicatorDef],
          custom: Iterable[IndicatorDef]) -> dict[str, IndicatorDef]:
    registry = dict(builtin)
    for definition in custom:
        registry[definition.code] = definition
    return registry


def normalize_ecosystem_type(value: str | None) -> str | None:
    """The canonical ecosystem type of `value` (English code or Chinese name), None if unknown."""
    text = (value or "").strip()
    if text in ECOSYSTEM_TYPES:
        return text
    lowered = text.lower()
    if lowered in ECOSYSTEM_TYPES:
        return lowered
    return ECOSYSTEM_ALIASES.get(text, ECOSYSTEM_ALIASES.get(lowered))


def parameter_unit_dimension(spec: ParameterSpec, quantity_unit: str) -> Any:
    return parse_unit(substitute_q(spec.unit, quantity_unit)).dimension
