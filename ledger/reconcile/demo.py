"""Demo reconciliation (every amount DEMO): last month's movements of the demo forest
compensation fund, its bank statement and one run.

Last month the provincial treasury transferred 300,000.00 yuan into the fund (vertical
compensation) and the fund paid the Kafa village collective 120,000.00 and 180,000.00 yuan
(two instalments), so the fund's balance today is what the ledger demo left. The bank's
statement shows the transfer with its reference, the first instalment with `EV-<id>` in its
memo, the second without reference and with the payee's name as the bank writes it (two days
later), and 12.34 yuan of interest the ledger has not booked: the run confirms two matches
itself, proposes one and leaves the interest open for an officer.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.demo import PARTIES
from catalog.models import Party
from ecovalue import clock
from ecovalue.auth import Principal, system_principal
from ledger import core as ledger
from ledger.reconcile.models import ReconcileStatement
from ledger.reconcile.services import runs, statements

FUND = "DEMO-FOREST-FUND"
TREASURY = "DEMO-PROVINCE-TREASURY"
KAFA = "DEMO-KAFA-CNY"
DEMO = {"demo": True, "note": "DEMO data for trying the service; not real payments"}
TRANSFER_FEN = 300_000_00
FIRST_FEN, SECOND_FEN = 120_000_00, 180_000_00
INTEREST_FEN = 12_34
TREASURY_REFERENCE = "GZCZ-2026-STB-0118"


def _party(session: Session, key: str) -> int:
    name = PARTIES[key]["name_zh"]
    party_id = session.scalar(sa.select(Party.id).where(Party.name_zh == name))
    if party_id is None:
        raise LookupError(f"demo party {key!r} missing: load the catalog demo first")
    return party_id


def last_month(today: dt.date) -> dt.date:
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def statement_csv(period: dt.date, first_instalment_id: int) -> bytes:
    """The demo bank's statement of the fund for `period`, as its CSV export (GBK, as a
    Chinese bank's download is)."""
    def day(n: int) -> str:
        return (period + dt.timedelta(days=n - 1)).isoformat()

    rows = [
        "交易日期,流水号,收入,支出,余额,对方户名,附言,摘要",
        f"{day(3)},DEMO-0001,300000.00,,300000.00,贵州省财政厅,{TREASURY_REFERENCE},"
        "省级生态补偿转移支付",
        f"{day(9)},DEMO-0002,,120000.00,180000.00,卡法村股份经济合作社,,"
        f"EV-{first_instalment_id} 第一期",
        f"{day(22)},DEMO-0003,,180000.00,0.00,卡法村股份经济合作社,,第二期补偿款",
        f"{day(28)},DEMO-0004,12.34,,12.34,中国农业银行,,利息",
    ]
    return ("\r\n".join(rows) + "\r\n").encode("gbk")


def load(session: Session, actor: Principal) -> list[str]:
    try:
        ledger.find_account(session, FUND)
    except Exception:  # no ledger demo: nothing to reconcile
        return ["reconcile: no demo fund account, nothing to reconcile"]
    if session.scalar(sa.select(sa.func.count()).select_from(ReconcileStatement)):
        return ["reconcile: demo reconciliation already present"]
    period = last_month(clock.local_today())
    bureau, kafa = _party(session, "wangmo_bureau"), _party(session, "kafa")
    ledger.create_account(session, actor, party_id=bureau, asset="CNY", kind="external",
                          code=TREASURY, name="贵州省财政厅 (DEMO)", attributes=DEMO)
    ledger.create_account(session, actor, party_id=kafa, asset="CNY", kind="holding",
                          code=KAFA, name="卡法村股份经济合作社 (DEMO)", attributes=DEMO)

    def move(source: str, target: str, amount: int, day: int, memo: str,
             reference: str | None = None, type_: str = "compensation") -> int:
        return ledger.post(session, actor, ledger.TransactionSpec(
            type=type_, memo=memo, effective_date=period + dt.timedelta(days=day - 1),
            metadata={**DEMO, **({"reference": reference} if reference else {})},
            postings=[ledger.PostingSpec(source, "CNY", "debit", amount),
                      ledger.PostingSpec(target, "CNY", "credit", amount)])).id

    move(TREASURY, FUND, TRANSFER_FEN, 3, "DEMO: provincial compensation transfer",
         TREASURY_REFERENCE)
    first = move(FUND, KAFA, FIRST_FEN, 8, "DEMO: Kafa forest compensation, 1st instalment",
                 type_="payout")
    move(FUND, KAFA, SECOND_FEN, 20, "DEMO: Kafa forest compensation, 2nd instalment",
         type_="payout")
    imported = statements.import_statement(
        session, actor, statement_csv(period, first), "demo-abc-statement.csv", account=FUND,
        period=period)
    preparer = system_principal("demo:preparer")
    run = runs.create_run(session, preparer, account=FUND, period=period)
    summary = runs.summarize(session, run)
    return [f"reconcile: demo statement of {FUND} for {period:%Y-%m} ({imported.line_count} "
            f"lines) and run {run.id}: {summary.counts['matched']} matches, "
            f"{summary.unresolved} unresolved"]
