"""Reading and checking catalog spreadsheets (pure: bytes in, a checked table and its errors
out; the database is the service's business, in catalog.services.importing).

- Reading is the shell's (ecovalue.spreadsheet, shared with valuation's quantity tables): CSV
  (comma, semicolon or tab separated) in UTF-8 (with or without BOM) or GBK/GB18030, as Chinese
  government spreadsheets often are; XLSX (first sheet). Legacy .xls and anything else is
  refused as not a spreadsheet.
- Headers: the English column names of the template or their Chinese labels (产品名称, 行政区划
  代码, 权利人 ...), case and spacing ignored. A title line above the header (a merged
  "XX县生态产品目录清单" row) is skipped: the header is the first of the first ten lines that names
  every required column. Columns the importer does not know are reported and ignored; a row
  with more fields than the header refuses the file.
- Errors are collected like a compiler does, never stopping at the first: each has the file's
  row number (1-based, as a spreadsheet program shows it), the column as written in the file,
  and a message.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from catalog import vocabulary
from catalog.errors import ImportRejected, MissingColumns, NotASpreadsheet
from catalog.models import DEVELOPMENT_STATUSES
from catalog.vocabulary import normalize_term
from ecovalue import spreadsheet
from ecovalue.units import UnitError, parse_unit

#: a spreadsheet with more data rows is refused (split it): keeps one request bounded
MAX_ROWS = 200_000
#: at most this many errors are listed (the total is always given)
MAX_REPORTED_ERRORS = 10_000


@dataclasses.dataclass(frozen=True)
class Column:
    name: str  #: canonical name (the template's header)
    required: bool
    aliases: tuple[str, ...] = ()
    description: str = ""


PRODUCT_COLUMNS: tuple[Column, ...] = (
    Column("external_code", False, ("产品编号", "编号", "目录编号"), "the county's own number"),
    Column("name_zh", True, ("产品名称", "名称", "name"), "Chinese name"),
    Column("name_en", False, ("英文名称",), "English name"),
    Column("category", False, ("产品类别", "类别", "产品大类"), "checked against the type"),
    Column("type", True, ("产品类型", "类型", "type_code", "产品小类"),
           "code, Chinese name or synonym of the type"),
    Column("region_code", False, ("行政区划代码", "区划代码", "所在地代码", "region"),
           "county (6), township (9) or village (12 digits) code; or the place by name"),
    Column("county_name", False, ("县(市)", "县(市、区)", "县(区)", "县市区", "县", "county"),
           "county name, e.g. 望谟县 (with 乡镇 and 村: the place by name)"),
    Column("township_name", False, ("乡镇", "乡(镇)", "乡镇(街道)", "乡镇街道", "township"),
           "township name under the county"),
    Column("village_name", False, ("村", "行政村", "村(社区)", "村社区", "village"),
           "village name under the township"),
    Column("location", False, ("所在地", "所在位置", "地点", "位置", "location"),
           "the whole place in one cell, e.g. 望谟县石屯镇打狼村"),
    Column("holder", True, ("权利人", "权益主体", "权属主体", "权利人名称", "holder_party_id"),
           "#party id, credit code, household ID-card number, or name (unique in the county); "
           "a holder not yet registered is created"),
    Column("holder_kind", False, ("权利人类型", "主体类型", "权利人性质"),
           "for a new holder: village_collective / cooperative / household / enterprise / "
           "government (村集体 / 合作社 / 农户 / 企业 / 政府)"),
    Column("holder_credit_code", False, ("统一社会信用代码", "信用代码", "权利人信用代码"),
           "the holder's unified social credit code"),
    Column("holder_id_number", False, ("身份证号", "身份证号码", "户主身份证号"),
           "a household holder's ID-card number (stored protected, never echoed)"),
    Column("holder_bank_account", False, ("银行账号", "银行卡号", "账号"),
           "a new household holder's bank account (stored protected)"),
    Column("holder_bank_name", False, ("开户行", "开户银行"), "its bank"),
    Column("rights_type", True, ("权利类型", "权属类型", "权属"),
           "ownership / contract_management / use (所有权 / 承包经营权 / 使用权)"),
    Column("area_ha", False, ("面积(公顷)", "面积（公顷）", "面积公顷", "面积", "area"),
           "hectares"),
    Column("latitude", False, ("纬度", "lat"), "WGS84 degrees"),
    Column("longitude", False, ("经度", "lon", "lng"), "WGS84 degrees"),
    Column("grid_cell_id", False, ("网格编号", "网格"), "monitoring grid cell"),
    Column("quantity", False, ("数量", "产量"), "stock or annual output"),
    Column("quantity_unit", False, ("数量单位", "单位", "unit"), "e.g. t, 万斤, m3, tCO2/a"),
    Column("quality_grade", False, ("质量等级", "等级"), ""),
    Column("development_status", False, ("开发状态", "开发利用状态"),
           "not_developed / developing / developed / traded (未开发 / 开发中 / 已开发 / 已交易)"),
    Column("brand", False, ("品牌",), ""),
    Column("certifications", False, ("认证", "认证情况"), "separated by ; or 、"),
    Column("note", False, ("备注",), "kept in the product's attributes"),
)

#: the columns that can say where a product lies (at least one must be present)
PLACE_COLUMNS = ("region_code", "county_name", "township_name", "village_name", "location")
#: written in a cell, clears the stored field (a blank cell leaves it as it is); compared after
#: normalising full-width brackets, so ［清空］ works too
CLEAR_MARKERS = ("[清空]", "[clear]")
_CLEAR_KEYS = {normalize_term(m) for m in CLEAR_MARKERS}
#: product fields a file cannot clear: the natural key, the holder and the right (a product
#: always has them), and the development status (it has a default, give it instead)
NOT_CLEARABLE = ("name_zh", "type", "region_code", "county_name", "township_name",
                 "village_name", "location", "holder", "holder_kind", "holder_credit_code",
                 "holder_id_number", "holder_bank_account", "holder_bank_name", "rights_type",
                 "development_status", "category", "external_code")

MONITORING_COLUMNS: tuple[Column, ...] = (
    Column("product_id", False, ("产品ID", "产品id"), "the catalog's product id"),
    Column("external_code", False, ("产品编号", "编号", "目录编号"), "with region_code"),
    Column("region_code", False, ("行政区划代码", "区划代码", "所在地代码"), "with name and type"),
    Column("type", False, ("产品类型", "类型", "type_code"), "with region_code and name_zh"),
    Column("name_zh", False, ("产品名称", "名称"), "with region_code and type"),
    Column("year", True, ("年份", "年度", "period_year"), "calendar year"),
    Column("month", False, ("月份", "period_month"), "1-12, empty for the whole year"),
    Column("metric", True, ("指标", "监测指标"), "code or Chinese name of the metric"),
    Column("value", True, ("数值", "值", "监测值"), "a number"),
    Column("unit", True, ("单位", "计量单位"), "of the metric's dimension"),
    Column("method", True, ("监测方法", "方法", "数据来源方式"),
           "field_survey / remote_sensing / grid_monitoring / statistical_yearbook / "
           "model_estimate"),
    Column("source", False, ("数据来源", "来源"), "report, yearbook table, survey id"),
    Column("note", False, ("备注",), ""),
)

PARTY_COLUMNS: tuple[Column, ...] = (
    Column("name_zh", True, ("名称", "姓名", "户主姓名", "主体名称", "权利人", "name"),
           "Chinese name (a household: the head's name)"),
    Column("kind", True, ("类型", "主体类型", "权利人类型", "kind"),
           "village_collective / cooperative / household / enterprise / government "
           "(村集体 / 合作社 / 农户 / 企业 / 政府)"),
    Column("region_code", False, ("行政区划代码", "区划代码", "region"), "where it is registered"),
    Column("county_name", False, ("县(市)", "县(市、区)", "县(区)", "县市区", "县", "county"), ""),
    Column("township_name", False, ("乡镇", "乡(镇)", "乡镇(街道)", "township"), ""),
    Column("village_name", False, ("村", "行政村", "村(社区)", "village"), ""),
    Column("location", False, ("所在地", "住址", "地址", "location"), "the place in one cell"),
    Column("credit_code", False, ("统一社会信用代码", "信用代码"), "an organisation's code"),
    Column("id_number", False, ("身份证号", "身份证号码", "户主身份证号"),
           "a household head's ID-card number (stored protected, never echoed)"),
    Column("bank_account", False, ("银行账号", "银行卡号", "账号"),
           "a household's bank account (stored protected, shown masked)"),
    Column("bank_name", False, ("开户行", "开户银行"), ""),
    Column("name_en", False, ("英文名称",), ""),
)


def check_parties(table: Table, tables: dict[str, dict[str, str]] | None = None
                  ) -> tuple[pd.DataFrame, list[dict]]:
    """Check a party register (villagers, collectives, cooperatives) without the database."""
    f = table.frame.copy()
    errors = Errors(table.headers)
    if not any(c in f.columns for c in PLACE_COLUMNS):
        raise MissingColumns("say where each party is registered: 行政区划代码, or 县(市)/乡镇/村, "
                             "or 所在地", errors=[{"location": "file", "column": "region_code",
                                                 "field": "region_code",
                                                 "message": "no column names the place"}])
    out = pd.DataFrame(index=f.index)
    name = column(f, "name_zh").map(lambda text: " ".join(text.split()))
    errors.mask(name == "", "name_zh", "a name is required")
    _text_limit(errors, f, "name_zh", 200)
    out["name_zh"] = name
    kind, unknown = _codes(column(f, "kind"), "party_kind", tables)
    errors.mask(column(f, "kind") == "", "kind", "the kind is required")
    errors.mask_values(unknown, column(f, "kind"), "kind",
                       "unknown kind {!r} (村集体, 合作社, 农户, 企业, 政府)")
    out["kind"] = kind
    region = _code_text(column(f, "region_code"))
    region_ok = region.str.fullmatch(r"\d{6}|\d{9}|\d{12}")
    errors.mask_values((region != "") & ~region_ok, region, "region_code",
                       "{!r} is not a region code (6, 9 or 12 digits)")
    out["region_code"] = region.where(region_ok, None)
    names = {field: column(f, field).map(lambda text: text.strip())
             for field in ("county_name", "township_name", "village_name", "location")}
    out["place_names"] = [
        {level: names[f"{level}_name"][row] for level in ("county", "township", "village")}
        | {"location": names["location"][row]} for row in f.index]
    no_place = (region == "") & pd.concat([n == "" for n in names.values()], axis=1).all(axis=1)
    errors.mask(no_place, next(c for c in PLACE_COLUMNS if c in f.columns),
                "where the party is registered is required")
    out["county_code"] = out["region_code"].str[:6]
    for field in ("credit_code", "id_number", "bank_account"):
        out[field] = column(f, field).map(lambda text: "".join(text.split()).upper() or None)
    out["bank_name"] = _none_if_empty(column(f, "bank_name"))
    out["name_en"] = _none_if_empty(column(f, "name_en"))
    return out, errors.items


#: ways to name the product in a monitoring file (any one complete set)
MONITORING_PRODUCT_KEYS = (("product_id",), ("region_code", "external_code"),
                           ("region_code", "type", "name_zh"))


def aliases(columns: Iterable[Column]) -> dict[str, tuple[str, ...]]:
    """canonical name -> accepted header texts, for the shell's spreadsheet reader."""
    return {column.name: column.aliases for column in columns}


