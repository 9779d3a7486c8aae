"""Reconciliation fixtures: a month of fund movements in the ledger and its bank statement."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine

from ecovalue.auth import Principal, Role
from ledger import core as ledger

#: the month reconciled in the service tests, and a clock standing after it
PERIOD = dt.date(2024, 3, 1)
AFTER = dt.datetime(2024, 4, 10, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai

PREPARER = Principal(role=Role.FINANCE, label="token:901:preparer", token_id=901)
SIGNER = Principal(role=Role.FINANCE, label="token:902:signer", token_id=902)
AUDITOR = Principal(role=Role.AUDITOR, label="token:903:auditor", token_id=903)


@pytest.fixture()
def after_the_month():
    with time_machine.travel(AFTER, tick=False):
        yield


def day(n: int) -> dt.date:
    return PERIOD + dt.timedelta(days=n - 1)


def pay(session, debit: str, credit: str, amount: int, on: dt.date, *,
        reference: str | None = None, type_: str = "transfer") -> int:
    """A posted movement (system actor) dated `on`, with `reference` in its metadata."""
    from ecovalue.auth import system_principal
    return ledger.post(session, system_principal("test"), ledger.TransactionSpec(
        type=type_, effective_date=on, metadata={"reference": reference} if reference else None,
        postings=[ledger.PostingSpec(debit, "CNY", "debit", amount),
                  ledger.PostingSpec(credit, "CNY", "credit", amount)])).id


HEADER = "交易日期,流水号,收入,支出,余额,对方户名,附言,摘要"


def csv_bytes(rows, *, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    """rows: (date, serial, in_yuan, out_yuan, balance_yuan, counterparty, reference, memo)."""
    lines = [header] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def xlsx_bytes(rows, *, header: str = HEADER) -> bytes:
    from openpyxl import Workbook
    book = Workbook()
    sheet = book.active
    sheet.append(["XX银行 对账单"])
    sheet.append(header.split(","))
    for r in rows:
        sheet.append(list(r))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
