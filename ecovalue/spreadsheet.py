"""Reading the spreadsheets people upload, and writing the ones the service exports (pure: no
Flask, no database). Reading: bytes in, rows keyed by canonical field names out, with every
problem of the file collected. Writing: rows in, CSV or XLSX bytes out, as data, never code
(see "Writing" below).

The packages that import tables (catalog products and monitoring records, valuation quantity
tables) read them here, so a county's file is read the same way wherever it is sent; each
package then checks the values and words the errors its own way.

- Formats: XLSX (by content: a zip holding `xl/workbook.xml`; read with openpyxl, read-only,
  cached values of formulas), else CSV text (comma, semicolon or tab separated, the one the
  first lines use most) in UTF-8 with or without BOM, or GBK (decoded as GB18030, its superset,
  which also covers GB2312). A legacy .xls, another zip, binary data or text in another
  encoding is not a spreadsheet.
- Header: the canonical field names or any of their aliases, compared without case, spacing,
  `_`, `-` or `*`, and with full-width characters as their ASCII forms. The header need not be
  the first row (county files put a title above it): it is the first of the first ten rows that
  names every required field, else the one naming the most fields. Headers naming no field are
  listed (`ignored`), as are headers naming a field a second time (`duplicates`) and required
  fields no header names (`missing`): whether that refuses the file is the caller's decision.
- Cells: text is stripped, and a blank cell is None, never an empty string (an empty string
  would overwrite a stored value with nothing); XLSX numbers and dates keep their type. Rows
  whose cells under the named columns are all blank are left out; the others keep their row
  number in the file (1-based, as a spreadsheet program shows it).
- Row errors are collected, never stopping at the first: a row with values beyond the header's
  last column (a ragged CSV row), or a record the CSV parser cannot read.

Writing (every CSV and XLSX the service exports goes through `write_csv`, `new_workbook`,
`append_row`, `put_cell` and `workbook_bytes`, so that a name, memo or title typed by one user
cannot run as a formula on another user's desk):

- Text that a spreadsheet program would take for a formula (its first character, or its first
  after spaces, is one of `FORMULA_TRIGGERS`: `=` `+` `-` `@`, tab, carriage return, or the
  full-width ＝ ＋ － ＠ that an IME types and some programs fold to ASCII) is written with a
  single quote in front (`'=cmd|...`), as OWASP's CSV-injection guidance advises: Excel and
  LibreOffice show the text, the quote tells a reader it was neutralised. Only text is
  prefixed: an int, float or Decimal is a number in both formats (a negative amount stays a
  number, not a formula).
- XLSX text cells are typed as strings (`data_type "s"`), so neither a formula nor an error
  code such as `#N/A` can be stored from text; control characters an XLSX file cannot hold
  become U+FFFD. Lists are joined with `;`; NaN and None are blank cells.
- CSV is UTF-8 with a BOM (Excel on a Chinese Windows needs it to show Chinese), CRLF line
  ends, floats as Python writes them (shortest exact form), dates as ISO 8601.
- The quote stays in the text when an exported file is imported again: the reader does not
  remove it, so an edited export re-imports the text as it was shown.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import itertools
import math
import re
import unicodedata
import zipfile
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell
    from openpyxl.workbook.workbook import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

#: the header is looked for among this many rows at the top of the file
HEADER_SEARCH_ROWS = 10

_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 (.xls) and other OLE files
_DELIMITERS = (",", "\t", ";")


class SpreadsheetError(Exception):
    """The file as a whole cannot be read; the message says why, for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotASpreadsheet(SpreadsheetError):
    """The bytes are neither an XLSX workbook nor CSV text in UTF-8 or GBK."""


class EmptySpreadsheet(SpreadsheetError):
    """The file has no bytes, or no row with a value."""


