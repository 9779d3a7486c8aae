"""Controlled vocabularies of the catalog (pure: data in, answers out).

- Product types (catalog/reference/product_types.csv): each belongs to a category and to one
  GEP indicator code of the national accounting specification (the codes of
  valuation/reference/gep_indicators.csv: P-AGR, P-FOR, R-CARB, R-WCON, C-REC ...), and names
  the unit whose *dimension* a product's quantity must have (tea: mass; timber: volume; carbon
  sink parcel: tCO2 per year).
- Monitoring metrics (catalog/reference/metrics.csv): what can be observed of a product, with
  the unit whose dimension the value must have (`output` takes the product type's).
- Labels of the small enumerations, in English codes and the Chinese a county spreadsheet uses,
  so imports accept either (所有权 = ownership).
- Synonyms (catalog/reference/synonyms.csv, plus those an admin adds: table
  `vocabulary_synonyms`): the standard GEP wording (物质产品) and everyday names (林下食用菌,
  森林碳汇 ...) a county file uses. Every spelling is matched after `normalize_term`
  (full-width to half-width, spaces removed, case folded); a spelling names one code only.
"""

from __future__ import annotations

import calendar
import csv
import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources

from ecovalue.clock import local_today
from ecovalue.units import Unit, UnitError, compatible, parse_unit


@dataclasses.dataclass(frozen=True)
class ProductType:
    code: str
    category: str
    name_zh: str
    name_en: str
    indicator_code: str  #: GEP indicator this product's quantity feeds
    quantity_unit: str  #: reference unit; a product's quantity must have its dimension
    description: str


@dataclasses.dataclass(frozen=True)
class Metric:
    code: str
    name_zh: str
    name_en: str
    unit: str  #: reference unit, or "type" for the product type's quantity unit
    flow: bool  #: an amount per period: a per-year suffix on the unit is ignored when comparing
    allows_negative: bool
    description: str


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("catalog").joinpath(f"reference/{name}").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def product_types() -> dict[str, ProductType]:
    return {r["code"]: ProductType(**r) for r in _rows("product_types.csv")}


@cache
def metrics() -> dict[str, Metric]:
    return {
        r["code"]: Metric(
            code=r["code"], name_zh=r["name_zh"], name_en=r["name_en"], unit=r["unit"],
            flow=r["flow"] == "true", allows_negative=r["allows_negative"] == "true",
            description=r["description"],
        )
        for r in _rows("metrics.csv")
    }


CATEGORY_LABELS = {"provisioning": "物质供给", "regulating": "调节服务", "cultural": "文化服务"}
RIGHTS_TYPE_LABELS = {"ownership": "所有权", "contract_management": "承包经营权", "use": "使用权"}
DEVELOPMENT_STATUS_LABELS = {"not_developed": "未开发", "developing": "开发中",
                             "developed": "已开发", "traded": "已交易"}
METHOD_LABELS = {"field_survey": "实地调查", "remote_sensing": "遥感监测",
                 "grid_monitoring": "网格化监测", "statistical_yearbook": "统计年鉴",
                 "model_estimate": "模型估算"}
STATUS_LABELS = {"draft": "草稿", "registered": "已登记", "verified": "已核验",
                 "suspended": "已暂停", "retired": "已注销"}
PARTY_KIND_LABELS = {"government": "政府机构", "village_collective": "村集体经济组织",
                     "cooperative": "合作社", "household": "农户", "enterprise": "企业"}

