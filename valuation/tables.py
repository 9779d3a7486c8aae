"""Reading uploaded tables (CSV in UTF-8 or GBK, XLSX) into rows with their file row numbers.

The shell's spreadsheet reader (ecovalue.spreadsheet) decodes the file, finds the header (below
any title rows) and maps header names, case-insensitively, from English names and the Chinese
names county staff use (地区代码, 年份, 指标, 实物量, 单位 ...). This module words what it
reports the way quantity sets do; nothing here knows about indicators: it turns bytes into
`(row_number, {column: text or number})` and reports what it could not read.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ecovalue import spreadsheet
from valuation.errors import QuantitiesInvalid, UnsupportedFile

MAX_ROWS = 100_000
#: a grid file with more cells (rows) is refused: split it by region
MAX_GRID_CELLS = 5_000_000

#: canonical column -> accepted header spellings
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
#: a workbook's sheet with one of these titles is read, else its first sheet
SHEET_TITLES = ("quantities", "实物量", "data", "grid")


def _refused(exc: spreadsheet.SpreadsheetError) -> Exception:
    """The valuation error for a file the reader cannot read at all."""
    if isinstance(exc, spreadsheet.NotASpreadsheet):
        return UnsupportedFile(exc.message)
    return QuantitiesInvalid(exc.message)


def read_rows(data: bytes, headers: Mapping[str, Sequence[str]] = QUANTITY_HEADERS,
              required: Sequence[str] = (),
              ) -> tuple[str, list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    """(format, [(row number, {canonical column: value})], problems of rows that cannot be
    read as written). Unknown columns are refused (a typo must not drop a column silently)."""
    try:
        sheet = spreadsheet.read_spreadsheet(data, headers, required=required,
                                             sheet_names=SHEET_TITLES, max_rows=MAX_ROWS)
    except spreadsheet.TooManyRows:
        raise QuantitiesInvalid(f"the file has more than {MAX_ROWS} rows") from None
    except spreadsheet.SpreadsheetError as exc:
        raise _refused(exc) from None
    at = sheet.header_row
    problems = [{"row": at, "column": name, "message": f"unknown column {name!r}; expected "
                                                        f"{', '.join(headers)}"}
                for name in sheet.ignored]
    problems += [{"row": at, "column": written, "message": f"column {name} appears twice"}
                 for written, name in sheet.duplicates]
    problems += [{"row": at, "column": name, "message": f"missing column {name}"}
                 for name in sheet.missing]
    if problems:
        raise QuantitiesInvalid(f"the header of the file is not usable ({problems[0]['message']})",
                                errors=problems)
    unreadable = [{"row": e.row, "column": "", "message": f"row {e.row}: {e.message}"}
                  for e in sheet.errors]
    return sheet.format, sheet.rows(), unreadable


_TOO_MANY_CELLS = f"the grid has more than {MAX_GRID_CELLS:,} cells; split it by region"


def read_grid(data: bytes) -> pd.DataFrame:
    """A grid file (CSV or XLSX, one row per cell) as a DataFrame; region codes and ecosystem
    types stay text, every other column becomes numeric where it can (a non-numeric entry is
    reported by the grid validation, not coerced away)."""
    # categorical: one small dictionary per column instead of a string per cell
    text_columns = {"region_code": "category", "ecosystem_type": "category"}
    try:
        kind = spreadsheet.detect_format(data)
        if kind == "csv":
            text, _ = spreadsheet.decode_text(data)
        else:
            rows = spreadsheet.xlsx_rows(data, SHEET_TITLES, max_rows=MAX_GRID_CELLS + 1)
    except spreadsheet.TooManyRows:
        raise QuantitiesInvalid(_TOO_MANY_CELLS) from None
    except spreadsheet.SpreadsheetError as exc:
        raise _refused(exc) from None
    if kind == "csv":
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=text_columns, skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise QuantitiesInvalid(f"the CSV cannot be read: {exc}") from None
    else:
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
    if len(frame) > MAX_GRID_CELLS:
        raise QuantitiesInvalid(_TOO_MANY_CELLS)
    return frame


def finite(value: Any) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False
