"""Pure helpers: amount rules, accounting dates, exact yuan text, statement files."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from ledger.core import export
from ledger.core.amounts import MAX_AMOUNT, amount_problem, signed_problem, yuan_text
from ledger.core.calendar import format_month, local_date, month_of, next_month, parse_month
from ledger.core.services import Statement, StatementLine


@pytest.mark.parametrize("value, ok", [
    (1, True), (MAX_AMOUNT, True), (0, False), (-1, False), (MAX_AMOUNT + 1, False),
    (1.5, False), (1.0, False), ("1", False), ("1.0", False), (True, False), (None, False),
])
def test_amount_rule(value, ok):
    assert (amount_problem(value) is None) is ok


@pytest.mark.parametrize("value, ok", [(0, True), (-5, True), (-(2**63), True),
                                       (-(2**63) - 1, False), (2**63, False), (2.0, False)])
def test_signed_rule(value, ok):
    assert (signed_problem(value) is None) is ok


@pytest.mark.parametrize("fen, text", [(0, "0.00"), (5, "0.05"), (-5, "-0.05"),
                                       (123456, "1234.56"), (-100, "-1.00"),
                                       (MAX_AMOUNT, "92233720368547758.07")])
def test_yuan_text_is_exact(fen, text):
    assert yuan_text(fen) == text


def test_local_date_is_shanghai():
    # 2024-03-31 16:30 UTC is already 1 April 00:30 in Shanghai (UTC+8)
    assert local_date(dt.datetime(2024, 3, 31, 16, 30, tzinfo=dt.UTC)) == dt.date(2024, 4, 1)
    assert local_date(dt.datetime(2024, 3, 31, 15, 59, tzinfo=dt.UTC)) == dt.date(2024, 3, 31)
    with pytest.raises(ValueError):
        local_date(dt.datetime(2024, 3, 31))


def test_months():
    assert month_of(dt.date(2024, 2, 29)) == dt.date(2024, 2, 1)
    assert parse_month("2024-12") == dt.date(2024, 12, 1)
    assert format_month(dt.date(2024, 3, 1)) == "2024-03"
    assert next_month(dt.date(2024, 12, 1)) == dt.date(2025, 1, 1)
    for bad in ("2024-13", "2024-3", "24-03", "", "2024-00"):
        with pytest.raises(ValueError):
            parse_month(bad)


def _statement(unit="fen"):
    lines = [StatementLine(dt.date(2024, 3, 2), 7, "deposit", "首笔", 0, 10_050, 10_050),
             StatementLine(dt.date(2024, 3, 5), 9, "transfer", None, 2_025, 0, 8_025)]
    return Statement(1, "ALICE", "某村", 2, "CNY", unit, dt.date(2024, 3, 1),
                     dt.date(2024, 3, 31), 0, 8_025, 2_025, 10_050, lines)


def test_statement_csv_has_bom_running_balance_and_exact_yuan():
    data = export.statement_csv(_statement())
    assert data.startswith("\ufeff".encode())
    text = data.decode("utf-8-sig")
    assert "opening_balance,0" in text and "closing_balance,8025" in text
    assert "2024-03-02,7,deposit,首笔,0,10050,10050,0.00,100.50,100.50" in text
    assert "2024-03-05,9,transfer,,2025,0,8025,20.25,0.00,80.25" in text


def test_statement_csv_of_credits_has_no_yuan_columns():
    text = export.statement_csv(_statement("tCO2e")).decode("utf-8-sig")
    assert "balance_yuan" not in text


def test_statement_xlsx_round_trips():
    sheet = load_workbook(io.BytesIO(export.statement_xlsx(_statement()))).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][:2] == ["account", "ALICE"]
    header = rows.index([*export.HEADER, "debit_yuan", "credit_yuan", "balance_yuan"])
    assert rows[header + 2][:7] == ["2024-03-05", 9, "transfer", None, 2025, 0, 8025]