@dataclasses.dataclass
class Table:
    """A spreadsheet's data as text cells ('' when empty), columns renamed to canonical names,
    indexed by the file's row number."""

    frame: pd.DataFrame
    encoding: str  #: utf-8, gbk or xlsx
    headers: dict[str, str]  #: canonical name -> header as written in the file
    ignored_columns: list[str]
    header_row: int


# --- reading -------------------------------------------------------------------------------


def _text(value: object) -> str:
    """A cell as the text the checks read: '' when blank; an XLSX number as written (a
    whole number without '.0', as a spreadsheet program shows it)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_table(data: bytes, columns: tuple[Column, ...]) -> Table:
    """Parse CSV or XLSX bytes into a Table with canonical columns (ecovalue.spreadsheet reads
    the file); raises NotASpreadsheet, MissingColumns or ImportRejected (malformed file)."""
    try:
        sheet = spreadsheet.read_spreadsheet(
            data, aliases(columns), required=[c.name for c in columns if c.required],
            max_rows=MAX_ROWS)
    except spreadsheet.TooManyRows:
        raise ImportRejected(f"the file has more than {MAX_ROWS} data rows; at most {MAX_ROWS} "
                             f"are imported at once (split the file)") from None
    except spreadsheet.SpreadsheetError as exc:
        raise NotASpreadsheet(exc.message) from None
    if sheet.errors:
        first = sheet.errors[0]
        raise ImportRejected(
            f"the {sheet.format.upper()} file cannot be read: row {first.row} {first.message}",
            errors=[{"location": "file", "row": e.row, "message": e.message}
                    for e in sheet.errors])
    if sheet.duplicates:
        raise MissingColumns("the header names a column twice", errors=[
            {"location": "file", "column": written, "field": name,
             "message": f"names the same column as {sheet.headers[name]!r}"}
            for written, name in sheet.duplicates])
    missing = [c for c in columns if c.name in sheet.missing]
    names = {c.name for c in columns}
    if "county_name" in names and not any(c in sheet.headers for c in PLACE_COLUMNS):
        # products: where it lies, by code or by name (region_code stands for them all)
        missing.append(next(c for c in columns if c.name == "region_code"))
    if missing:
        raise MissingColumns(
            "required columns are missing: " + ", ".join(c.name for c in missing),
            errors=[{"location": "file", "column": c.name, "field": c.name,
                     "message": f"required column missing (also accepted: "
                                f"{', '.join(c.aliases)})" if c.name != "region_code" else
                     "say where each product lies: 行政区划代码, or 县(市)/乡镇/村 columns, or "
                     "所在地"} for c in missing])
    if not len(sheet):
        raise ImportRejected("the file has a header but no data rows",
                             errors=[{"location": "file", "message": "no data rows"}])
    index = pd.Index(sheet.numbers)
    if sheet.format == "csv":  # text already: blanks become ''
        cells = {name: pd.Series(values, index=index, dtype=object).fillna("")
                 for name, values in sheet.columns.items()}
    else:
        cells = {name: pd.Series([_text(v) for v in values], index=index, dtype=object)
                 for name, values in sheet.columns.items()}
    return Table(frame=pd.DataFrame(cells, index=index), encoding=sheet.encoding,
                 headers=sheet.headers, ignored_columns=sheet.ignored,
                 header_row=sheet.header_row)


# --- checking ------------------------------------------------------------------------------


class Errors:
    """Row errors collected across checks."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.items: list[dict] = []
        self.headers = headers

    def add(self, rows: Iterable[int], field: str, message: str | Iterable[str]) -> None:
        column = self.headers.get(field, field)
        if isinstance(message, str):
            self.items.extend({"location": "file", "row": int(r), "column": column,
                               "field": field, "message": message} for r in rows)
        else:
            self.items.extend({"location": "file", "row": int(r), "column": column,
                               "field": field, "message": m} for r, m in zip(rows, message))

    def mask(self, mask: pd.Series, field: str, message: str) -> None:
        self.add(mask.index[mask.to_numpy()], field, message)

    def mask_values(self, mask: pd.Series, values: pd.Series, field: str, template: str) -> None:
        rows = mask.index[mask.to_numpy()]
        self.add(rows, field, (template.format(v) for v in values.loc[rows]))

    def sorted(self) -> list[dict]:
        return sorted(self.items, key=lambda e: (e.get("row", 0), e.get("column", "")))


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column's text, '' where the file has no such column."""
    return frame[name] if name in frame.columns else pd.Series("", index=frame.index, dtype=object)


