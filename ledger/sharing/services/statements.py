"""Statements (per household, per village) and the bank batch-payment file.

Statements show bank accounts and ID-card numbers masked, always. The payment file is the one
place an account number appears whole: only the finance role downloads it, and every download
is appended to the audit trail (who, which run, which format, the file's SHA-256).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit, protect, spreadsheet
from ecovalue.auth import Principal, authorize
from ecovalue.printable import heading, page, table, yuan
from ledger.sharing import errors
from ledger.sharing.models import SharingRun, SharingRunLine
from ledger.sharing.services.register import READER
from ledger.sharing.services.runs import get_run

KIND_LABELS = {"distribution": "利益分配 benefit distribution",
               "single_tree": "单株碳汇 single-tree carbon purchase"}
REVERSAL_LABEL = "红字冲销 reversal"
LINE_LABELS = {"household": "农户 household", "collective": "村集体 collective",
               "account": "账户 account"}


def _party(session: Session, party_id: int, kinds: Sequence[str]) -> Party:
    party = session.get(Party, party_id) if isinstance(party_id, int) and \
        0 < party_id < 2**63 else None
    if party is None or party.kind not in kinds:
        raise errors.NotInRegister(f"no {' or '.join(kinds)} {party_id}")
    return party


def _payer_name(session: Session, run: SharingRun, names: dict[int, str]) -> str:
    if run.kind == "single_tree":
        return names.get(run.buyer_party_id or 0, "")
    return run.payer_account_code


def household_statement(session: Session, actor: Principal, household_party_id: int, *,
                        date_from: dt.date | None = None, date_to: dt.date | None = None
                        ) -> dict[str, Any]:
    """Everything a household received through benefit sharing, with where each fen came
    from (`trace.trace_household`), its masked identifiers and the buyer of every
    single-tree purchase."""
    from ledger.sharing.services.trace import trace_household

    authorize(actor, "sharing.read")
    party = _party(session, household_party_id, ("household",))
    traced = trace_household(session, READER, party.id, date_from=date_from, date_to=date_to)
    runs = {r.id: r for r in session.scalars(sa.select(SharingRun).where(
        SharingRun.id.in_({rc["run_id"] for rc in traced["receipts"]})))}
    names = dict(session.execute(sa.select(Party.id, Party.name_zh).where(Party.id.in_(
        {r.buyer_party_id for r in runs.values() if r.buyer_party_id} |
        {rc["village_party_id"] for rc in traced["receipts"] if rc["village_party_id"]}))).all())
    for receipt in traced["receipts"]:
        run = runs[receipt["run_id"]]
        receipt["kind_label"] = KIND_LABELS[run.kind]
        receipt["payer"] = _payer_name(session, run, names)
        receipt["buyer_party_id"] = run.buyer_party_id
        receipt["buyer_name_zh"] = names.get(run.buyer_party_id or 0)
        receipt["village_name_zh"] = names.get(receipt["village_party_id"] or 0)
        receipt["memo"] = run.memo
    return {**traced, "id_number_masked": party.id_number_masked,
            "bank_account_masked": party.bank_account_masked, "bank_name": party.bank_name,
            "date_from": date_from, "date_to": date_to}


def village_statement(session: Session, actor: Principal, collective_party_id: int, *,
                      run_id: int | None = None) -> dict[str, Any]:
    """The paid lines of one village (its collective and its households) per run, with
    masked bank accounts and totals."""
    authorize(actor, "sharing.read")
    collective = _party(session, collective_party_id, ("village_collective",))
    stmt = sa.select(SharingRunLine, SharingRun).join(
        SharingRun, SharingRun.id == SharingRunLine.run_id).where(
        SharingRunLine.village_party_id == collective.id,
        SharingRun.status.in_(("paid", "reversed")))
    if run_id is not None:
        stmt = stmt.where(SharingRun.id == run_id)
    rows = session.execute(stmt.order_by(SharingRun.paid_on, SharingRun.id,
                                         SharingRunLine.line_no)).all()
    parties = {p.id: p for p in session.scalars(sa.select(Party).where(Party.id.in_(
        {ln.party_id for ln, _ in rows if ln.party_id} |
        {r.buyer_party_id for _, r in rows if r.buyer_party_id})))}
    runs: dict[int, dict[str, Any]] = {}
    for line, run in rows:
        entry = runs.setdefault(run.id, {
            "run_id": run.id, "reference": run.reference, "kind": run.kind,
            "kind_label": KIND_LABELS[run.kind], "paid_on": run.paid_on,
            "payer": run.payer_account_code if run.kind == "distribution"
            else parties[run.buyer_party_id].name_zh if run.buyer_party_id else None,
            "memo": run.memo, "total_fen": 0, "status": run.status,
            "reversed_on": run.reversed_on, "reversal_reason": run.reversal_reason,
            "net_fen": 0, "lines": []})
        p = parties.get(line.party_id or 0)
        entry["total_fen"] += line.amount_fen
        if run.status != "reversed":
            entry["net_fen"] += line.amount_fen
        entry["lines"].append({
            "line_no": line.line_no, "kind": line.kind, "kind_label": LINE_LABELS[line.kind],
            "party_id": line.party_id, "name_zh": p.name_zh if p else None,
            "bank_account_masked": p.bank_account_masked if p else None,
            "part": line.part, "basis_value": line.basis_value,
            "amount_fen": line.amount_fen, "transaction_id": line.transaction_id})
    return {"collective_party_id": collective.id, "name_zh": collective.name_zh,
            "name_en": collective.name_en, "runs": list(runs.values()),
            "total_fen": sum(r["net_fen"] for r in runs.values()),
            "reversed_fen": sum(r["total_fen"] - r["net_fen"] for r in runs.values())}


# --- exports -----------------------------------------------------------------------------------


def household_xlsx(statement: dict[str, Any]) -> bytes:
    rows: list[list[Any]] = [[
        "日期 Date", "类别 Kind", "批次 Reference", "付款方/购买方 Payer or buyer",
        "金额(元) Amount (yuan)", "金额(分) Amount (fen)", "资金来源 Source (transaction)",
        "来源付款方 Source payer", "来源金额(分) Source amount (fen)"]]
    for r in statement["receipts"]:
        for i, s in enumerate(r["sources"] or [{}] if r["paid_fen"] else []):
            first = i == 0
            rows.append([r["paid_on"] if first else None, r["kind_label"] if first else None,
                         r["reference"] if first else None, r["payer"] if first else None,
                         yuan(r["amount_fen"]) if first else None,
                         r["amount_fen"] if first else None, s.get("transaction_id"),
                         s.get("payer_name_zh"), s.get("amount_fen")])
        if r["reversed_fen"]:  # 红字: the same sources paid back
            for i, s in enumerate(r["sources"] or [{}]):
                first = i == 0
                rows.append([r["reversed_on"] if first else None,
                             REVERSAL_LABEL if first else None,
                             r["reference"] if first else None,
                             f"{r['reversal_reason']} (冲销交易 reversal transaction "
                             f"#{r['reversal_transaction_id']})" if first else None,
                             yuan(-r["reversed_fen"]) if first else None,
                             -r["reversed_fen"] if first else None,
                             s.get("transaction_id"), s.get("payer_name_zh"),
                             -s["amount_fen"] if "amount_fen" in s else None])
    rows.append(["合计 Total", None, None, None, yuan(statement["received_fen"]),
                 statement["received_fen"], None, None, None])
    head = [["户主 Household", statement["name_zh"]],
            ["身份证号 ID card", statement["id_number_masked"]],
            ["银行账号 Bank account", statement["bank_account_masked"]],
            ["开户行 Bank", statement["bank_name"]]]
    return spreadsheet.write_xlsx({"对账单 Statement": rows, "农户 Household": head})


def village_xlsx(statement: dict[str, Any]) -> bytes:
    rows: list[list[Any]] = [[
        "批次 Reference", "日期 Date", "类别 Kind", "行 Line", "对象 Recipient",
        "户主/名称 Name", "银行账号 Bank account", "分配依据 Part", "基数 Basis",
        "金额(元) Amount (yuan)", "金额(分) Amount (fen)", "账务交易 Transaction"]]
    for run in statement["runs"]:
        for ln in run["lines"]:
            rows.append([run["reference"], run["paid_on"], run["kind_label"], ln["line_no"],
                         ln["kind_label"], ln["name_zh"], ln["bank_account_masked"], ln["part"],
                         ln["basis_value"], yuan(ln["amount_fen"]), ln["amount_fen"],
                         ln["transaction_id"]])
        if run["status"] == "reversed":
            rows.append([run["reference"], run["reversed_on"], REVERSAL_LABEL, None, None,
                         None, None, run["reversal_reason"], None, yuan(-run["total_fen"]),
                         -run["total_fen"], None])
    rows.append(["合计 Total", None, None, None, None, None, None, None, None,
                 yuan(statement["total_fen"]), statement["total_fen"], None])
    return spreadsheet.write_xlsx({"村对账单 Village": rows})


def household_html(statement: dict[str, Any]) -> str:
    info = table(["户主 Household", "身份证号 ID card", "银行账号 Bank account", "开户行 Bank"],
                  [[statement["name_zh"], statement["id_number_masked"],
                    statement["bank_account_masked"], statement["bank_name"]]])
    rows = []
    for r in statement["receipts"]:
        sources = "; ".join(f"{s.get('payer_name_zh') or s.get('kind')} "
                            f"(#{s.get('transaction_id') or '-'}) {yuan(s['amount_fen'])}"
                            for s in r["sources"])
        if r["paid_fen"]:
            rows.append([r["paid_on"], r["kind_label"], r["reference"], r["payer"],
                         yuan(r["amount_fen"]), sources])
        if r["reversed_fen"]:
            rows.append([r["reversed_on"], REVERSAL_LABEL, r["reference"],
                         r["reversal_reason"], yuan(-r["reversed_fen"]),
                         f"冲销交易 reversal transaction #{r['reversal_transaction_id']}"])
    rows.append(["合计 Total", "", "", "", yuan(statement["received_fen"]), ""])
    body = info + "<h2>收入明细及资金来源 Receipts and where each fen came from</h2>" + table(
        ["日期 Date", "类别 Kind", "批次 Reference", "付款方/购买方 Payer or buyer",
         "金额 Amount", "资金来源 Sources (payer, transaction, amount)"], rows)
    return page(f"农户收益对账单 Household statement — {statement['name_zh']}", body,
                note="来源按基金流入比例分摊 Sources: pro rata to the fund's inflows.")


def village_html(statement: dict[str, Any]) -> str:
    parts = []
    for run in statement["runs"]:
        parts.append(heading(f"{run['reference']} — {run['kind_label']} — {run['paid_on']} — "
                             f"{run['payer'] or ''}"))
        parts.append(table(["行 Line", "对象 Recipient", "户主/名称 Name",
                             "银行账号 Bank account", "基数 Basis", "金额 Amount"],
                            [[ln["line_no"], ln["kind_label"], ln["name_zh"],
                              ln["bank_account_masked"], ln["basis_value"],
                              yuan(ln["amount_fen"])] for ln in run["lines"]] +
                            ([[REVERSAL_LABEL, str(run["reversed_on"]), "",
                               run["reversal_reason"], "", yuan(-run["total_fen"])]]
                             if run["status"] == "reversed" else []) +
                            [["合计 Total", "", "", "", "", yuan(run["net_fen"])]]))
    return page(f"村级收益对账单 Village statement — {statement['name_zh']}",
                "".join(parts) or "<p>无 None</p>")


def payment_file(session: Session, actor: Principal, run_id: int, fmt: str) -> tuple[bytes, str]:
    """The bank batch-payment file of a paid run (代发明细): one row per paying line, the
    account number whole (decrypted). Finance only; every download is audited."""
    authorize(actor, "sharing.payment_file.download")
    run = get_run(session, run_id)
    if run.status != "paid":
        raise errors.RunNotPrepared(f"run {run.id} is {run.status}: a payment file exists "
                                    "only for a paid run")
    lines = session.execute(sa.select(SharingRunLine).where(
        SharingRunLine.run_id == run.id, SharingRunLine.amount_fen > 0)
        .order_by(SharingRunLine.line_no)).scalars().all()
    parties = {}
    ids = sorted({ln.party_id for ln in lines if ln.party_id})
    for start in range(0, len(ids), 10_000):
        parties.update({p.id: p for p in session.scalars(sa.select(Party).where(
            Party.id.in_(ids[start:start + 10_000])))})
    protector = protect.protector()
    rows: list[list[Any]] = [["序号 No.", "户名 Account holder", "开户行 Bank",
                              "银行账号 Account number", "金额(元) Amount (yuan)",
                              "金额(分) Amount (fen)", "摘要 Memo", "账务账户 Ledger account"]]
    for ln in lines:
        p = parties.get(ln.party_id or 0)
        number = protector.decrypt(p.bank_account_encrypted) \
            if p is not None and p.bank_account_encrypted else None
        rows.append([ln.line_no, p.name_zh if p else None, p.bank_name if p else None, number,
                     yuan(ln.amount_fen), ln.amount_fen, run.reference, ln.account_code])
    data = spreadsheet.write_csv(rows) if fmt == "csv" \
        else spreadsheet.write_xlsx({"代发明细 Payments": rows})
    audit.record(session, actor, "sharing.payment_file.download", "sharing_run", run.id,
                 after={"format": fmt, "rows": len(lines), "amount_fen": run.amount_fen,
                        "sha256": hashlib.sha256(data).hexdigest()})
    return data, f"payments-{run.reference}.{fmt}"
