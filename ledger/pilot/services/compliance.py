"""Compliance per plant and year (emissions, obligation, retired, paid, shortfall, status),
the pilot report for the prefecture (JSON and XLSX through the shell's export writer), and the
forest compensation fund's inflows from the pilot for the finance bureau."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import spreadsheet
from ecovalue.auth import Principal, authorize
from ecovalue.errors import ValidationFailed
from ledger import core as ledger
from ledger.pilot.models import PilotEmissionReport, PilotObligation, PilotSettlement
from ledger.pilot.services import obligations, rules
from ledger.pilot.services import reports as filings
from ledger.pilot.services.common import now_and_today, party_names, readable, valid_year

#: a plant with no live report for the year, or one waiting for its verifier
NO_REPORT, REPORT_FILED = "no_report", "report_filed"
#: verified, but the year has no rule yet (so no obligation)
NO_RULE = "no_rule"
STATUSES = (NO_REPORT, REPORT_FILED, NO_RULE, "open", "partially_settled", "settled",
            "overdue")


def _year(year: Any) -> int:
    if not valid_year(year):
        raise ValidationFailed("invalid year", errors=[
            {"location": "query", "field": "year", "message": "a year (2000-2100)"}])
    return int(year)


def compliance(session: Session, actor: Principal, year: int, *,
               now: dt.datetime | None = None) -> dict[str, Any]:
    """Every thermal-power plant's position for `year` (a plant's trader sees its own): the
    enterprises of sector thermal_power, and any party that filed for the year."""
    year = _year(year)
    scope = readable(actor)
    if scope.nothing:
        authorize(actor, "pilot.read")
    _, today = now_and_today(now)
    reports = {r.plant_party_id: r for r in session.scalars(
        sa.select(PilotEmissionReport).where(
            PilotEmissionReport.year == year, PilotEmissionReport.status != "rejected",
            scope.condition(party=PilotEmissionReport.plant_party_id)))}
    owed = {o.plant_party_id: o for o in session.scalars(sa.select(PilotObligation).where(
        PilotObligation.year == year, scope.condition(party=PilotObligation.plant_party_id)))}
    plants = set(session.scalars(sa.select(Party.id).where(
        Party.kind == "enterprise", Party.sector == "thermal_power",
        scope.condition(party=Party.id))))
    ids = plants | set(reports) | set(owed)
    names = party_names(session, ids)
    rule = rules.find_rule(session, year)
    rows = []
    for party_id in sorted(ids):
        report, obligation = reports.get(party_id), owed.get(party_id)
        party = names.get(party_id)
        row: dict[str, Any] = {
            "plant": {"id": party_id, "name_zh": party.name_zh if party else None,
                      "name_en": party.name_en if party else None,
                      "credit_code": party.credit_code if party else None},
            "year": year, "report_id": report.id if report else None,
            "report_status": report.status if report else None,
            "report_filed_late": filings.filed_late(report, rule) if report else None,
            "emissions_tco2": report.emissions_tco2 if report and report.status == "verified"
            else None,
            "obligation_id": None, "obligation_code": None, "obligation_t": None,
            "retired_t": None, "fee_t": None, "paid_fen": None, "shortfall_t": None,
            "shortfall_fen": None, "settlement_deadline": rule.settlement_deadline
            if rule else None, "settled_on": None, "late": False}
        if obligation is not None:
            view = obligations.obligation_view(session, obligation, today=today,
                                               settlements=[])
            row.update({k: view[k] for k in (
                "obligation_t", "retired_t", "fee_t", "paid_fen", "shortfall_t",
                "shortfall_fen", "settlement_deadline", "settled_on", "late", "status")})
            row.update(obligation_id=obligation.id, obligation_code=obligation.code,
                       emissions_tco2=obligation.emissions_tco2)
        elif report is None:
            row["status"] = NO_REPORT
        elif report.status == "filed":
            row["status"] = REPORT_FILED
        else:
            row["status"] = NO_RULE
        rows.append(row)
    settled = [r for r in rows if r["obligation_t"] is not None]
    totals = {f: sum(r[f] for r in settled) for f in (
        "emissions_tco2", "obligation_t", "retired_t", "fee_t", "paid_fen", "shortfall_t",
        "shortfall_fen")}
    return {"year": year, "as_of": today, "rule": rule_summary(rule) if rule else None,
            "plants": rows, "totals": totals,
            "status_counts": {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}}


def rule_summary(rule: Any) -> dict[str, Any]:
    return {k: getattr(rule, k) for k in (
        "year", "share_bp", "fee_fen_per_tco2", "eligible_region_code",
        "eligible_methodologies", "vintage_from", "vintage_to", "report_deadline",
        "settlement_deadline", "fund_account_code", "version")}


_REPORT_COLUMNS = [
    ("plant_id", "企业ID plant id"), ("plant_name", "企业 plant"),
    ("credit_code", "统一社会信用代码 credit code"), ("status", "状态 status"),
    ("emissions_tco2", "核查排放量 verified emissions (tCO2)"),
    ("obligation_t", "补偿义务 obligation (tCO2)"),
    ("retired_t", "注销碳汇 retired credits (tCO2e)"), ("fee_t", "缴费抵扣 covered by fee (tCO2)"),
    ("paid_fen", "缴费 fee paid (fen)"), ("shortfall_t", "缺口 shortfall (tCO2)"),
    ("shortfall_fen", "缺口折算 shortfall at the fee (fen)"),
    ("settlement_deadline", "履约截止 settlement deadline"), ("settled_on", "履约日期 settled on"),
    ("report_filed_late", "逾期报送 report filed late"),
]


def report_xlsx(session: Session, actor: Principal, year: int, *,
                now: dt.datetime | None = None) -> bytes:
    """The pilot report of `year` as XLSX: one sheet per plant position, one of settlements
    (certificates, fee transactions), one of the rule; all through the export writer."""
    data = compliance(session, actor, year, now=now)
    plants: list[list[Any]] = [[label for _, label in _REPORT_COLUMNS]]
    for row in data["plants"]:
        values = {**row, "plant_id": row["plant"]["id"], "plant_name": row["plant"]["name_zh"],
                  "credit_code": row["plant"]["credit_code"]}
        plants.append([values.get(key) for key, _ in _REPORT_COLUMNS])
    totals = data["totals"]
    plants.append(["合计 total", None, None, None, *(totals[k] for k, _ in _REPORT_COLUMNS[4:11]),
                   None, None, None])
    ids = [r["obligation_id"] for r in data["plants"] if r["obligation_id"] is not None]
    names = {r["obligation_id"]: r["plant"]["name_zh"] for r in data["plants"]}
    settled: list[list[Any]] = [["义务 obligation", "企业 plant", "方式 kind", "吨 tonnes (tCO2e)",
                "金额 amount (fen)", "批次 batch", "年份 vintage", "证书 certificate",
                "账本交易 ledger transaction", "日期 date"]]
    codes = {r["obligation_id"]: r["obligation_code"] for r in data["plants"]}
    for s in obligations.settlements_of(session, ids):
        settled.append([codes[s.obligation_id], names[s.obligation_id], s.kind, s.quantity_t,
                        s.amount_fen, s.batch_asset_code, s.vintage_year, s.certificate_number,
                        s.ledger_transaction_id, s.settled_on])
    rule = data["rule"] or {}
    rule_rows: list[list[Any]] = [["规则 rule", "值 value"], *([k, v] for k, v in rule.items())]
    return spreadsheet.write_xlsx({f"履约 compliance {data['year']}": plants,
                                   "结算 settlements": settled, "规则 rule": rule_rows})


@dataclasses.dataclass(frozen=True)
class FundLine:
    settlement_id: int
    obligation_code: str
    year: int
    plant_party_id: int
    plant_name_zh: str | None
    tonnes: int
    amount_fen: int
    ledger_transaction_id: int
    from_account: str
    settled_on: dt.date


def fund_statement(session: Session, actor: Principal, *, year: int | None = None,
                   now: dt.datetime | None = None) -> dict[str, Any]:
    """The pilot's inflows into the forest compensation fund: each plant's fee payment
    (obligation, tonnes, fen, ledger transaction), totals per plant, and the fund account's
    balance now, for the finance bureau (and benefit sharing, which distributes the fund)."""
    authorize(actor, "pilot.fund.read")
    if year is not None:
        year = _year(year)
    stmt = sa.select(PilotSettlement, PilotObligation.code, PilotObligation.year).join(
        PilotObligation, PilotObligation.id == PilotSettlement.obligation_id).where(
        PilotSettlement.kind == "fee").order_by(PilotSettlement.id)
    if year is not None:
        stmt = stmt.where(PilotObligation.year == year)
    rows = session.execute(stmt).all()
    names = party_names(session, {s.plant_party_id for s, _, _ in rows})
    lines = [FundLine(s.id, code, y, s.plant_party_id,
                      names[s.plant_party_id].name_zh if s.plant_party_id in names else None,
                      s.quantity_t, s.amount_fen, s.ledger_transaction_id, s.from_account_code,
                      s.settled_on) for s, code, y in rows]
    by_plant: dict[int, dict[str, Any]] = {}
    for line in lines:
        entry = by_plant.setdefault(line.plant_party_id, {
            "plant_party_id": line.plant_party_id, "plant_name_zh": line.plant_name_zh,
            "payments": 0, "tonnes": 0, "amount_fen": 0})
        entry["payments"] += 1
        entry["tonnes"] += line.tonnes
        entry["amount_fen"] += line.amount_fen
    accounts = sorted({r.fund_account_code for r in rules.list_rules(session)
                       if year is None or r.year == year})
    funds = []
    for code in accounts:
        balance = ledger.account_balance(session, actor, code)
        funds.append({"account": code, "balance_fen": balance.balance,
                      "available_fen": balance.available})
    _, today = now_and_today(now)
    return {"year": year, "as_of": today, "funds": funds,
            "lines": [dataclasses.asdict(line) for line in lines],
            "by_plant": list(by_plant.values()),
            "total_fen": sum(line.amount_fen for line in lines)}
