"""Period reports of the finance bureau: one section per topic, each a table with Chinese and
English column names, exported as XLSX (one sheet per topic, through the shell's export
writer) or a printable HTML page.

Sections: fund balances (every CNY fund account: opening, money in, money out, closing),
compensation paid and received by agreement (ledger transactions of a `compensation*` type,
e.g. the compensation package's settlements, and the thermal-power pilot's `pilot.fee`; the
agreement or obligation comes from the transaction's metadata), distributions
to villages and households (`payout*`, `distribution*`, `dividend*`, `sharing*`), carbon
credits issued, retired and traded (the registry's batches, retirements and transfers), and
the month's reconciliations. Amounts are integer fen; yuan columns are for reading only.

The market section (trades, tonnes, value and fees per day, batch and mode) is read from the
ledger's `market.settlement` transactions through `ledger.core` (their metadata names the
mode, batch, value and fee; the tonnes are the carbon postings). The benefit-sharing section
(per fund or programme and village: runs, households paid, fen to households, collectives and
named accounts) needs the sharing run lines, which only the sharing package holds. Reconcile may
not import it (DESIGN.md: ledger packages import `ledger.core` and `ledger.carbon`, never
sideways), so the composition root hands its public reader over: `ecovalue.app` calls
`provide_readers({"sharing.paid_by_village": ledger.sharing.services.totals.paid_by_village})`.
Without that reader the section is empty and says why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import clock, printable, spreadsheet
from ecovalue.auth import Principal, authorize
from ledger import core as ledger
from ledger.carbon.models import CarbonBatch, CarbonEvent, CarbonRetirement
from ledger.reconcile.models import ReconcileRun
from ledger.reconcile.statement_file import month_end

#: a reader of rows another ledger package holds: `reader(session, actor, date_from=, date_to=)`
Reader = Callable[..., Iterable[Mapping[str, Any]]]
#: the readers the composition root provided (see the module docstring), by name
READERS: dict[str, Reader] = {}


def provide_readers(readers: Mapping[str, Reader]) -> None:
    """Register the readers of rows from packages reconcile may not import (by `ecovalue.app`)."""
    READERS.update(readers)


#: compensation settlements (`compensation.settlement`, by agreement) and the thermal-power
#: pilot's fees into the forest fund (`pilot.fee`, by obligation)
COMPENSATION_TYPES = ("compensation", "pilot.fee")
DISTRIBUTION_TYPES = ("payout", "distribution", "dividend", "sharing")
MAX_TRANSACTIONS = 50_000


@dataclasses.dataclass
class Section:
    key: str
    title_zh: str
    title_en: str
    columns: list[tuple[str, str]]  #: (Chinese, English)
    rows: list[list[Any]]
    note: str | None = None

    @property
    def sheet_title(self) -> str:
        return f"{self.title_zh} {self.title_en}"[:31]


@dataclasses.dataclass
class Report:
    period: dt.date
    generated_at: dt.datetime
    generated_by: str
    sections: list[Section]


#: fen as yuan grouped in thousands, the report's and console's rendering
yuan = printable.yuan_grouped


def _fund_balances(session: Session, actor: Principal, first: dt.date,
                   last: dt.date) -> Section:
    accounts = list(session.scalars(ledger.list_accounts(session, actor, asset="CNY",
                                                         kind="fund")))
    rows = []
    for account in accounts:
        stmt = ledger.statement(session, actor, account.code, date_from=first, date_to=last)
        rows.append([account.code, account.name, stmt.opening_balance, stmt.total_credits,
                     stmt.total_debits, stmt.closing_balance, yuan(stmt.closing_balance)])
    return Section("funds", "资金余额", "Fund balances", [
        ("账户", "account"), ("名称", "name"), ("期初余额(分)", "opening_fen"),
        ("收入(分)", "money_in_fen"), ("支出(分)", "money_out_fen"),
        ("期末余额(分)", "closing_fen"), ("期末余额(元)", "closing_yuan")], rows)


def _transactions(session: Session, actor: Principal, first: dt.date, last: dt.date,
                  prefixes: tuple[str, ...]) -> list[list[Any]]:
    ids = list(session.scalars(ledger.list_transactions(session, actor, date_from=first,
                                                        date_to=last, asset="CNY")
                               .limit(MAX_TRANSACTIONS)))
    views = [v for v in sorted(ledger.load_views(session, ids), key=lambda v: v.id)
             if v.phase in ("posted", "post_pending")  # a reservation moved nothing yet
             and v.type.startswith(prefixes)]
    # a posted reservation carries its agreement on the reservation it resolves
    originals = {v.id: v for v in ledger.load_views(
        session, sorted({v.pending_id for v in views if v.pending_id is not None}))}
    rows = []
    for view in views:
        source = originals.get(view.pending_id, view) if view.pending_id else view
        metadata = source.metadata if isinstance(source.metadata, dict) else {}
        agreement = metadata.get("agreement") or metadata.get("obligation")
        payers = sorted({p.account_code for p in view.postings if p.direction == "debit"})
        payees = sorted({p.account_code for p in view.postings if p.direction == "credit"})
        amount = sum(p.amount for p in view.postings if p.direction == "debit")
        rows.append([view.id, view.effective_date, view.type, ", ".join(payers),
                     ", ".join(payees), amount, yuan(amount),
                     agreement if isinstance(agreement, str) else None,
                     source.memo if view.memo is None else view.memo])
    rows.sort(key=lambda r: (r[7] or "", r[1], r[0]))  # by agreement, then date
    return rows


_TX_COLUMNS = [("交易号", "transaction"), ("日期", "date"), ("类型", "type"),
               ("付款账户", "paid_by"), ("收款账户", "paid_to"), ("金额(分)", "amount_fen"),
               ("金额(元)", "amount_yuan"), ("协议/义务", "agreement_or_obligation"),
               ("摘要", "memo")]


#: the market's trading modes, as the settlement metadata names them
MARKET_MODES = {"listed": "挂牌 listed", "block": "大宗协议 block", "auction": "单向竞价 auction"}
SHARING_KINDS = {"distribution": "分配 distribution", "single_tree": "单株碳汇 single tree"}
#: a reversed run's rows (negated, in the month of the reversal) say so in their kind
REVERSAL_LABEL = "红字冲销 reversal"


def _market(session: Session, actor: Principal, first: dt.date, last: dt.date) -> Section:
    """Per trading day, batch and mode: trades, tonnes, value and fees (the ledger's
    market.settlement transactions)."""
    ids = list(session.scalars(ledger.list_transactions(
        session, actor, type="market.settlement", date_from=first, date_to=last)
        .limit(MAX_TRANSACTIONS)))
    totals: dict[tuple[dt.date, str, str], list[int]] = {}
    for view in ledger.load_views(session, ids):
        metadata = view.metadata if isinstance(view.metadata, dict) else {}
        batch = str(metadata.get("batch") or "")
        tonnes = sum(p.amount for p in view.postings
                     if p.direction == "credit" and p.asset == batch)
        value = sum(p.amount for p in view.postings
                    if p.direction == "debit" and p.asset == "CNY")
        fee = metadata.get("fee_fen")
        row = totals.setdefault((view.effective_date, batch, str(metadata.get("market"))),
                                [0, 0, 0, 0])
        row[0] += 1
        row[1] += tonnes
        row[2] += int(metadata.get("value_fen", value))
        row[3] += int(fee) if isinstance(fee, int) else 0
    rows = [[day, batch, MARKET_MODES.get(mode, mode), n, tonnes, value, fee, yuan(value)]
            for (day, batch, mode), (n, tonnes, value, fee) in sorted(totals.items())]
    trades, tonnes, value, fees = (sum(t[i] for t in totals.values()) for i in range(4))
    return Section("market", "碳汇交易", "Carbon market", [
        ("日期", "date"), ("批次", "batch"), ("方式", "mode"), ("成交笔数", "trades"),
        ("成交量(tCO2e)", "quantity_tco2e"), ("成交额(分)", "value_fen"),
        ("手续费(分)", "fee_fen"), ("成交额(元)", "value_yuan")], rows,
        note=f"合计 total: {trades} trades, {tonnes} tCO2e, {yuan(value)} yuan, fees "
             f"{yuan(fees)} yuan")


def _sharing_kind(row: Mapping[str, Any]) -> str:
    kind = SHARING_KINDS.get(row["kind"], row["kind"])
    return f"{kind} · {REVERSAL_LABEL}" if row.get("reversal") else kind


def _sharing(session: Session, actor: Principal, first: dt.date, last: dt.date) -> Section:
    """Per fund (or tree programme) and village: what the paid benefit-sharing runs sent to
    households, the collective and named accounts, and how many households they paid."""
    rows = []
    per_fund: dict[str, list[int]] = {}
    reader = READERS.get("sharing.paid_by_village")
    for r in reader(session, actor, date_from=first, date_to=last) if reader else ():
        total = r["households_fen"] + r["collective_fen"] + r["accounts_fen"]
        village = r["village_name_zh"] if r["village_party_id"] is not None \
            else "指定账户 named accounts"
        rows.append([r["fund_or_programme"], r["name_zh"],
                     _sharing_kind(r), r["village_party_id"], village,
                     r["runs"], r["households"], r["households_fen"], r["collective_fen"],
                     r["accounts_fen"], total, yuan(total)])
        fund = per_fund.setdefault(r["fund_or_programme"], [0, 0])
        fund[0] += total
        fund[1] += r["households"]
    note = "; ".join(f"{code}: {yuan(fen)} yuan, {households} households"
                     for code, (fen, households) in per_fund.items())
    return Section("sharing", "利益分配", "Benefit sharing", [
        ("资金/项目", "fund_or_programme"), ("名称", "name"), ("类型", "kind"),
        ("村集体", "village_party_id"), ("村", "village"), ("分配次数", "runs"),
        ("农户数", "households"), ("农户金额(分)", "households_fen"),
        ("村集体金额(分)", "collective_fen"), ("指定账户金额(分)", "accounts_fen"),
        ("合计(分)", "total_fen"), ("合计(元)", "total_yuan")], rows,
        note=f"per fund 按资金: {note}" if note
        else "本月无已支付的分配 no benefit-sharing run paid this month" if reader
        else "未接入利益分配 benefit sharing is not part of this service")


def _carbon(session: Session, first: dt.date, last: dt.date) -> Section:
    rows: list[list[Any]] = []
    for batch in session.scalars(sa.select(CarbonBatch).where(
            CarbonBatch.issued_on >= first, CarbonBatch.issued_on <= last)
            .order_by(CarbonBatch.id)):
        rows.append(["签发 issued", batch.issued_on, batch.asset_code, batch.vintage_year,
                     batch.quantity_t, batch.serial_block, f"buffer {batch.buffer_t} t"])
    for retirement in session.scalars(sa.select(CarbonRetirement).where(
            CarbonRetirement.retired_on >= first, CarbonRetirement.retired_on <= last)
            .order_by(CarbonRetirement.id)):
        rows.append(["注销 retired", retirement.retired_on, retirement.certificate_number,
                     retirement.vintage_year, retirement.quantity_t,
                     retirement.beneficiary_name, retirement.purpose])
    for event in session.scalars(sa.select(CarbonEvent).where(
            CarbonEvent.kind == "transfer", CarbonEvent.effective_date >= first,
            CarbonEvent.effective_date <= last).order_by(CarbonEvent.id)):
        rows.append(["转让 traded", event.effective_date, f"batch {event.batch_id}", None,
                     event.quantity_t, f"ledger transaction {event.ledger_transaction_id}",
                     None])
    return Section("carbon", "碳汇", "Carbon credits", [
        ("事项", "event"), ("日期", "date"), ("批次/证书", "batch_or_certificate"),
        ("年份", "vintage_year"), ("数量(tCO2e)", "quantity_tco2e"), ("说明", "detail"),
        ("备注", "note")], rows)


def _reconciliations(session: Session, period: dt.date) -> Section:
    rows = [[run.id, run.account_code, run.status, run.prepared_by, run.signed_off_by,
             run.statement_closing_fen, run.ledger_closing_fen]
            for run in session.scalars(sa.select(ReconcileRun).where(
                ReconcileRun.period == period, ReconcileRun.status != "superseded")
                .order_by(ReconcileRun.id))]
    return Section("reconciliations", "对账", "Reconciliations", [
        ("对账号", "run"), ("账户", "account"), ("状态", "status"), ("编制人", "prepared_by"),
        ("签核人", "signed_off_by"), ("银行期末余额(分)", "statement_closing_fen"),
        ("账本期末余额(分)", "ledger_closing_fen")], rows)


def build_report(session: Session, actor: Principal, period: dt.date) -> Report:
    authorize(actor, "reconcile.report.read")
    first = period.replace(day=1)
    last = min(month_end(first), clock.local_today())
    if last < first:
        last = first  # a month that has not begun: empty sections
        sections_last = first - dt.timedelta(days=1)
    else:
        sections_last = last
    compensation = _transactions(session, actor, first, sections_last, COMPENSATION_TYPES)
    distributions = _transactions(session, actor, first, sections_last, DISTRIBUTION_TYPES)
    sections = [
        _fund_balances(session, actor, first, last),
        Section("compensation", "生态补偿", "Compensation", _TX_COLUMNS, compensation,
                note="ledger transactions of a compensation type, paid and received"),
        _sharing(session, actor, first, sections_last),
        Section("distributions", "分配交易", "Distribution transactions", _TX_COLUMNS,
                distributions, note="every ledger transaction of a payout, distribution, "
                                    "dividend or sharing type"),
        _carbon(session, first, sections_last),
        _market(session, actor, first, sections_last),
        _reconciliations(session, first),
    ]
    return Report(first, clock.utcnow(), actor.label, sections)


def report_xlsx(report: Report) -> bytes:
    """One sheet per topic: a Chinese header row, an English one, then the rows."""
    sheets: dict[str, list[list[Any]]] = {}
    for section in report.sections:
        sheets[section.sheet_title] = [[zh for zh, _ in section.columns],
                                       [en for _, en in section.columns], *section.rows]
    return spreadsheet.write_xlsx(sheets)


def report_data(report: Report) -> dict[str, Any]:
    return {
        "period": report.period.isoformat()[:7], "generated_at": report.generated_at,
        "generated_by": report.generated_by,
        "sections": [{"key": s.key, "title_zh": s.title_zh, "title_en": s.title_en,
                      "columns": [en for _, en in s.columns],
                      "rows": [dict(zip((en for _, en in s.columns), row)) for row in s.rows],
                      "note": s.note} for s in report.sections],
    }