#: extra spellings accepted in spreadsheets
_ALIASES = {
    "rights_type": {"承包权": "contract_management", "经营权": "contract_management",
                    "承包经营": "contract_management", "contract": "contract_management",
                    "management": "contract_management", "集体所有": "ownership"},
    "party_kind": {"村集体": "village_collective", "村集体经济组织": "village_collective",
                   "村股份经济合作社": "village_collective", "集体": "village_collective",
                   "专业合作社": "cooperative", "农民专业合作社": "cooperative",
                   "家庭": "household", "个人": "household", "农户家庭": "household",
                   "公司": "enterprise", "企业法人": "enterprise", "政府": "government",
                   "机关": "government", "事业单位": "government"},
    "method": {"实地调查监测": "field_survey", "野外调查": "field_survey", "遥感": "remote_sensing",
               "网格监测": "grid_monitoring", "统计": "statistical_yearbook",
               "年鉴": "statistical_yearbook", "模型": "model_estimate"},
}


#: the vocabularies a spreadsheet cell is looked up in (and synonyms may extend)
VOCABULARIES = ("type", "category", "rights_type", "development_status", "metric", "method",
                "party_kind")


def normalize_term(text: str) -> str:
    """A spelling as compared: NFKC (full-width letters, digits and brackets to half-width),
    without any white space (also the ideographic space), case-folded."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text))).casefold()


@dataclasses.dataclass(frozen=True)
class Synonym:
    vocabulary: str
    term: str
    code: str
    note: str = ""


def _lookup(labels: dict[str, str], aliases: dict[str, str]) -> dict[str, str]:
    table = {code: code for code in labels}
    table.update({label: code for code, label in labels.items()})
    table.update(aliases)
    return {normalize_term(k): v for k, v in table.items()}


@cache
def reference_synonyms() -> tuple[Synonym, ...]:
    """The synonyms shipped with the catalog (reference/synonyms.csv)."""
    return tuple(Synonym(r["vocabulary"], r["term"], r["code"], r["note"])
                 for r in _rows("synonyms.csv"))


def codes(vocabulary: str) -> set[str]:
    """The codes of a vocabulary."""
    return set(_base_tables()[vocabulary].values())


@cache
def _base_tables() -> dict[str, dict[str, str]]:
    types = {t.code: t.name_zh for t in product_types().values()}
    type_table = _lookup(types, {t.name_en: t.code for t in product_types().values()})
    metric_table = _lookup({m.code: m.name_zh for m in metrics().values()},
                           {m.name_en: m.code for m in metrics().values()})
    return {
        "type": type_table,
        "metric": metric_table,
        "category": _lookup(CATEGORY_LABELS, {}),
        "rights_type": _lookup(RIGHTS_TYPE_LABELS, _ALIASES["rights_type"]),
        "development_status": _lookup(DEVELOPMENT_STATUS_LABELS, {}),
        "method": _lookup(METHOD_LABELS, _ALIASES["method"]),
        "party_kind": _lookup(PARTY_KIND_LABELS, _ALIASES["party_kind"]),
    }


def synonym_error(tables: dict[str, dict[str, str]], synonym: Synonym) -> str | None:
    """Why `synonym` cannot join `tables`: an unknown vocabulary or code, or a spelling that
    already names another code (a synonym maps to one code only). None if it can."""
    if synonym.vocabulary not in tables:
        return f"unknown vocabulary {synonym.vocabulary!r} (one of {', '.join(VOCABULARIES)})"
    if synonym.code not in codes(synonym.vocabulary):
        return f"{synonym.code!r} is not a code of the {synonym.vocabulary} vocabulary"
    key = normalize_term(synonym.term)
    if not key:
        return "the term is empty"
    taken = tables[synonym.vocabulary].get(key)
    if taken is not None and taken != synonym.code:
        return (f"{synonym.term!r} already means {taken} in the {synonym.vocabulary} "
                f"vocabulary: a synonym maps to one code only")
    return None


def with_synonyms(synonyms: Iterable[Synonym]) -> dict[str, dict[str, str]]:
    """The lookup tables extended by `synonyms` (e.g. those of the database); a synonym that
    contradicts a spelling already there raises ValueError (the table keeps one meaning)."""
    tables = {name: dict(table) for name, table in _base_tables().items()}
    for synonym in synonyms:
        if (message := synonym_error(tables, synonym)) is not None:
            raise ValueError(message)
        tables[synonym.vocabulary][normalize_term(synonym.term)] = synonym.code
    return tables


@cache
def lookup_tables() -> dict[str, dict[str, str]]:
    """field -> {accepted spelling (normalize_term) -> code}: codes, labels and the shipped
    synonyms (the service adds the database's: `catalog.services.synonyms.lookup_tables`)."""
    return with_synonyms(reference_synonyms())


def to_code(field: str, value: str) -> str | None:
    """The code for a spelling of `field` (code, Chinese or English label), None if unknown."""
    return lookup_tables()[field].get(normalize_term(value))


def quantity_unit_error(type_code: str, unit: str) -> str | None:
    """Why `unit` cannot measure the quantity of a product of `type_code`, or None."""
    product_type = product_types()[type_code]
    try:
        parsed = parse_unit(unit)
    except UnitError:
        return f"unknown unit {unit!r}"
    if not compatible(parsed, product_type.quantity_unit, annual=True):
        return (f"unit {unit!r} does not measure a {product_type.name_en.lower()} quantity "
                f"(expected a unit like {product_type.quantity_unit!r})")
    return None


def metric_unit(metric_code: str, type_code: str) -> str:
    """The reference unit of a metric for a product of `type_code`."""
    metric = metrics()[metric_code]
    return product_types()[type_code].quantity_unit if metric.unit == "type" else metric.unit


def metric_unit_error(metric_code: str, type_code: str, unit: str) -> str | None:
    """Why `unit` cannot carry `metric_code` for a product of `type_code`, or None."""
    metric = metrics()[metric_code]
    expected = metric_unit(metric_code, type_code)
    try:
        parsed: Unit = parse_unit(unit)
    except UnitError:
        return f"unknown unit {unit!r}"
    annual = metric.flow or parse_unit(expected).is_annual
    if not compatible(parsed, expected, annual=annual):
        return (f"unit {unit!r} cannot carry metric {metric_code} "
                f"(expected a unit like {expected!r})")
    return None


#: Qianxinan Prefecture's extent in WGS84 degrees (about 24.6-26.2 N, 104.6-106.5 E) with a
#: margin: a point outside it is almost always swapped latitude/longitude or a typo.
PREFECTURE_BOUNDS = {"lat_min": 24.3, "lat_max": 26.5, "lon_min": 104.3, "lon_max": 106.8}


def location_error(latitude: float | None, longitude: float | None) -> str | None:
    """Why a WGS84 point cannot be a location in the prefecture, or None."""
    if latitude is None and longitude is None:
        return None
    if latitude is None or longitude is None:
        return "give both latitude and longitude, or neither"
    b = PREFECTURE_BOUNDS
    if not (b["lat_min"] <= latitude <= b["lat_max"] and b["lon_min"] <= longitude <= b["lon_max"]):
        hint = " (latitude and longitude swapped?)" if (
            b["lat_min"] <= longitude <= b["lat_max"] and b["lon_min"] <= latitude <= b["lon_max"]
        ) else ""
        return (f"({latitude}, {longitude}) lies outside Qianxinan Prefecture "
                f"(latitude {b['lat_min']}-{b['lat_max']}, longitude "
                f"{b['lon_min']}-{b['lon_max']}){hint}")
    return None


def period_bounds(year: int, month: int | None) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of a year, or of a month of it."""
    if month is None:
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, 1), dt.date(year, month, last)


#: the earliest year a monitoring record may describe
FIRST_YEAR = 1949


def period_error(year: int, month: int | None) -> str | None:
    """Why (year, month) is not a period that can have been observed, or None."""
    if month is not None and not 1 <= month <= 12:
        return "month must be 1-12 (empty for a whole year)"
    if year < FIRST_YEAR:
        return f"year must be {FIRST_YEAR} or later"
    today = local_today()
    if (year, month or 1) > (today.year, today.month if month else 1):
        return "the period lies in the future"
    return None
