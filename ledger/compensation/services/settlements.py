"""Settlements: an agreement's period cleared from its monitored values into a statement
(who owes whom, netted), its payments reserved as pending ledger transfers; approved (posted)
by the finance bureau, never by the preparer, or rejected (voided).

Running a settlement twice pays once: there is one live settlement per agreement and period
(`live_key`), and preparing it again returns the live one unchanged. After a rejection the
period may be prepared afresh (with corrected monitored values, say).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.services import parties
from ecovalue import audit, printable, spreadsheet
from ecovalue.auth import Principal, authorize
from ecovalue.clock import utcnow
from ecovalue.errors import ValidationFailed
from ledger import core as ledger
from ledger.compensation import clearing
from ledger.compensation import terms as terms_module
from ledger.compensation.errors import (
    MissingAssessments,
    OwnSettlement,
    PeriodNotInAgreement,
    SettlementNotFound,
    SettlementNotPrepared,
)
from ledger.compensation.models import (
    CompensationAgreement,
    CompensationPayment,
    CompensationSettlement,
)
from ledger.compensation.services import agreements, assessments, gep
from ledger.compensation.services.common import CNY, fetch

PREPARE = "compensation.settlement.prepare"
APPROVE = "compensation.settlement.approve"
#: the ledger transaction type of a settlement's payments
TX_TYPE = "compensation.settlement"


def receive_account_code(agreement_code: str, party_key: str) -> str:
    """The fund account a party of an agreement is paid into, unless its terms name another:
    an ordinary ledger account (kind `fund`) of that party, e.g. COMP-CHISHUI-2018-YUNNAN,
    from which benefit sharing distributes."""
    return f"COMP-{agreement_code}-{party_key.upper()}"


def pay_account_code(party_id: int) -> str:
    """The account a party pays from, unless its terms name another: its treasury or bank,
    outside the ledger (kind `external`), so the money enters the ledger when finance posts
    the payment."""
    return f"COMP-P{party_id}-TREASURY"


def _pay_from(session: Session, actor: Principal, party: Mapping[str, Any]) -> str:
    """The account a party pays from: the one its terms name, else its treasury account
    (opened if new)."""
    if party.get("pay_from") is not None:
        return str(party["pay_from"])
    name = parties.get_party(session, actor, party["party_id"]).name_zh
    return ledger.ensure_account(
        session, actor, party_id=party["party_id"], asset=CNY, kind="external",
        code=pay_account_code(party["party_id"]),
        name=f"{name} 财政/银行账户 (treasury or bank, outside the ledger)"[:200],
        action=PREPARE).code


def _receive_into(session: Session, actor: Principal, agreement_code: str,
                  party: Mapping[str, Any]) -> str:
    """The account a party is paid into: the one its terms name, else its compensation fund
    account of this agreement (opened if new)."""
    if party.get("receive_into") is not None:
        return str(party["receive_into"])
    name = parties.get_party(session, actor, party["party_id"]).name_zh
    return ledger.ensure_account(
        session, actor, party_id=party["party_id"], asset=CNY, kind="fund",
        code=receive_account_code(agreement_code, party["key"]),
        name=f"{name} 生态补偿资金 {agreement_code} (compensation fund)"[:200],
        action=PREPARE).code


def _live(session: Session, code: str, period: str) -> CompensationSettlement | None:
    return session.scalar(sa.select(CompensationSettlement)
                          .where(CompensationSettlement.live_key == f"{code}/{period}"))


def _statement(agreement: CompensationAgreement, period: str, amount_fen: int,
               result: clearing.Clearing, used: Mapping[tuple[str, str], Any],
               names: Mapping[int, str],
               from_valuation: Mapping[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    by_key = {p["key"]: p for p in agreement.terms["parties"]}
    return {
        "agreement": {"id": agreement.id, "code": agreement.code, "version": agreement.version,
                      "kind": agreement.kind, "name_zh": agreement.name_zh,
                      "terms_sha256": agreement.terms_sha256},
        "period": period, "amount_fen": amount_fen, "all_met": result.all_met,
        "evaluations": [{**dataclasses.asdict(e), **(
            {"assessment_id": None, "valuation": from_valuation[(e.section, e.indicator)]}
            if (e.section, e.indicator) in from_valuation else
            {"assessment_id": used[(e.section, e.indicator)].id})} for e in result.evaluations],
        "positions": [{**dataclasses.asdict(p), "party_id": by_key[p.party]["party_id"],
                       "name_zh": names[by_key[p.party]["party_id"]],
                       "region_code": by_key[p.party].get("region_code")}
                      for p in result.positions],
        "adjustments": [dataclasses.asdict(a) for a in result.adjustments],
        "transfers": [dataclasses.asdict(t) for t in result.transfers],
    }


def prepare(session: Session, actor: Principal, code: str, period: str) -> tuple[
        CompensationSettlement, bool]:
    """Clear `period` of agreement `code` (its version in force) and reserve the netted
    payments as pending ledger transfers. Returns (settlement, created): an existing live
    settlement of the period is returned as it is, with created False."""
    authorize(actor, PREPARE)
    agreement = agreements.in_force(session, actor, code)
    terms = agreement.terms
    if period not in terms["periods"]:
        raise PeriodNotInAgreement(
            f"agreement {code} has no period {period} (its periods: "
            f"{', '.join(terms['periods'])})", errors=[{"field": "period",
                                                        "message": "not a period of it"}])
    existing = _live(session, code, period)
    if existing is not None:
        return existing, False
    instalment = next(i for i in terms_module.schedule_of(terms) if i.period == period)
    conditions = terms_module.conditions_of(terms)
    from_valuation = gep.evaluate(session, terms, period)
    used = assessments.latest(session, {c.section for c in conditions
                                        if (c.section, c.indicator) not in from_valuation},
                              period)
    values = {**{k: a.value for k, a in used.items()},
              **{k: v["value"] for k, v in from_valuation.items()}}
    try:
        result = clearing.clear(instalment.payment_fen, terms_module.parties_of(terms),
                                conditions, values)
    except clearing.MissingValues as exc:
        raise MissingAssessments(
            f"{len(exc.missing)} condition(s) of {code} have no monitored value for {period}; "
            "record them first (missing is not zero)",
            errors=[{"field": f"conditions.{key}", "message": f"no {indicator} at section "
                     f"{section} for {period}"} for key, section, indicator in exc.missing]
        ) from exc
    party_rows = {p["key"]: p for p in terms["parties"]}
    names = {p["party_id"]: parties.get_party(session, actor, p["party_id"]).name_zh
             for p in terms["parties"]}
    now = utcnow()
    settlement = CompensationSettlement(
        agreement_id=agreement.id, agreement_code=code, period=period,
        live_key=f"{code}/{period}", status="prepared", amount_fen=instalment.payment_fen,
        payments_total_fen=sum(t.amount_fen for t in result.transfers),
        statement=_statement(agreement, period, instalment.payment_fen, result, used, names,
                             from_valuation),
        prepared_at=now, prepared_by=actor.label)
    try:
        with session.begin_nested():  # a racing preparation of the period may commit first
            session.add(settlement)
            session.flush()
    except IntegrityError:
        raced = _live(session, code, period)
        if raced is None:
            raise
        return raced, False
    for seq, transfer in enumerate(result.transfers, start=1):
        payer, payee = party_rows[transfer.payer], party_rows[transfer.payee]
        from_account = _pay_from(session, actor, payer)
        to_account = _receive_into(session, actor, code, payee)
        tx = ledger.post(session, actor, ledger.TransactionSpec(
            type=TX_TYPE, pending=True,
            memo=f"{code} {period} 生态补偿结算 #{settlement.id}: {transfer.payer} -> "
                 f"{transfer.payee}",
            metadata={"settlement_id": settlement.id, "agreement": code,
                      "version": agreement.version, "period": period,
                      "payer": transfer.payer, "payee": transfer.payee},
            idempotency_key=f"compensation:settlement:{settlement.id}:{seq}",
            postings=[ledger.PostingSpec(from_account, CNY, "debit", transfer.amount_fen),
                      ledger.PostingSpec(to_account, CNY, "credit", transfer.amount_fen)]),
            action=PREPARE)
        session.add(CompensationPayment(
            settlement_id=settlement.id, seq=seq, payer_key=transfer.payer,
            payer_party_id=payer["party_id"], payee_key=transfer.payee,
            payee_party_id=payee["party_id"], from_account=from_account,
            to_account=to_account, amount_fen=transfer.amount_fen, status="pending",
            pending_tx_id=tx.id))
    session.flush()
    audit.record(session, actor, "compensation.settlement.prepare", "compensation_settlement",
                 settlement.id, after=audit.snapshot(settlement))
    return settlement, True


def _locked(session: Session, settlement_id: int) -> CompensationSettlement:
    settlement = fetch(session, CompensationSettlement, settlement_id)
    if settlement is None:
        raise SettlementNotFound(f"no settlement {settlement_id}")
    session.refresh(settlement, with_for_update=True)
    if settlement.status != "prepared":
        raise SettlementNotPrepared(f"settlement {settlement_id} was already "
                                    f"{settlement.status} by {settlement.decided_by}",
                                    status=settlement.status)
    return settlement


def payments(session: Session, settlement_id: int) -> list[CompensationPayment]:
    return list(session.scalars(sa.select(CompensationPayment)
                                .where(CompensationPayment.settlement_id == settlement_id)
                                .order_by(CompensationPayment.seq)))


def _note(note: str | None) -> str | None:
    note = (note or "").strip() or None
    if note is not None and len(note) > 500:
        raise ValidationFailed("the note is too long", errors=[
            {"field": "note", "message": "at most 500 characters"}])
    return note


def approve(session: Session, actor: Principal, settlement_id: int, *,
            note: str | None = None) -> CompensationSettlement:
    """Post every payment of a prepared settlement. The finance bureau approves; whoever
    prepared the settlement may not (four eyes)."""
    authorize(actor, APPROVE)
    note = _note(note)
    settlement = _locked(session, settlement_id)
    if settlement.prepared_by == actor.label:
        raise OwnSettlement(f"settlement {settlement_id} was prepared by {actor.label}: "
                            "another member of the finance bureau approves it")
    before = audit.snapshot(settlement)
    for payment in payments(session, settlement_id):
        resolution = ledger.post_pending(session, actor, payment.pending_tx_id,
                                         memo=f"approved: settlement #{settlement_id}")
        payment.status, payment.resolution_tx_id = "posted", resolution.id
    settlement.status, settlement.decided_by, settlement.decided_at = \
        "approved", actor.label, utcnow()
    settlement.decision_note = note
    session.flush()
    audit.record(session, actor, "compensation.settlement.approve", "compensation_settlement",
                 settlement.id, before=before, after=audit.snapshot(settlement))
    return settlement


def reject(session: Session, actor: Principal, settlement_id: int, *,
           reason: str | None = None) -> CompensationSettlement:
    """Void every payment of a prepared settlement; the period may then be prepared again.
    The preparer may withdraw a settlement this way."""
    authorize(actor, APPROVE)
    reason = _note(reason)
    if reason is None:
        raise ValidationFailed("a rejection needs a reason", errors=[
            {"field": "reason", "message": "required"}])
    settlement = _locked(session, settlement_id)
    before = audit.snapshot(settlement)
    for payment in payments(session, settlement_id):
        resolution = ledger.void_pending(session, actor, payment.pending_tx_id,
                                         memo=f"rejected: settlement #{settlement_id}")
        payment.status, payment.resolution_tx_id = "voided", resolution.id
    settlement.status, settlement.live_key = "rejected", None
    settlement.decided_by, settlement.decided_at = actor.label, utcnow()
    settlement.decision_note = reason
    session.flush()
    audit.record(session, actor, "compensation.settlement.reject", "compensation_settlement",
                 settlement.id, before=before, after=audit.snapshot(settlement))
    return settlement


def get_settlement(session: Session, actor: Principal,
                   settlement_id: int) -> CompensationSettlement:
    authorize(actor, "compensation.read")
    settlement = fetch(session, CompensationSettlement, settlement_id)
    if settlement is None:
        raise SettlementNotFound(f"no settlement {settlement_id}")
    return settlement


def list_settlements(session: Session, actor: Principal, *, agreement: str | None = None,
                     period: str | None = None, status: str | None = None) -> sa.Select:
    authorize(actor, "compensation.read")
    stmt = sa.select(CompensationSettlement)
    if agreement:
        stmt = stmt.where(CompensationSettlement.agreement_code == agreement)
    if period:
        stmt = stmt.where(CompensationSettlement.period == period)
    if status:
        stmt = stmt.where(CompensationSettlement.status == status)
    return stmt.order_by(CompensationSettlement.id)


def view(session: Session, settlement: CompensationSettlement) -> dict[str, Any]:
    return {
        "id": settlement.id, "agreement_code": settlement.agreement_code,
        "agreement_version": settlement.statement["agreement"]["version"],
        "period": settlement.period, "status": settlement.status,
        "amount_fen": settlement.amount_fen,
        "payments_total_fen": settlement.payments_total_fen,
        "statement": settlement.statement,
        "payments": [audit.snapshot(p) for p in payments(session, settlement.id)],
        "prepared_at": settlement.prepared_at, "prepared_by": settlement.prepared_by,
        "decided_at": settlement.decided_at, "decided_by": settlement.decided_by,
        "decision_note": settlement.decision_note,
    }


def statement_tables(session: Session, settlement: CompensationSettlement
                     ) -> dict[str, list[list[Any]]]:
    """The statement as tables (Chinese headers, English alongside), for CSV and XLSX."""
    statement = settlement.statement
    head = [["结算 Settlement", settlement.id, "协议 Agreement", settlement.agreement_code,
             "版本 Version", statement["agreement"]["version"], "期间 Period",
             settlement.period, "状态 Status", settlement.status, "金额(分) Amount (fen)",
             settlement.amount_fen]]
    conditions = [["条件 Condition", "断面 Section", "指标 Indicator", "目标 Target",
                   "比较 Comparison", "监测值 Value", "达标 Met", "监测记录 Assessment id"]] + [
        [e["condition"], e["section"], e["indicator"], e["target"], e["comparison"],
         e["value"], "是 yes" if e["met"] else "否 no", e["assessment_id"] if e.get(
             "valuation") is None else f"GEP 核算 valuation runs {e['valuation']['base_run_id']}"
                                      f" ({e['valuation']['base_year']}) -> "
                                      f"{e['valuation']['run_id']} ({e['valuation']['year']})"]
        for e in statement["evaluations"]]
    positions = [["参与方 Party", "主体 Party id", "名称 Name", "行政区划 Region",
                  "出资(分) Contribution (fen)", "分配(分) Allocation (fen)",
                  "扣减(分) Withheld (fen)", "调入(分) Received (fen)",
                  "应得(分) Receives (fen)", "净额(分) Net (fen)", "净额(元) Net (yuan)"]] + [
        [p["party"], p["party_id"], p["name_zh"], p["region_code"], p["contribution_fen"],
         p["allocation_fen"], p["withheld_fen"], p["received_fen"], p["receives_fen"],
         p["net_fen"], printable.yuan(p["net_fen"])] for p in statement["positions"]]
    paid = [["序号 Seq", "付款方 Payer", "收款方 Payee", "付款账户 From account",
             "收款账户 To account", "金额(分) Amount (fen)", "金额(元) Amount (yuan)",
             "状态 Status", "账务交易 Ledger tx", "处理交易 Resolution tx"]] + [
        [p.seq, p.payer_key, p.payee_key, p.from_account, p.to_account, p.amount_fen,
         printable.yuan(p.amount_fen), p.status, p.pending_tx_id, p.resolution_tx_id]
        for p in payments(session, settlement.id)]
    clearing_rows = [["条件 Condition", "处理 Action", "扣减方 From party",
                      "收款方 To party", "金额(分) Amount (fen)", "金额(元) Amount (yuan)"]] + [
        [a["condition"], ACTION_LABELS.get(a["action"], a["action"]), a["source"], a["party"],
         a["amount_fen"], printable.yuan(a["amount_fen"])]
        for a in statement.get("adjustments", [])]
    return {"结算 Settlement": head, "条件 Conditions": conditions, "清算 Clearing": clearing_rows,
            "各方 Positions": positions, "支付 Payments": paid}


#: how a failed condition's money was cleared, Chinese with English
ACTION_LABELS = {"withhold": "扣减并退还出资方 withheld, returned to the contributors",
                 "redirect": "转付指定方 redirected to a named party",
                 "split": "按份额分给指定方 split among named parties"}
#: what a settlement's status means, Chinese with English
STATUS_LABELS = {"prepared": "待审批 prepared, waiting for approval",
                 "approved": "已审批支付 approved and paid", "rejected": "已驳回 rejected"}


def statement_html(session: Session, settlement: CompensationSettlement) -> str:
    """The statement as a printable page (the house's printable template, as the household
    and village statements of benefit sharing): the same tables as the spreadsheet, the
    failed conditions' clearing, and who prepared and decided it."""
    tables = statement_tables(session, settlement)
    agreement = settlement.statement["agreement"]
    info = printable.table(
        ["结算 Settlement", "协议 Agreement", "名称 Name", "版本 Version", "期间 Period",
         "金额(元) Amount (yuan)", "状态 Status"],
        [[settlement.id, settlement.agreement_code, agreement.get("name_zh"),
          agreement["version"], settlement.period, printable.yuan(settlement.amount_fen),
          STATUS_LABELS.get(settlement.status, settlement.status)]])
    parts = [info]
    for name in ("条件 Conditions", "清算 Clearing", "各方 Positions", "支付 Payments"):
        head, *rows = tables[name]
        parts.append(printable.heading(name))
        parts.append(printable.table(head, rows) if rows else
                     "<p>无 None" + (" — 全部条件达标 every condition met"
                                     if name == "清算 Clearing" else "") + "</p>")
    parts.append(printable.table(
        ["编制人 Prepared by", "编制时间 Prepared at (UTC)", "审批人 Decided by",
         "审批时间 Decided at (UTC)", "意见 Note"],
        [[settlement.prepared_by, settlement.prepared_at, settlement.decided_by,
          settlement.decided_at, settlement.decision_note]]))
    return printable.page(
        f"生态保护补偿结算单 Compensation settlement statement — {settlement.agreement_code} "
        f"{settlement.period}", "".join(parts), units=printable.AMOUNTS_NOTE,
        note=f"协议条款摘要 terms SHA-256 {agreement.get('terms_sha256') or ''}")


