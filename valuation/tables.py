"""Reading uploaded tables (CSV in UTF-8 or GBK, XLSX) into rows with their file row numbers.

Header names are matched case-insensitively against English names and the Chinese names county
staff use (地区代码, 年份, 指标, 实物量, 单位 ...). Nothing here knows about indicators: it turns
bytes into `(row_number, {column: text or number})` and reports what it could not read.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from valuation.errors import QuantitiesInvalid, UnsupportedFile

MAX_ROWS = 100_000

#: canonical column -> accepted header spellings (lower case)
QUANTITY_HEADERS: dict[str, tuple[str, ...]] = {
    "region_code": ("region_code", "region", "地区代码", "区域代码", "行政区划代码", "地区"),
    "year": ("year", "年份", "核算年份", "年度"),
    "indicator": ("indicator", "indicator_code", "code", "指标", "指标代码", "指标编码"),
    "item": ("item", "product", "项目", "产品", "子项"),
    "ecosystem_type": ("ecosystem_type", "ecosystem", "生态系统类型", "生态系统"),
    "quantity": ("quantity", "value", "实物量", "数量", "数值"),
    "unit": ("unit", "单位", "计量单位"),
    "origin": ("origin", "来源", "来源区域"),
    "note": ("note", "remark", "备注", "说明"),
}


def sniff_format(filename: str | None, data: bytes) -> str:
    """csv or xlsx, from the content (an XLSX is a zip with xl/workbook.xml)."""
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "xl/workbook.xml" in archive.namelist():
                    return "xlsx"
        except zipfile.BadZipFile:
            pass
        raise UnsupportedFile("the file is a zip archive but not an XLSX workbook")
    name = (filename or "").lower()
    if name.endswith((".xls", ".xlsm", ".ods")):
        raise UnsupportedFile("only .xlsx workbooks and .csv files are accepted (save the "
                              "sheet as .xlsx)")
    if b"\0" in data[:4096]:
        raise UnsupportedFile("the file is neither CSV text nor an XLSX workbook")
    return "csv"


def decode_text(data: bytes) -> tuple[str, str]:
    """Text of a CSV: UTF-8 (with or without BOM), else GBK (county spreadsheets)."""
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data.decode(encoding), "utf-8" if encoding == "utf-8-sig" else encoding
        except UnicodeDecodeError:
            continue
    raise UnsupportedFile("the CSV is neither UTF-8 nor GBK text")


def _cells_csv(data: bytes) -> list[list[Any]]:
    text, _ = decode_text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return [row for row in csv.reader(io.StringIO(text), dialect)]


def _cells_xlsx(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types on corrupt files
        raise UnsupportedFile(f"the XLSX workbook cannot be read: {exc.__class__.__name__}"
                              ) from None
    try:
        sheet = workbook.worksheets[0]
        for candidate in workbook.worksheets:
            if candidate.title.strip().lower() in ("quantities", "实物量", "data", "grid"):
                sheet = candidate
                break
        rows = []
        for row in sheet.iter_rows(values_only=True):
            rows.append(list(row))
            if len(rows) > MAX_ROWS + 1:
                break
        return rows
    finally:
        workbook.close()


def read_rows(filename: str | None, data: bytes,
              headers: Mapping[str, Sequence[str]] = QUANTITY_HEADERS,
              required: Sequence[str] = ()) -> tuple[str, list[tuple[int, dict[str, Any]]]]:
    """(format, [(row number, {canonical column: value})]); the header is row 1 (the first
    non-empty row). Unknown columns are refused (a typo must not drop a column silently)."""
    if not data:
        raise QuantitiesInvalid("the file is empty")
    kind = sniff_format(filename, data)
    cells = _cells_xlsx(data) if kind == "xlsx" else _cells_csv(data)
    start = next((i for i, row in enumerate(cells)
                  if any(c not in (None, "") and str(c).strip() for c in row)), None)
    if start is None:
        raise QuantitiesInvalid("the file has no header row")
    lookup = {alias.lower(): canonical for canonical, aliases in headers.items()
              for alias in aliases}
    columns: list[str | None] = []
    problems = []
    for position, raw in enumerate(cells[start]):
        name = "" if raw is None else str(raw).strip()
        if not name:
            columns.append(None)
            continue
        canonical = lookup.get(name.lower())
        if canonical is None:
            problems.append({"row": start + 1, "column": name,
                             "message": f"unknown column {name!r}; expected "
                                        f"{', '.join(headers)}"})
        elif canonical in columns:
            problems.append({"row": start + 1, "column": name,
                             "message": f"column {canonical} appears twice"})
        columns.append(canonical)
    for name in required:
        if name not in columns:
            problems.append({"row": start + 1, "column": name,
                             "message": f"missing column {name}"})
    if problems:
        raise QuantitiesInvalid(f"the header of the file is not usable ({problems[0]['message']})",
                                errors=problems)
    rows: list[tuple[int, dict[str, Any]]] = []
    for offset, raw_row in enumerate(cells[start + 1:], start=start + 2):
        values = {}
        for position, column in enumerate(columns):
            if column is None or position >= len(raw_row):
                continue
            value = raw_row[position]
            if isinstance(value, str):
                value = value.strip()
                if value == "":
                    value = None
            values[column] = value
        extra = [v for v in raw_row[len(columns):] if v not in (None, "")]
        if extra:
            values["__extra__"] = extra
        if all(v is None for k, v in values.items() if k != "__extra__") and not extra:
            continue
        rows.append((offset, values))
        if len(rows) > MAX_ROWS:
            raise QuantitiesInvalid(f"the file has more than {MAX_ROWS} rows")
    return kind, rows


def read_grid(filename: str | None, data: bytes) -> pd.DataFrame:
    """A grid file (CSV or XLSX, one row per cell) as a DataFrame; region codes and ecosystem
    types stay text, every other column becomes numeric where it can (a non-numeric entry is
    reported by the grid validation, not coerced away)."""
    if not data:
        raise QuantitiesInvalid("the file is empty")
    kind = sniff_format(filename, data)
    # categorical: one small dictionary per column instead of a string per cell
    text_columns = {"region_code": "category", "ecosystem_type": "category"}
    if kind == "csv":
        text, _ = decode_text(data)
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=text_columns, skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise QuantitiesInvalid(f"the CSV cannot be read: {exc}") from None
    else:
        rows = _cells_xlsx(data)
        if not rows:
            raise QuantitiesInvalid("the workbook is empty")
        header = [str(c).strip() if c is not None else "" for c in rows[0]]
        frame = pd.DataFrame(rows[1:], columns=header)
        for column in text_columns:
            if column in frame:
                frame[column] = frame[column].astype("string").astype("category")
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in frame.columns:
        if column in text_columns:
            continue
        if not pd.api.types.is_numeric_dtype(frame[column].dtype):
            converted = pd.to_numeric(frame[column], errors="coerce")
            # keep text that is not a number visible: only convert when nothing is lost
            lost = converted.isna() & frame[column].notna()
            if not lost.any():
                frame[column] = converted.astype("float64")
    if len(frame) > 5_000_000:
        raise QuantitiesInvalid("the grid has more than 5,000,000 cells; split it by region")
    return frame


def finite(value: Any) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False
