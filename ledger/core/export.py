"""Statement files: CSV (UTF-8 with BOM, so Excel on a Chinese Windows opens it correctly) and
XLSX, written by the shell's export writer (a memo or account name that would start a formula
is written as text). Pure: a `Statement` in, bytes out. Amounts stay integers in the asset's
unit; CNY statements add exact yuan columns (Decimal: the exact digits in CSV, numbers in XLSX,
never floats computed from fen)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from openpyxl.styles import Font

from ecovalue.spreadsheet import append_row, new_workbook, workbook_bytes, write_csv
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
            row += [Decimal(yuan_text(line.debit)), Decimal(yuan_text(line.credit)),
                    Decimal(yuan_text(line.balance))]
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
    header, rows = _rows(statement)
    return write_csv([*_preamble(statement), [], header, *rows])


def statement_xlsx(statement: Any) -> bytes:
    workbook = new_workbook()
    sheet = workbook.active
    sheet.title = "statement"
    for row in _preamble(statement):
        append_row(sheet, row)[0].font = Font(bold=True)
    sheet.append([])
    header, rows = _rows(statement)
    for cell in append_row(sheet, header):
        cell.font = Font(bold=True)
    for row in rows:
        append_row(sheet, row)
    for column, width in zip("ABCDEFGHIJ", (14, 15, 14, 40, 16, 16, 18, 14, 14, 16), strict=False):
        sheet.column_dimensions[column].width = width
    return workbook_bytes(workbook)