class TooManyRows(SpreadsheetError):
    """More data rows than the caller accepts at once (reading stopped there)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file has more than {limit} data rows")
        self.limit = limit


@dataclasses.dataclass(frozen=True)
class RowError:
    """A row of the file that cannot be read as it is written."""

    row: int  #: 1-based row number in the file
    message: str


@dataclasses.dataclass
class Sheet:
    """The data rows of a file under canonical field names."""

    format: str  #: csv or xlsx
    encoding: str  #: utf-8, gbk (read as GB18030) or xlsx
    header_row: int  #: 1-based row number of the header
    headers: dict[str, str]  #: canonical field -> its header as written, in file order
    ignored: list[str]  #: headers naming no field, as written
    duplicates: list[tuple[str, str]]  #: (header as written, field an earlier header names)
    missing: list[str]  #: required fields no header names
    numbers: list[int]  #: row numbers of the data rows, in file order
    columns: dict[str, list[Any]]  #: field -> the data rows' cells (None when blank)
    errors: list[RowError]

    def __len__(self) -> int:
        return len(self.numbers)

    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        """(row number, {field: cell}) of every data row."""
        fields = list(self.columns)
        return [(number, dict(zip(fields, cells, strict=True)))
                for number, *cells in zip(self.numbers, *self.columns.values(), strict=True)]


def normalize_header(text: object) -> str:
    """A header's text as compared with the aliases: NFKC (full-width to ASCII), case-folded,
    without spaces, `_`, `-` or `*` (the mark of a required column in some templates)."""
    folded = unicodedata.normalize("NFKC", str(text)).strip().casefold()
    return re.sub(r"[\s_\-*]+", "", folded)


def header_lookup(aliases: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Normalised header text -> canonical field, from each field's name and its aliases (the
    first field to claim a spelling keeps it)."""
    lookup: dict[str, str] = {}
    for field, spellings in aliases.items():
        for spelling in (field, *spellings):
            lookup.setdefault(normalize_header(spelling), field)
    return lookup


# --- bytes -> format, text, cells -----------------------------------------------------------


