"""Reading an uploaded inventory-plot table (CSV in UTF-8 or GBK/GB18030, or XLSX), pure:
bytes in, plot rows and every error out (row numbers as in the file, header = row 1).

This is the registry's own small reader; it should move to the shell's spreadsheet reader
(ecovalue/spreadsheet.py) once that lands, keeping these column names and aliases.

Columns (English or Chinese headers):

| column | aliases | meaning |
|---|---|---|
| plot_code | 样地号, 样地编号 | the plot's code |
| parcel_id | 地块编号, 产品编号, product_id | the catalog product (parcel) the plot lies in |
| species | 树种, species_code | species code or its Chinese name in the parameter set |
| plot_area_ha | 样地面积, 样地面积(公顷), 样地面积(hm2) | plot area, hectares |
| volume_start_m3 | 期初蓄积, 期初蓄积(立方米), 期初蓄积量 | stem volume at the period's start, m3 |
| volume_end_m3 | 期末蓄积, 期末蓄积(立方米), 期末蓄积量 | stem volume at the period's end, m3 |
"""

from __future__ import annotations

import csv
import io
import math
import re

import pandas as pd

COLUMNS: dict[str, tuple[str, ...]] = {
    "plot_code": ("plot_code", "plot", "样地号", "样地编号"),
    "parcel_id": ("parcel_id", "parcel", "product_id", "地块编号", "产品编号", "地块"),
    "species": ("species", "species_code", "树种", "树种代码"),
    "plot_area_ha": ("plot_area_ha", "样地面积", "样地面积(公顷)", "样地面积(hm2)"),
    "volume_start_m3": ("volume_start_m3", "期初蓄积", "期初蓄积(立方米)", "期初蓄积量"),
    "volume_end_m3": ("volume_end_m3", "期末蓄积", "期末蓄积(立方米)", "期末蓄积量"),
}
MAX_ROWS = 100_000
_SPACE = re.compile(r"[\s\u3000]+")


class InventoryError(ValueError):
    """The file as a whole cannot be read; `errors` lists why."""

    def __init__(self, message: str, errors: list[dict]) -> None:
        super().__init__(message)
        self.errors = errors


def _norm(header: object) -> str:
    text = _SPACE.sub("", str(header)).lower()
    return text.replace("（", "(").replace("）", ")").lstrip("\ufeff")


_ALIASES = {_norm(alias): name for name, aliases in COLUMNS.items() for alias in aliases}


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InventoryError("the file is neither XLSX nor CSV text in UTF-8 or GBK",
                         [{"location": "file", "message": "unknown encoding"}])


def _cells(data: bytes) -> list[list[str]]:
    if data[:4] == b"PK\x03\x04":
        try:
            frame = pd.read_excel(io.BytesIO(data), sheet_name=0, header=None, dtype=str,
                                  engine="openpyxl", keep_default_na=False, na_filter=False)
        except Exception as exc:
            raise InventoryError("the XLSX workbook cannot be read", [
                {"location": "file", "message": type(exc).__name__}]) from None
        return [[str(c) for c in row] for row in frame.values.tolist()]
    text = _decode(data)
    if "\x00" in text:
        raise InventoryError("the file is binary, not CSV text",
                             [{"location": "file", "message": "binary content"}])
    sample = text[:4096]
    delimiter = max((",", "\t", ";"), key=sample.count)
    return [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_plots(data: bytes) -> tuple[list[dict], list[dict]]:
    """(rows, errors). Each row: {row, plot_code, parcel_id, species, plot_area_ha,
    volume_start_m3, volume_end_m3}; raises InventoryError when no table can be read."""
    if not data:
        raise InventoryError("the file is empty", [{"location": "file", "message": "empty"}])
    cells = [row for row in _cells(data)]
    header_at = next((i for i, row in enumerate(cells[:10])
                      if {_ALIASES.get(_norm(c)) for c in row} >= set(COLUMNS)), None)
    if header_at is None:
        raise InventoryError(
            "the header must name the columns " + ", ".join(COLUMNS) + " (or their Chinese "
            "names: 样地号, 地块编号, 树种, 样地面积, 期初蓄积, 期末蓄积)",
            [{"location": "file", "column": name, "message": "missing column"}
             for name in COLUMNS])
    index = {}
    for position, header in enumerate(cells[header_at]):
        name = _ALIASES.get(_norm(header))
        if name and name not in index:
            index[name] = position
    rows: list[dict] = []
    errors: list[dict] = []
    plot_areas: dict[tuple[str, str], float] = {}
    body = cells[header_at + 1:]
    if len(body) > MAX_ROWS:
        raise InventoryError(f"at most {MAX_ROWS} rows", [{"location": "file",
                                                           "message": "too many rows"}])
    for offset, raw in enumerate(body):
        line = header_at + 2 + offset
        if not any(str(c).strip() for c in raw):
            continue

        def cell(name: str, raw: list[str] = raw) -> str:
            position = index[name]
            return str(raw[position]).strip() if position < len(raw) else ""

        def bad(column: str, message: str, line: int = line) -> None:
            errors.append({"location": "file", "row": line, "column": column,
                           "message": message})

        row: dict = {"row": line, "plot_code": cell("plot_code"), "species": cell("species")}
        if not row["plot_code"] or len(row["plot_code"]) > 40:
            bad("plot_code", "a plot code of 1-40 characters")
        if not row["species"]:
            bad("species", "required")
        parcel = cell("parcel_id").lstrip("#")
        if not (parcel.isascii() and parcel.isdigit() and 0 < len(parcel) <= 18):
            bad("parcel_id", f"a catalog product id, not {parcel!r}")
        else:
            row["parcel_id"] = int(parcel)
        for name in ("plot_area_ha", "volume_start_m3", "volume_end_m3"):
            value = _number(cell(name))
            if value is None:
                bad(name, f"a number, not {cell(name)!r}")
            elif value < 0 or (name == "plot_area_ha" and value == 0):
                bad(name, "must be positive" if name == "plot_area_ha" else
                    "a volume cannot be negative")
            else:
                row[name] = value
        key = (parcel, row["plot_code"])
        if "plot_area_ha" in row:
            known = plot_areas.setdefault(key, row["plot_area_ha"])
            if abs(known - row["plot_area_ha"]) > 1e-9:
                bad("plot_area_ha", f"plot {row['plot_code']} has two areas ({known:g} and "
                                    f"{row['plot_area_ha']:g})")
        rows.append(row)
    if not rows and not errors:
        raise InventoryError("the table has no rows", [{"location": "file",
                                                        "message": "no rows"}])
    return rows, errors