def _code_text(series: pd.Series) -> pd.Series:
    """Codes typed into a number-formatted spreadsheet cell come back as '522326100.0'."""
    return series.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)


def _numbers(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(values as float, mask of cells that are filled but not a finite number)."""
    cleaned = series.str.replace(",", "", regex=False).str.replace("，", "", regex=False)
    values = pd.to_numeric(cleaned, errors="coerce").astype(float)
    bad = (series != "") & ~np.isfinite(values.fillna(np.inf).to_numpy())
    bad = pd.Series(bad | ((series != "") & values.isna()).to_numpy(), index=series.index)
    return values.where(series != ""), bad


def _codes(series: pd.Series, field: str, tables: dict[str, dict[str, str]] | None = None
           ) -> tuple[pd.Series, pd.Series]:
    """(codes from a vocabulary spelled as code, Chinese or English label or synonym, compared
    after normalisation; mask of unknown)."""
    table = (tables or vocabulary.lookup_tables())[field]
    codes = series.map(lambda text: table.get(normalize_term(text)) if text else None)
    return codes, (series != "") & codes.isna()


def _text_limit(errors: Errors, frame: pd.DataFrame, field: str, limit: int) -> None:
    values = column(frame, field)
    errors.mask(values.str.len() > limit, field, f"at most {limit} characters")


def _none_if_empty(series: pd.Series) -> pd.Series:
    """Text with None (not NaN) for empty cells."""
    return series.astype(object).where(series != "", None)


#: product fields an import can set -> the file column that carries them
PRODUCT_FIELD_COLUMNS = {
    "name_en": "name_en", "external_code": "external_code", "holder_party_id": "holder",
    "rights_type": "rights_type", "area_ha": "area_ha", "latitude": "latitude",
    "longitude": "longitude", "grid_cell_id": "grid_cell_id", "quantity": "quantity",
    "quantity_unit": "quantity_unit", "quality_grade": "quality_grade",
    "development_status": "development_status", "brand": "brand",
    "certifications": "certifications",
}


def _clearing_markers(f: pd.DataFrame, errors: Errors) -> dict[str, pd.Series]:
    """column -> mask of its cells holding a clearing marker; those cells are blanked in `f`
    (the marker is not a value). A marker in a column that cannot be cleared is an error."""
    cleared = {}
    for name in list(f.columns):
        marker = f[name].map(lambda text: bool(text) and normalize_term(text) in _CLEAR_KEYS)
        if not marker.any():
            continue
        if name in NOT_CLEARABLE:
            errors.mask(marker, name, f"{CLEAR_MARKERS[0]} clears a field, but this column "
                                      f"cannot be cleared (a product always has it)")
        cleared[name] = marker.astype(bool)
        f.loc[marker, name] = ""
    return cleared


def check_products(table: Table, tables: dict[str, dict[str, str]] | None = None
                   ) -> tuple[pd.DataFrame, list[dict]]:
    """Check what can be checked without the database; returns the typed rows and errors.

    A blank cell is not a value: the row's `blank_fields` lists the product fields it leaves
    as stored (a new product gets None or the default), `cleared_fields` those a clearing
    marker ([清空]) empties. Required cells (holder, rights type) are required of new products
    only, which the service knows. `tables` are the vocabulary lookup tables with the
    database's synonyms (default: the shipped ones)."""
    f = table.frame.copy()
    errors = Errors(table.headers)
    out = pd.DataFrame(index=f.index)
    if not any(c in f.columns for c in PLACE_COLUMNS):
        raise MissingColumns(
            "say where each product lies: a region_code (行政区划代码) column, or 县(市) / "
            "乡镇 / 村 columns, or a 所在地 column",
            errors=[{"location": "file", "column": "region_code", "field": "region_code",
                     "message": "no column names the place (行政区划代码, 县(市), 乡镇, 村, "
                                "所在地)"}])
    cleared = _clearing_markers(f, errors)

    name = column(f, "name_zh")
    errors.mask(name == "", "name_zh", "a name is required")
    _text_limit(errors, f, "name_zh", 200)
    out["name_zh"] = name.map(lambda text: " ".join(text.split()))
    out["name_en"] = _none_if_empty(column(f, "name_en"))
    _text_limit(errors, f, "name_en", 200)

    type_text = column(f, "type")
    type_code, unknown = _codes(type_text, "type", tables)
    errors.mask(type_text == "", "type", "a product type is required")
    errors.mask_values(unknown, type_text, "type",
                       "unknown product type {!r} (see GET /catalog/product-types and "
                       "/catalog/synonyms)")
    out["type_code"] = type_code
    categories = {code: t.category for code, t in vocabulary.product_types().items()}
    out["category"] = type_code.map(categories)
    if "category" in f.columns:
        given, unknown_category = _codes(f["category"], "category", tables)
        errors.mask_values(unknown_category, f["category"], "category", "unknown category {!r}")
        mismatch = given.notna() & out["category"].notna() & (given != out["category"])
        errors.mask_values(mismatch, out["category"], "category",
                           "does not match the type (a product of this type is {})")

    region = _code_text(column(f, "region_code"))
    region_ok = region.str.fullmatch(r"\d{6}|\d{9}|\d{12}")
    errors.mask_values((region != "") & ~region_ok, region, "region_code",
                       "{!r} is not a region code (6, 9 or 12 digits)")
    out["region_code"] = region.where(region_ok, None)
    names = {field: column(f, field).map(lambda text: text.strip())
             for field in ("county_name", "township_name", "village_name", "location")}
    out["place_names"] = [
        {level: names[f"{level}_name"][row] for level in ("county", "township", "village")}
        | {"location": names["location"][row]} for row in f.index]
    no_place = (region == "") & pd.concat([n == "" for n in names.values()], axis=1).all(axis=1)
    errors.mask(no_place, next(c for c in PLACE_COLUMNS if c in f.columns),
                "where the product lies is required (行政区划代码, or 县(市)/乡镇/村, or 所在地)")
    out["county_code"] = out["region_code"].str[:6]

    out["holder"] = column(f, "holder").map(lambda text: " ".join(text.split()))
    kind_text = column(f, "holder_kind")
    kind, unknown_kind = _codes(kind_text, "party_kind", tables)
    errors.mask_values(unknown_kind, kind_text, "holder_kind",
                       "unknown kind of holder {!r} (村集体, 合作社, 农户, 企业, 政府)")
    out["holder_kind"] = kind
    for field in ("holder_credit_code", "holder_id_number", "holder_bank_account"):
        out[field] = column(f, field).map(lambda text: "".join(text.split()).upper() or None)
    out["holder_bank_name"] = _none_if_empty(column(f, "holder_bank_name"))

    rights_text = column(f, "rights_type")
    rights, unknown = _codes(rights_text, "rights_type", tables)
    errors.mask_values(unknown, rights_text, "rights_type",
                       "unknown rights type {!r} (ownership, contract_management, use)")
    out["rights_type"] = rights

    for field in ("area_ha", "latitude", "longitude", "quantity"):
        values, bad = _numbers(column(f, field))
        errors.mask_values(bad, column(f, field), field, "{!r} is not a number")
        out[field] = values
    errors.mask(out["area_ha"] <= 0, "area_ha",
                f"the area must be positive (leave it empty when unknown, {CLEAR_MARKERS[0]} "
                f"to clear it)")
    errors.mask(out["quantity"] < 0, "quantity", "a quantity cannot be negative")

    lat, lon = out["latitude"], out["longitude"]
    both = lat.notna() & lon.notna()
    errors.mask(lat.notna() ^ lon.notna(), "latitude" if "latitude" in f.columns else "longitude",
                "give both latitude and longitude, or neither")
    b = vocabulary.PREFECTURE_BOUNDS
    outside = both & ~(lat.between(b["lat_min"], b["lat_max"])
                       & lon.between(b["lon_min"], b["lon_max"]))
    for row in outside.index[outside.to_numpy()]:  # few: the message is per row
        message = vocabulary.location_error(float(lat[row]), float(lon[row]))
        assert message is not None  # the row is outside the bounds
        errors.add([row], "latitude", message)

    grid = column(f, "grid_cell_id")
    errors.mask((grid != "") & ~grid.str.fullmatch(r"[A-Za-z0-9_.:-]{1,40}"), "grid_cell_id",
                "letters, digits and _ . : - only, at most 40")
    out["grid_cell_id"] = _none_if_empty(grid)

    unit = column(f, "quantity_unit")
    out["quantity_unit"] = _none_if_empty(unit)
    errors.mask(out["quantity"].notna() & (unit == ""), "quantity_unit",
                "give the unit of the quantity")
    _text_limit(errors, f, "quantity_unit", 20)
    pairs = pd.DataFrame({"t": type_code, "u": unit})[type_code.notna() & (unit != "")]
    for (t, u), group in pairs.groupby(["t", "u"], sort=False):
        message = vocabulary.quantity_unit_error(t, u)
        if message:
            errors.add(group.index, "quantity_unit", message)

    development_text = column(f, "development_status")
    development, unknown = _codes(development_text, "development_status", tables)
    errors.mask_values(unknown, development_text, "development_status",
                       "unknown development status {!r} (" + ", ".join(DEVELOPMENT_STATUSES)
                       + ")")
    out["development_status"] = development

    for field, limit in (("external_code", 60), ("quality_grade", 40), ("brand", 100),
                         ("note", 500)):
        _text_limit(errors, f, field, limit)
        out[field] = _none_if_empty(column(f, field))
    certifications = column(f, "certifications")
    out["certifications"] = [
        [c.strip() for c in re.split(r"[;；、,，]", text) if c.strip()] if text else []
        for text in certifications
    ]
    too_long = pd.Series([any(len(c) > 100 for c in cs) for cs in out["certifications"]],
                         index=f.index)
    errors.mask(too_long, "certifications", "a certification name has at most 100 characters")

    # what each row leaves as stored (blank) and what it clears (marker)
    def cleared_mask(column_name: str) -> pd.Series:
        return cleared.get(column_name, pd.Series(False, index=f.index))

    blank_lists: list[list[str]] = [[] for _ in f.index]
    cleared_lists: list[list[str]] = [[] for _ in f.index]
    position = {row: i for i, row in enumerate(f.index)}
    coordinates_cleared = cleared_mask("latitude") | cleared_mask("longitude")
    quantity_cleared = cleared_mask("quantity")
    for field, column_name in PRODUCT_FIELD_COLUMNS.items():
        if column_name not in f.columns:
            continue  # absent columns leave every product's field alone (the service knows)
        is_cleared = cleared_mask(column_name)
        if field in ("latitude", "longitude"):
            is_cleared = coordinates_cleared
        if field == "quantity_unit":
            is_cleared = is_cleared | quantity_cleared
        is_blank = (f[column_name] == "") & ~is_cleared
        for row in is_blank.index[is_blank.to_numpy()]:
            blank_lists[position[row]].append(field)
        for row in is_cleared.index[is_cleared.to_numpy()]:
            cleared_lists[position[row]].append(field)
    out["blank_fields"] = blank_lists
    out["cleared_fields"] = cleared_lists
    for field in ("latitude", "longitude"):
        out.loc[coordinates_cleared, field] = np.nan
    out.loc[quantity_cleared, "quantity_unit"] = None
    if "certifications" in cleared:
        out.loc[cleared["certifications"], "certifications"] = pd.Series(
            [[] for _ in range(int(cleared["certifications"].sum()))],
            index=cleared["certifications"].index[cleared["certifications"].to_numpy()],
            dtype=object)

    return out, errors.items


#: the kind of a new holder told by its name, when the file has no 权利人类型 column (first
#: match wins: 股份经济合作社 is a village collective, a 专业合作社 a cooperative)
_KIND_BY_NAME = (("股份经济合作社", "village_collective"), ("经济合作社", "village_collective"),
                 ("村民委员会", "village_collective"), ("村委会", "village_collective"),
                 ("村集体", "village_collective"), ("合作社", "cooperative"),
                 ("有限公司", "enterprise"), ("有限责任公司", "enterprise"), ("公司", "enterprise"),
                 ("集团", "enterprise"), ("厂", "enterprise"), ("人民政府", "government"),
                 ("局", "government"), ("管理站", "government"), ("管理处", "government"),
                 ("林场", "government"))


def holder_kind_from_name(name: str) -> str | None:
    """village_collective, cooperative, enterprise or government as the name tells it; None
    when it does not (a person's name: give the kind, and a household's ID-card number)."""
    for fragment, kind in _KIND_BY_NAME:
        if fragment in name:
            return kind
    return None


def duplicate_keys(out: pd.DataFrame, errors: Errors) -> None:
    """Rows with the same natural key (region, type, name) as an earlier row: an error (checked
    once the places are resolved)."""
    key = out[["region_code", "type_code", "name_zh"]]
    complete = key.notna().all(axis=1) & (out["name_zh"] != "")
    duplicated = key[complete].duplicated(keep="first")
    if duplicated.any():
        first_row: dict[tuple[Any, ...], Any] = {}
        for row, values in key[complete].iterrows():
            first_row.setdefault(tuple(values), row)
        for row in duplicated.index[duplicated.to_numpy()]:
            errors.add([row], "name_zh", f"same region, type and name as row "
                                         f"{first_row[tuple(key.loc[row])]}")
    external = out[["county_code", "external_code"]]
    has_code = external.notna().all(axis=1)
    dup_code = external[has_code].duplicated(keep="first")
    errors.mask(dup_code.reindex(out.index, fill_value=False), "external_code",
                "the same external code appears earlier in the file for this county")


def check_monitoring(table: Table) -> tuple[pd.DataFrame, list[dict]]:
    """Check monitoring rows without the database; the product and the unit's dimension (which
    depends on the product's type) are checked by the service."""
    f = table.frame
    present = set(table.headers)
    if not any(set(keys) <= present for keys in MONITORING_PRODUCT_KEYS):
        raise MissingColumns(
            "name the product with product_id, or region_code with external_code, or "
            "region_code with type and name_zh",
            errors=[{"location": "file", "column": "product_id", "field": "product_id",
                     "message": "no column identifies the product"}])
    errors = Errors(table.headers)
    out = pd.DataFrame(index=f.index)

    product_id, bad = _numbers(column(f, "product_id"))
    bad |= product_id.notna() & (product_id != product_id.round())
    errors.mask_values(bad, column(f, "product_id"), "product_id", "{!r} is not a product id")
    out["product_id"] = product_id.where(~bad)
    region = _code_text(column(f, "region_code"))
    region_ok = region.str.fullmatch(r"\d{6}|\d{9}|\d{12}")
    errors.mask_values((region != "") & ~region_ok, region, "region_code",
                       "{!r} is not a region code (6, 9 or 12 digits)")
    out["region_code"] = region.where(region_ok, None)
    type_text = column(f, "type")
    type_code, unknown = _codes(type_text, "type")
    errors.mask_values(unknown, type_text, "type", "unknown product type {!r}")
    out["type_code"] = type_code
    out["name_zh"] = _none_if_empty(column(f, "name_zh"))
    out["external_code"] = _none_if_empty(column(f, "external_code"))
    identified = out["product_id"].notna() | (out["region_code"].notna() & (
        out["external_code"].notna() | (out["type_code"].notna() & out["name_zh"].notna())))
    unidentified = ~identified & ~bad & ~((region != "") & ~region_ok) & ~unknown
    errors.mask(unidentified, "product_id" if "product_id" in f.columns else "region_code",
                "the row does not name its product (product_id, or region_code with "
                "external_code, or region_code with type and name_zh)")

    year, bad_year = _numbers(column(f, "year"))
    bad_year |= year.notna() & (year != year.round())
    errors.mask(column(f, "year") == "", "year", "a year is required")
    errors.mask_values(bad_year, column(f, "year"), "year", "{!r} is not a year")
    month, bad_month = _numbers(column(f, "month"))
    bad_month |= month.notna() & ((month != month.round()) | (month < 1) | (month > 12))
    errors.mask_values(bad_month, column(f, "month"), "month",
                       "{!r} is not a month 1-12 (leave it empty for a whole year)")
    out["period_year"] = year.where(~bad_year)
    out["period_month"] = month.where(~bad_month)
    checkable = out["period_year"].notna() & ~bad_month
    pairs = out.loc[checkable, ["period_year", "period_month"]]
    for (y, m), group in pairs.groupby(["period_year", "period_month"], dropna=False,
                                       sort=False):
        message = vocabulary.period_error(int(y), None if pd.isna(m) else int(m))
        if message:
            errors.add(group.index, "month" if "month" in message else "year", message)

    metric_text = column(f, "metric")
    metric, unknown = _codes(metric_text, "metric")
    errors.mask(metric_text == "", "metric", "a metric is required")
    errors.mask_values(unknown, metric_text, "metric",
                       "unknown metric {!r} (see GET /catalog/metrics)")
    out["metric"] = metric

    value, bad_value = _numbers(column(f, "value"))
    errors.mask(column(f, "value") == "", "value",
                "a value is required (missing is not zero: leave the row out)")
    errors.mask_values(bad_value, column(f, "value"), "value", "{!r} is not a number")
    out["value"] = value
    negative_ok = metric.map({m.code: m.allows_negative for m in vocabulary.metrics().values()})
    errors.mask((value < 0) & (negative_ok == False), "value",  # noqa: E712 - NaN-aware
                "this metric cannot be negative")

    unit = column(f, "unit")
    errors.mask(unit == "", "unit", "a unit is required")
    _text_limit(errors, f, "unit", 20)
    for text, group in unit[unit != ""].groupby(unit[unit != ""], sort=False):
        try:
            parse_unit(text)
        except UnitError:
            errors.add(group.index, "unit", f"unknown unit {text!r}")
    out["unit"] = unit

    method_text = column(f, "method")
    method, unknown = _codes(method_text, "method")
    errors.mask(method_text == "", "method", "a method is required")
    errors.mask_values(unknown, method_text, "method", "unknown method {!r}")
    out["method"] = method
    for field, limit in (("source", 300), ("note", 500)):
        _text_limit(errors, f, field, limit)
        out[field] = _none_if_empty(column(f, field))
    return out, errors.items


def template(columns: tuple[Column, ...]) -> list[str]:
    return [c.name for c in columns]