def detect_format(data: bytes) -> str:
    """csv or xlsx, from the content; NotASpreadsheet for a legacy .xls or a zip that is no
    workbook, EmptySpreadsheet for no bytes at all. (CSV text is checked when decoded.)"""
    if not data:
        raise EmptySpreadsheet("the file is empty")
    if data.startswith(_OLE_MAGIC):
        raise NotASpreadsheet("legacy Excel 97-2003 (.xls) files are not read; save the sheet "
                              "as .xlsx or .csv")
    if data.startswith(_XLSX_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "xl/workbook.xml" in archive.namelist():
                    return "xlsx"
        except zipfile.BadZipFile:
            pass
        raise NotASpreadsheet("the file is a zip archive but not an XLSX workbook")
    return "csv"


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding) of CSV bytes: UTF-8 (BOM optional) first, then GB18030 (reported as
    gbk: county spreadsheets are saved in GBK, which GB18030 contains). Line ends become
    `\\n`. NotASpreadsheet for undecodable or binary bytes."""
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        try:
            text, encoding = data.decode("gb18030"), "gbk"
        except UnicodeDecodeError:
            raise NotASpreadsheet("the file is neither an XLSX workbook nor CSV text in UTF-8 "
                                  "or GBK") from None
    sample = text[:8192]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\r\n\t")
    if "\x00" in sample or controls > len(sample) // 100 + 2:
        raise NotASpreadsheet("the file is neither CSV text nor an XLSX workbook (its bytes "
                              "are binary)")
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


def xlsx_rows(data: bytes, sheet_names: Sequence[str] = (),
              max_rows: int | None = None) -> list[tuple[Any, ...]]:
    """The cell values of a workbook's sheet, row by row: the first sheet whose title is one
    of `sheet_names` (case and spacing ignored), else the first sheet. TooManyRows beyond
    `max_rows` rows."""
    return list(_xlsx_iter(data, sheet_names, max_rows))


def _xlsx_iter(data: bytes, sheet_names: Sequence[str],
               max_rows: int | None) -> Generator[tuple[Any, ...], None, None]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # any failure: openpyxl raises many types on corrupt files
        raise NotASpreadsheet(f"the XLSX workbook cannot be read ({type(exc).__name__})") \
            from None
    try:
        wanted = {normalize_header(n) for n in sheet_names}
        sheets = workbook.worksheets
        if not sheets:
            raise EmptySpreadsheet("the workbook has no sheet")
        sheet = next((s for s in sheets if normalize_header(s.title) in wanted), sheets[0])
        for count, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if max_rows is not None and count > max_rows:
                raise TooManyRows(max_rows)
            yield row
    finally:
        workbook.close()


# --- reading a table -------------------------------------------------------------------------


def read_spreadsheet(data: bytes, aliases: Mapping[str, Iterable[str]], *,
                     required: Iterable[str] = (), sheet_names: Sequence[str] = (),
                     max_rows: int | None = None) -> Sheet:
    """The data rows of a CSV or XLSX file under the canonical fields of `aliases` (field ->
    accepted header texts besides the field's own name); see the module docstring. Raises
    NotASpreadsheet, EmptySpreadsheet or TooManyRows (more than `max_rows` data rows); header
    and row problems are reported in the Sheet."""
    kind = detect_format(data)
    lookup = header_lookup(aliases)
    needed = list(required)
    head: Sequence[Sequence[Any]]  # the first rows: tuples of cells, or lists of CSV fields
    if kind == "xlsx":
        rows = _xlsx_iter(data, sheet_names, None)
        try:
            head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
            index = _find_header(head, lookup, needed)
            header = _Header(head[index], lookup, needed)
            # a sheet is a grid: a cell right of the header is under a blank header, not ragged
            numbers, columns, errors = header.read_cells(
                itertools.chain(head[index + 1:], rows), index + 2, max_rows, ragged=False)
        finally:
            rows.close()
        encoding = "xlsx"
    else:
        text, encoding = decode_text(data)
        head, ends, delimiter = _csv_head(text)
        index = _find_header(head[:HEADER_SEARCH_ROWS], lookup, needed)
        header = _Header(head[index], lookup, needed)
        following = head[index + 1] if index + 1 < len(head) else []
        numbers, columns, errors = header.read_csv(text[ends[index]:], delimiter, index + 2,
                                                   max_rows, first_fields=len(following))
    return Sheet(format=kind, encoding=encoding, header_row=index + 1, headers=header.headers,
                 ignored=header.ignored, duplicates=header.duplicates, missing=header.missing,
                 numbers=numbers, columns=columns, errors=errors)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _csv_head(text: str) -> tuple[list[list[str]], list[int], str]:
    """The first rows of CSV text (one more than the header search needs, so that the row
    after the header is known), the character offset where each of them ends, and the
    delimiter (the one of `,` tab `;` the first lines use most)."""
    lines = list(itertools.islice(io.StringIO(text), HEADER_SEARCH_ROWS))
    counts = {d: sum(line.count(d) for line in lines) for d in _DELIMITERS}
    delimiter = max(_DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
    consumed = 0

    def counted() -> Iterator[str]:
        nonlocal consumed
        for line in io.StringIO(text):
            consumed += len(line)
            yield line

    reader = csv.reader(counted(), delimiter=delimiter)
    head, ends = [], []
    try:
        for record in itertools.islice(reader, HEADER_SEARCH_ROWS + 1):
            head.append(record)
            ends.append(consumed)
    except csv.Error as exc:  # the header search stops here; reading the data reports it
        if not head:
            raise NotASpreadsheet(f"the CSV text cannot be read: {exc}") from None
    return head, ends, delimiter


def _find_header(head: Sequence[Sequence[Any]], lookup: Mapping[str, str],
                 required: list[str]) -> int:
    """Index of the header among the first rows: the first naming every required field, else
    the one naming the most fields (the first non-blank row when none names any)."""
    best, best_known = None, 0
    for index, row in enumerate(head):
        if all(_blank(c) for c in row):
            continue
        names = {lookup.get(normalize_header(c)) for c in row if not _blank(c)} - {None}
        if set(required) <= names:
            return index
        if best is None or len(names) > best_known:
            best, best_known = index, len(names)
    if best is None:
        raise EmptySpreadsheet(f"the file has no header row (its first {HEADER_SEARCH_ROWS} "
                               f"rows are empty)")
    return best


class _Header:
    """The header row's columns: which field each position carries."""

    def __init__(self, row: Sequence[Any], lookup: Mapping[str, str],
                 required: list[str]) -> None:
        self.width = len(row)
        self.headers: dict[str, str] = {}
        self.positions: dict[str, int] = {}
        self.ignored: list[str] = []
        self.duplicates: list[tuple[str, str]] = []
        for position, cell in enumerate(row):
            if _blank(cell):
                continue
            written = str(cell).strip()
            field = lookup.get(normalize_header(written))
            if field is None:
                self.ignored.append(written)
            elif field in self.headers:
                self.duplicates.append((written, field))
            else:
                self.headers[field], self.positions[field] = written, position
        self.missing = [f for f in required if f not in self.headers]

    def _ragged(self, number: int, width: int) -> RowError:
        return RowError(number, f"has values beyond the last named column ({width} fields; "
                                f"the header has {self.width})")

    def read_cells(self, rows: Iterable[Sequence[Any]], first: int, max_rows: int | None, *,
                   ragged: bool) -> tuple[list[int], dict[str, list[Any]], list[RowError]]:
        """Data rows given cell by cell (XLSX, or CSV records the fast path refused); with
        `ragged`, values beyond the header's last field are row errors."""
        positions = list(self.positions.values())
        numbers: list[int] = []
        cells: list[list[Any]] = [[] for _ in positions]
        errors: list[RowError] = []
        for number, row in enumerate(rows, start=first):
            if ragged and any(not _blank(c) for c in row[self.width:]):
                errors.append(self._ragged(number, len(row)))
            values = [_cell(row[p]) if p < len(row) else None for p in positions]
            if all(v is None for v in values):
                continue
            numbers.append(number)
            if max_rows is not None and len(numbers) > max_rows:
                raise TooManyRows(max_rows)
            for column, value in zip(cells, values, strict=True):
                column.append(value)
        return numbers, dict(zip(self.positions, cells, strict=True)), errors

    def read_csv(self, text: str, delimiter: str, first: int, max_rows: int | None, *,
                 first_fields: int) -> tuple[list[int], dict[str, list[Any]], list[RowError]]:
        """The data rows of CSV text after the header (the first has `first_fields` fields).
        pandas' C parser reads a well-formed file; when it refuses one (a ragged row, say),
        the csv module reads it again record by record, so that every bad row is reported
        with its number. (A first row longer than the header, pandas would cut short
        silently: that file goes to the csv module directly.)"""
        if first_fields > self.width:
            return self._read_records(text, delimiter, first, max_rows)
        try:
            frame = pd.read_csv(io.StringIO(text), sep=delimiter, header=None,
                                names=range(max(self.width, 1)), index_col=False, dtype=str,
                                keep_default_na=False, na_filter=False,
                                skip_blank_lines=False, engine="c")
        except pd.errors.EmptyDataError:
            return [], {field: [] for field in self.positions}, []
        except pd.errors.ParserError:
            return self._read_records(text, delimiter, first, max_rows)
        cells = [[text.strip() or None for text in frame[p].tolist()]
                 for p in self.positions.values()]
        filled = [any(row) for row in zip(*cells, strict=True)] if cells else [False] * len(frame)
        numbers = [first + i for i, f in enumerate(filled) if f]
        if max_rows is not None and len(numbers) > max_rows:
            raise TooManyRows(max_rows)
        if len(numbers) < len(filled):
            cells = [list(itertools.compress(column, filled)) for column in cells]
        columns = dict(zip(self.positions, cells, strict=True))
        return numbers, columns, []

    def _read_records(self, text: str, delimiter: str, first: int, max_rows: int | None,
                      ) -> tuple[list[int], dict[str, list[Any]], list[RowError]]:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        records: list[list[str]] = []
        failure = None
        while True:
            try:
                record = next(reader, None)
            except csv.Error as exc:  # the rest of the file cannot be told apart into rows
                failure = RowError(first + len(records), f"cannot be read: {exc}")
                break
            if record is None:
                break
            records.append(record)
        numbers, columns, errors = self.read_cells(records, first, max_rows, ragged=True)
        return numbers, columns, errors + ([failure] if failure else [])


# --- writing exports -------------------------------------------------------------------------

#: first characters that make a spreadsheet program read a cell as a formula (OWASP's list, and
#: the full-width forms of = + - @)
FORMULA_TRIGGERS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
#: spaces a spreadsheet program may skip before it looks for a formula
_LEADING_SPACES = " \u3000"
#: characters an XLSX file cannot hold (XML 1.0 forbids them)
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def formula_safe(text: str) -> str:
    """`text` as a spreadsheet program shows it and never runs it: a quote in front of text
    that would start a formula (see the module docstring), anything else unchanged."""
    first = text[:1]
    stripped = text.lstrip(_LEADING_SPACES)[:1]
    if first in FORMULA_TRIGGERS or stripped in FORMULA_TRIGGERS:
        return "'" + text
    return text


def export_value(value: Any) -> Any:
    """A value as an export cell holds it: None (blank), bool, int, float, Decimal, date or
    datetime, or text made formula-safe. numpy scalars become Python ones; NaN and infinities
    are blank; lists and tuples are joined with `;`; anything else is written as its text."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | Decimal | dt.date):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        value = ";".join("" if v is None else str(v) for v in value)
    return formula_safe(value if isinstance(value, str) else str(value))


def _csv_text(value: Any) -> str:
    value = export_value(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def write_csv(rows: Iterable[Sequence[Any]]) -> bytes:
    """CSV bytes of `rows` (UTF-8 with BOM, CRLF), every cell through `export_value`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_csv_text(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def new_workbook() -> Workbook:
    """An empty workbook (one sheet) to fill with `append_row` and `put_cell`."""
    from openpyxl import Workbook

    return Workbook()


def _xlsx_value(value: Any) -> Any:
    value = export_value(value)
    if isinstance(value, str):
        return _XLSX_ILLEGAL.sub("\ufffd", value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)  # XLSX has no time zones: UTC
    return value


def _type_text(cell: Cell) -> Cell:
    if isinstance(cell.value, str):
        cell.data_type = "s"
    return cell


def put_cell(sheet: Worksheet, row: int, column: int, value: Any) -> Cell:
    """Write one value into `sheet` at (row, column), formula-safe, text typed as a string."""
    return _type_text(sheet.cell(row, column, _xlsx_value(value)))


def append_row(sheet: Worksheet, values: Sequence[Any]) -> list[Cell]:
    """Append a row to `sheet`, formula-safe, text typed as strings; its cells (for styling)."""
    cells = [_xlsx_value(v) for v in values]
    sheet.append(cells)
    if all(v is None for v in cells):
        return []
    return [_type_text(cell) for cell in sheet[sheet.max_row]]


def workbook_bytes(workbook: Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_xlsx(sheets: Mapping[str, Iterable[Sequence[Any]]]) -> bytes:
    """XLSX bytes with one sheet per entry (title -> rows); the first row of each is bold."""
    from openpyxl.styles import Font

    workbook = new_workbook()
    workbook.remove(workbook.active)
    bold = Font(bold=True)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for index, row in enumerate(rows):
            cells = append_row(sheet, row)
            if index == 0:
                for cell in cells:
                    cell.font = bold
    return workbook_bytes(workbook)