def export_statement(session: Session, actor: Principal, settlement_id: int,
                     fmt: str) -> bytes:
    """A settlement's statement as XLSX (one sheet per table), CSV (the tables one after
    another, a blank row between), through the shell's formula-safe writer, or a printable
    HTML page (UTF-8)."""
    settlement = get_settlement(session, actor, settlement_id)
    if fmt == "html":
        return statement_html(session, settlement).encode("utf-8")
    tables = statement_tables(session, settlement)
    if fmt == "xlsx":
        return spreadsheet.write_xlsx(tables)
    rows: list[list[Any]] = []
    for table in tables.values():
        rows += [*table, []]
    return spreadsheet.write_csv(rows)


def verify(session: Session, actor: Principal) -> list[str]:
    """Invariants `ecovalue ledger verify` checks: every version in force still has the terms
    it entered into force with; every settlement's payments add up to its statement, and are
    posted when it was approved, voided when rejected, pending while prepared; each payment's
    ledger transaction moves exactly its amount between its two accounts."""
    authorize(actor, "compensation.read")
    problems = []
    for agreement in session.scalars(sa.select(CompensationAgreement).where(
            CompensationAgreement.status.in_(("in_force", "superseded")))):
        if terms_module.terms_hash(agreement.terms) != agreement.terms_sha256:
            problems.append(f"agreement {agreement.code} v{agreement.version}: its terms "
                            "changed after it entered into force")
    expected = {"prepared": "pending", "approved": "posted", "rejected": "voided"}
    for settlement in session.scalars(sa.select(CompensationSettlement)):
        rows = payments(session, settlement.id)
        transfers = settlement.statement.get("transfers", [])
        if [(t["payer"], t["payee"], t["amount_fen"]) for t in transfers] != \
                [(p.payer_key, p.payee_key, p.amount_fen) for p in rows]:
            problems.append(f"settlement {settlement.id}: its payments differ from its "
                            "statement")
        for p in rows:
            if p.status != expected[settlement.status]:
                problems.append(f"settlement {settlement.id} is {settlement.status} but "
                                f"payment {p.seq} is {p.status}")
            tx = ledger.get_transaction(session, actor, p.pending_tx_id)
            legs = sorted((leg.account_code, leg.direction, leg.amount) for leg in tx.postings)
            if legs != sorted([(p.from_account, "debit", p.amount_fen),
                               (p.to_account, "credit", p.amount_fen)]):
                problems.append(f"settlement {settlement.id} payment {p.seq}: ledger "
                                f"transaction {p.pending_tx_id} does not move its amount")
    return problems
