"""Statement files: CSV (UTF-8 with BOM, so Excel on a Chinese Windows opens it correctly) and
XLSX. Pure: a `Statement` in, bytes out. Amounts stay integers in the asset's unit; CNY
statements add exact yuan columns (text, never floats)."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from ledger.core.amounts import yuan_text

HEADER = ["effective_date", "transaction_id", "type", "memo", "debit", "credit", "balance"]


def _rows(statement: Any) -> tuple[list[str], list[list[Any]]]:
    yuan = statement.unit == "fen"
    header = HEADER + (["debit_yuan", "credit_yuan", "balance_yuan"] if yuan else [])
    rows = []
    for line in statement.lines:
        row = [line.effective_date.isoformat(), line.transaction_id, line.type, line.memo or "",
               line.debit, line.credit, line.balance]
        if yuan:
            row += [yuan_text(line.debit), yuan_text(line.credit), yuan_text(line.balance)]
        rows.append(row)
    return header, rows


def _preamble(statement: Any) -> list[list[Any]]:
    return [
        ["account", statement.account_code, statement.account_name],
        ["asset", statement.asset, statement.unit],
        ["period", statement.date_from.isoformat(), statement.date_to.isoformat()],
        ["opening_balance", statement.opening_balance],
        ["closing_balance", statement.closing_balance],
        ["total_debits", statement.total_debits],
        ["total_credits", statement.total_credits],
    ]


def statement_csv(statement: Any) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in _preamble(statement):
        writer.writerow(row)
    writer.writerow([])
    header, rows = _rows(statement)
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def statement_xlsx(statement: Any) -> bytes:
    workbook = Workbook(write_only=False)
    sheet = workbook.active
    sheet.title = "statement"
    for row in _preamble(statement):
        sheet.append(row)
        sheet.cell(sheet.max_row, 1).font = Font(bold=True)
    sheet.append([])
    header, rows = _rows(statement)
    sheet.append(header)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    for column, width in zip("ABCDEFGHIJ", (14, 15, 14, 40, 16, 16, 18, 14, 14, 16), strict=False):
        sheet.column_dimensions[column].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
