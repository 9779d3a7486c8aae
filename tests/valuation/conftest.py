"""Helpers of the valuation tests."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from valuation.services import prices

WANGMO, XINGYI, PREFECTURE = "522326", "522301", "522300"


@pytest.fixture()
def reference(session):
    """Default CPI series and the default price book, committed."""
    prices.ensure_reference_data(session)
    session.commit()
    return session


def xlsx(rows: list[list], sheet: str = "quantities") -> bytes:
    workbook = Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    for row in rows:
        worksheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


HEADER = ["region_code", "year", "indicator", "item", "ecosystem_type", "quantity", "unit",
          "origin", "note"]


def row(indicator, quantity, unit, *, eco="forest", item=None, region=WANGMO, year=2024,
        origin="local", note=None):
    return {"region_code": region, "year": year, "indicator": indicator, "item": item,
            "ecosystem_type": eco, "quantity": quantity, "unit": unit, "origin": origin,
            "note": note}
