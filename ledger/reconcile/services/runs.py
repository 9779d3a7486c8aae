"""Matching rules, reconciliation runs, officers' decisions, sign-off and period close.

A run reads the statement's lines and the ledger's movements of the account in the month
(through `ledger.core`'s public reads), matches them (`ledger.reconcile.matching`) and stores
every finding as an item: certain matches confirmed, other matches proposed, discrepancies
open. Officers confirm, match by hand, unmatch and explain, each with a reason and audited.
Sign-off (finance, not the preparer) needs every item confirmed or explained and the
reconciliation statement to agree with the ledger's balance now (recorded as a ledger balance
assertion); a signed-off run is immutable. Closing the period closes the ledger month.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit, clock
from ecovalue.audit.models import AuditEvent
from ecovalue.auth import Principal, authorize
from ecovalue.db import utcnow
from ecovalue.errors import ValidationFailed
from ledger import core as ledger
from ledger.reconcile import errors, matching
from ledger.reconcile.models import (
    ReconcileItem,
    ReconcileLine,
    ReconcileRuleSet,
    ReconcileRun,
    ReconcileStatement,
)
from ledger.reconcile.services.statements import find_statement
from ledger.reconcile.statement_file import month_end, period_problem

RULE_SET = "default"
MAX_REASON = 1000
UNRESOLVED = ("proposed", "open")


def _invalid(field: str, message: str, location: str = "json") -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[
        {"location": location, "field": field, "message": message}])


def _reason(reason: Any, *, required: bool = True) -> str | None:
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        if required:
            raise _invalid("reason", "say why (it goes into the audit trail)")
        return None
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise _invalid("reason", f"text of at most {MAX_REASON} characters")
    return reason.strip()


# --- rules -----------------------------------------------------------------------------------


def current_rules(session: Session) -> tuple[int, list[dict[str, Any]]]:
    """(version, rules) in force: the latest saved version, else the defaults (version 0)."""
    row = session.scalar(sa.select(ReconcileRuleSet).where(ReconcileRuleSet.name == RULE_SET)
                         .order_by(ReconcileRuleSet.version.desc()).limit(1))
    if row is None:
        return 0, [dict(r) for r in matching.DEFAULT_RULES]
    return row.version, list(row.rules)


def get_rules(session: Session, actor: Principal) -> tuple[int, list[dict[str, Any]]]:
    authorize(actor, "reconcile.read")
    return current_rules(session)


def put_rules(session: Session, actor: Principal, rules: Any, *, note: str | None = None,
              now: dt.datetime | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Save a new version of the ordered rules (validated; every parameter filled in)."""
    now = now or utcnow()
    authorize(actor, "reconcile.rules.write")
    checked, problems = matching.validate_rules(rules)
    if problems:
        raise ValidationFailed("the rules are not valid", errors=problems)
    version, before = current_rules(session)
    row = ReconcileRuleSet(name=RULE_SET, version=version + 1, rules=checked,
                           note=_reason(note, required=False), created_by=actor.label,
                           created_at=now)
    session.add(row)
    session.flush()
    audit.record(session, actor, "reconcile.rules.put", "reconcile_rule_set",
                 f"{RULE_SET}:{row.version}", before={"version": version, "rules": before},
                 after={"version": row.version, "rules": checked, "note": row.note})
    return row.version, checked


# --- the ledger side -------------------------------------------------------------------------


def ledger_movements(session: Session, actor: Principal, account_code: str,
                     period: dt.date) -> pd.DataFrame:
    """The account's posted movements in the month, one row per transaction: id, date, signed
    amount (credit positive), reference (metadata `reference`, else the idempotency key) and
    counterparty (the party of the other account(s)), read through ledger.core."""
    last = min(month_end(period), clock.local_today())
    columns = ["transaction_id", "effective_date", "amount_fen", "reference", "counterparty",
               "memo", "type"]
    if last < period:
        return pd.DataFrame(columns=columns)
    stmt = ledger.statement(session, actor, account_code, date_from=period, date_to=last)
    amounts: dict[int, int] = defaultdict(int)
    first: dict[int, Any] = {}
    for line in stmt.lines:
        amounts[line.transaction_id] += line.credit - line.debit
        first.setdefault(line.transaction_id, line)
    ids = [tx for tx, amount in amounts.items() if amount != 0]
    views = {v.id: v for v in ledger.load_views(session, ids)} if ids else {}
    accounts: dict[int, str | None] = {}

    def name_of(account_id: int) -> str | None:
        if account_id not in accounts:
            account = ledger.get_account(session, actor, account_id)
            party = session.get(Party, account.party_id)
            accounts[account_id] = party.name_zh if party is not None else account.name
        return accounts[account_id]

    rows = []
    for tx in ids:
        view = views[tx]
        others = sorted({p.account_id for p in view.postings if p.account_id != stmt.account_id})
        names = sorted({n for n in (name_of(a) for a in others) if n})
        metadata = view.metadata or {}
        reference = metadata.get("reference") if isinstance(metadata.get("reference"), str) \
            else view.idempotency_key
        rows.append({"transaction_id": tx, "effective_date": first[tx].effective_date,
                     "amount_fen": amounts[tx], "reference": reference,
                     "counterparty": names[0] if len(names) == 1 else None,
                     "memo": view.memo, "type": view.type})
    return pd.DataFrame(rows, columns=columns)


def _lines_frame(session: Session, statement_id: int) -> pd.DataFrame:
    rows = session.execute(sa.select(
        ReconcileLine.id, ReconcileLine.value_date, ReconcileLine.amount_fen,
        ReconcileLine.reference, ReconcileLine.transaction_id, ReconcileLine.counterparty,
        ReconcileLine.memo).where(ReconcileLine.statement_id == statement_id)
        .order_by(ReconcileLine.id)).all()
    return pd.DataFrame([tuple(r) for r in rows],
                        columns=["line_id", "value_date", "amount_fen", "reference",
                                 "transaction_id", "counterparty", "memo"])


# --- runs ------------------------------------------------------------------------------------


def get_run(session: Session, actor: Principal, run_id: int, *,
            for_update: bool = False) -> ReconcileRun:
    authorize(actor, "reconcile.read")
    run = None
    if 0 < run_id < 2**63:
        stmt = sa.select(ReconcileRun).where(ReconcileRun.id == run_id)
        run = session.scalar(stmt.with_for_update() if for_update else stmt)
    if run is None:
        raise errors.RunNotFound(f"no reconciliation run {run_id}")
    return run


def list_runs(session: Session, actor: Principal, *, account: str | None = None,
              period: dt.date | None = None, status: str | None = None) -> sa.Select:
    authorize(actor, "reconcile.read")
    stmt = sa.select(ReconcileRun)
    if account:
        stmt = stmt.where(ReconcileRun.account_code == account)
    if period:
        stmt = stmt.where(ReconcileRun.period == period.replace(day=1))
    if status:
        stmt = stmt.where(ReconcileRun.status == status)
    return stmt.order_by(ReconcileRun.id.desc())


def _balance(session: Session, actor: Principal, code: str, as_of: dt.date) -> int:
    return ledger.account_balance(session, actor, code, as_of=as_of).balance


def create_run(session: Session, actor: Principal, *, account: str, period: dt.date,
               now: dt.datetime | None = None) -> ReconcileRun:
    """Match the statement of `account` for the month `period` against the ledger. An open
    run of the same account and month is superseded; a signed-off one refuses."""
    now = now or utcnow()
    authorize(actor, "reconcile.run.create")
    period = period.replace(day=1)
    problem = period_problem(period, clock.local_today())
    if problem:
        raise _invalid("period", problem)
    target = ledger.get_account(session, actor, account)
    statement = find_statement(session, target.code, period)
    if statement is None:
        raise errors.StatementNotFound(f"no statement of {target.code} for {period:%Y-%m}: "
                                       "import one first")
    existing = list(session.scalars(sa.select(ReconcileRun).where(
        ReconcileRun.account_code == target.code, ReconcileRun.period == period,
        ReconcileRun.status.in_(("open", "signed_off"))).with_for_update()))
    if any(r.status == "signed_off" for r in existing):
        raise errors.RunSignedOff(f"the reconciliation of {target.code} for {period:%Y-%m} is "
                                  "signed off")
    version, rules = current_rules(session)
    lines = _lines_frame(session, statement.id)
    movements = ledger_movements(session, actor, target.code, period)
    result = matching.match(lines, movements, rules)
    opening_day = period - dt.timedelta(days=1)
    run = ReconcileRun(
        statement_id=statement.id, account_code=target.code, period=period, status="open",
        rules=rules, rule_set_version=version,
        ledger_opening_fen=_balance(session, actor, target.code, opening_day),
        ledger_closing_fen=_balance(session, actor, target.code,
                                    min(month_end(period), clock.local_today())),
        statement_opening_fen=statement.opening_balance_fen,
        statement_closing_fen=statement.closing_balance_fen, prepared_by=actor.label,
        created_at=now)
    session.add(run)
    for old in existing:
        before = audit.snapshot(old)
        old.status = "superseded"
        session.flush()
        audit.record(session, actor, "reconcile.run.supersede", "reconcile_run", old.id,
                     before=before, after=audit.snapshot(old))
    session.flush()
    _store_items(session, run.id, result)
    session.flush()
    audit.record(session, actor, "reconcile.run.create", "reconcile_run", run.id,
                 after={**audit.snapshot(run), "summary": matching.summary(result)})
    replaced = [r for r in existing if r.status == "superseded"]
    if replaced:
        _carry_over(session, actor, max(replaced, key=lambda r: r.id), run, now)
    return run


# --- decisions carried over to a run that replaces an open one -------------------------------


def _carry_over(session: Session, actor: Principal, old: ReconcileRun, new: ReconcileRun,
                now: dt.datetime) -> dict[str, Any]:
    """Replay the officers' decisions of the replaced run `old` on `new`, where the same lines
    and ledger transactions still exist: unmatches first, then matches by hand, confirmed
    proposals, explanations (each the last state of the old run's items, in the order they
    were decided). A decision that cannot be applied is listed with why. Each change is an
    audited decision on the new run (reason kept, the old item and its officer named); the
    whole is one `reconcile.run.carry_over` event on the new run."""
    decided = list(session.scalars(sa.select(ReconcileItem).where(
        ReconcileItem.run_id == old.id, ReconcileItem.decided_by.is_not(None),
        ReconcileItem.decided_by != "rule").order_by(ReconcileItem.decided_at,
                                                      ReconcileItem.id)))
    manual = [str(i.id) for i in decided if i.rule == "manual"]
    replaced: set[int] = set()
    for start in range(0, len(manual), 500):
        for event in session.scalars(sa.select(AuditEvent).where(
                AuditEvent.action == "reconcile.item.match",
                AuditEvent.entity_type == "reconcile_item",
                AuditEvent.entity_id.in_(manual[start:start + 500]))):
            replaced.update(int(i) for i in (event.after or {}).get("replaces", []))
    unmatches = [i for i in decided if i.status == "withdrawn" and i.category == "matched"
                 and i.id not in replaced]
    matches = [i for i in decided if i.status == "confirmed" and i.category == "matched"]
    explains = [i for i in decided if i.status == "explained"]
    applied: list[dict[str, Any]] = []
    not_applicable: list[dict[str, Any]] = []
    for kind, group in (("unmatch", unmatches),
                        ("match", [i for i in matches if i.rule == "manual"]),
                        ("confirm", [i for i in matches if i.rule != "manual"]),
                        ("explain", explains)):
        for item in group:
            entry = {"decision": kind, "item_id": item.id, "category": item.category,
                     "line_ids": list(item.line_ids),
                     "transaction_ids": list(item.transaction_ids), "reason": item.reason,
                     "decided_by": item.decided_by}
            extra = {"carried_from_item": item.id, "originally_decided_by": item.decided_by}
            try:
                outcome = _replay(session, actor, new, kind, item, now, extra)
            except (errors.AlreadyMatched, errors.InvalidMatch) as problem:
                not_applicable.append({**entry, "why": str(problem)})
                continue
            if isinstance(outcome, str):
                not_applicable.append({**entry, "why": outcome})
            else:
                applied.append({**entry, "new_item_ids": outcome})
    record = {"from_run": old.id, "applied": applied, "not_applicable": not_applicable}
    audit.record(session, actor, "reconcile.run.carry_over", "reconcile_run", new.id,
                 after=record)
    return record


def _same(item: ReconcileItem, line_ids: Iterable[int], tx_ids: Iterable[int]) -> bool:
    return sorted(item.line_ids) == sorted(line_ids) \
        and sorted(item.transaction_ids) == sorted(tx_ids)


def _replay(session: Session, actor: Principal, run: ReconcileRun, kind: str,
            old: ReconcileItem, now: dt.datetime, extra: dict[str, Any]) -> list[int] | str:
    """Apply one decision of a replaced run to `run`: the ids of the items it changed or
    made, or why it no longer applies."""
    live = list(session.scalars(sa.select(ReconcileItem).where(
        ReconcileItem.run_id == run.id, ReconcileItem.status != "withdrawn")))
    same = [i for i in live if i.category == old.category and _same(i, old.line_ids,
                                                                     old.transaction_ids)]
    what = f"lines {sorted(old.line_ids)} with transactions {sorted(old.transaction_ids)}"
    if kind == "unmatch":
        if not same:
            return f"the new run does not match {what}"
        amounts = _run_movements(session, run)
        return _withdraw(session, actor, same[:1], now, old.reason, set(), set(), amounts,
                         extra=extra)
    if kind == "explain":
        target = next((i for i in same if i.status in UNRESOLVED), None)
        if target is None:
            return (f"the new run has no unresolved {old.category} of {what}" if not same
                    else f"item {same[0].id} of the new run is {same[0].status} already")
        _decide(session, actor, target, "explain", now, extra=extra, status="explained",
                reason=old.reason)
        return [target.id]
    # a confirmed proposal or a match by hand: the same group confirmed, else matched again
    target = next((i for i in same if i.status == "proposed"), None)
    if target is not None:
        _decide(session, actor, target, "confirm", now, extra=extra, status="confirmed",
                reason=old.reason)
        return [target.id]
    if any(i.status == "confirmed" for i in same):
        return f"the new run confirms {what} already"
    matched = _match(session, actor, run, set(old.line_ids), set(old.transaction_ids),
                     old.reason or "carried over", now, extra=extra)
    return [matched.id]


def _store_items(session: Session, run_id: int, result: matching.MatchResult) -> None:
    members = result.members
    line_ids = members[members.side == "line"].groupby("group")["id"].apply(
        lambda s: sorted(int(x) for x in s)).to_dict()
    tx_ids = members[members.side == "item"].groupby("group")["id"].apply(
        lambda s: sorted(int(x) for x in s)).to_dict()
    rows = []
    for g in result.groups.itertuples(index=False):
        matched = g.category == "matched"
        status = ("confirmed" if bool(g.certain) else "proposed") if matched else "open"
        rows.append({
            "run_id": run_id, "category": g.category,
            "rule": g.rule if isinstance(g.rule, str) else None,
            "confidence": None if pd.isna(g.confidence) else float(g.confidence),
            "status": status, "line_ids": line_ids.get(g.group, []),
            "transaction_ids": tx_ids.get(g.group, []),
            "difference_fen": int(g.difference_fen), "gap_days": int(g.gap_days),
            "related_id": None if pd.isna(g.related) else int(g.related),
            "decided_by": "rule" if status == "confirmed" else None})
    for start in range(0, len(rows), 5000):
        session.execute(sa.insert(ReconcileItem), rows[start:start + 5000])


def items(session: Session, actor: Principal, run_id: int, *, category: str | None = None,
          status: str | None = None, include_withdrawn: bool = False) -> sa.Select:
    get_run(session, actor, run_id)
    stmt = sa.select(ReconcileItem).where(ReconcileItem.run_id == run_id)
    if not include_withdrawn:
        stmt = stmt.where(ReconcileItem.status != "withdrawn")
    if category:
        stmt = stmt.where(ReconcileItem.category == category)
    if status:
        stmt = stmt.where(ReconcileItem.status == status)
    return stmt.order_by(ReconcileItem.id)


@dataclasses.dataclass
class RunSummary:
    """The reconciliation statement of a run: the ledger's closing balance, plus what the
    statement has that the ledger lacks, less what the ledger has that the statement lacks,
    plus the difference of the opening balances, equals the statement's closing balance."""

    counts: dict[str, int]  #: live items per category
    unresolved: int  #: proposed matches and open discrepancies
    ledger_opening_fen: int
    ledger_closing_fen: int
    statement_opening_fen: int
    statement_closing_fen: int
    opening_difference_fen: int  #: statement opening - ledger opening
    outstanding_statement_fen: int  #: lines in no confirmed match
    outstanding_ledger_fen: int  #: ledger movements in no confirmed match
    reconciled_fen: int  #: ledger closing + opening difference + statement - ledger outstanding
    balanced: bool  #: reconciled_fen == statement_closing_fen


def summarize(session: Session, run: ReconcileRun) -> RunSummary:
    live = list(session.scalars(sa.select(ReconcileItem).where(
        ReconcileItem.run_id == run.id, ReconcileItem.status != "withdrawn")))
    counts = {c: 0 for c in matching.CATEGORIES}
    confirmed_lines: set[int] = set()
    confirmed_txs: set[int] = set()
    for item in live:
        counts[item.category] += 1
        if item.category == "matched" and item.status == "confirmed":
            confirmed_lines.update(item.line_ids)
            confirmed_txs.update(item.transaction_ids)
    line_amounts = dict(session.execute(
        sa.select(ReconcileLine.id, ReconcileLine.amount_fen)
        .where(ReconcileLine.statement_id == run.statement_id)).all())
    tx_amounts = _run_movements(session, run)
    outstanding_statement = sum(a for i, a in line_amounts.items() if i not in confirmed_lines)
    outstanding_ledger = sum(a for i, a in tx_amounts.items() if i not in confirmed_txs)
    opening_difference = run.statement_opening_fen - run.ledger_opening_fen
    reconciled = (run.ledger_closing_fen + opening_difference + outstanding_statement
                  - outstanding_ledger)
    unresolved = sum(1 for i in live if i.status in UNRESOLVED)
    return RunSummary(counts, unresolved, run.ledger_opening_fen, run.ledger_closing_fen,
                      run.statement_opening_fen, run.statement_closing_fen, opening_difference,
                      outstanding_statement, outstanding_ledger, reconciled,
                      reconciled == run.statement_closing_fen)


def _run_movements(session: Session, run: ReconcileRun) -> dict[int, int]:
    """Ledger transaction id -> signed amount, as the run saw them (from its items: every
    movement is in exactly one live item; a duplicate names none)."""
    amounts: dict[int, int] = {}
    lines = dict(session.execute(
        sa.select(ReconcileLine.id, ReconcileLine.amount_fen)
        .where(ReconcileLine.statement_id == run.statement_id)).all())
    for item in session.scalars(sa.select(ReconcileItem).where(
            ReconcileItem.run_id == run.id, ReconcileItem.status != "withdrawn")):
        if not item.transaction_ids:
            continue
        line_total = sum(lines.get(i, 0) for i in item.line_ids)
        total = line_total - item.difference_fen  # movements = lines - difference
        if len(item.transaction_ids) == 1:
            amounts[item.transaction_ids[0]] = total
        else:  # a split: the run stored each movement's amount in the audit event; equal sum
            share = _split_amounts(session, run, item)
            amounts.update(share)
    return amounts


def _split_amounts(session: Session, run: ReconcileRun, item: ReconcileItem) -> dict[int, int]:
    views = ledger.load_views(session, list(item.transaction_ids))
    account = run.account_code
    out: dict[int, int] = {}
    for view in views:
        out[view.id] = sum(p.amount if p.direction == "credit" else -p.amount
                           for p in view.postings if p.account_code == account)
    return out


def _open_run(session: Session, actor: Principal, run_id: int) -> ReconcileRun:
    run = get_run(session, actor, run_id, for_update=True)
    if run.status == "signed_off":
        raise errors.RunSignedOff(f"run {run_id} is signed off: it can no longer change")
    if run.status != "open":
        raise errors.RunNotOpen(f"run {run_id} is {run.status}")
    return run


def _item(session: Session, run: ReconcileRun, item_id: int) -> ReconcileItem:
    item = session.get(ReconcileItem, item_id) if 0 < item_id < 2**63 else None
    if item is None or item.run_id != run.id or item.status == "withdrawn":
        raise errors.ItemNotFound(f"run {run.id} has no item {item_id}")
    return item


def _decide(session: Session, actor: Principal, item: ReconcileItem, action: str,
            now: dt.datetime, *, extra: dict[str, Any] | None = None,
            **changes: Any) -> ReconcileItem:
    before = audit.snapshot(item)
    for key, value in changes.items():
        setattr(item, key, value)
    item.decided_by, item.decided_at = actor.label, now
    session.flush()
    audit.record(session, actor, f"reconcile.item.{action}", "reconcile_item", item.id,
                 before=before, after={**audit.snapshot(item), **(extra or {})})
    return item


def confirm(session: Session, actor: Principal, run_id: int, item_id: int, *,
            reason: str | None = None, now: dt.datetime | None = None) -> ReconcileItem:
    """Accept a proposed match."""
    now = now or utcnow()
    authorize(actor, "reconcile.run.decide")
    run = _open_run(session, actor, run_id)
    item = _item(session, run, item_id)
    if item.category != "matched" or item.status != "proposed":
        raise errors.RunNotOpen(f"item {item_id} is not a proposed match ({item.status} "
                                f"{item.category})")
    return _decide(session, actor, item, "confirm", now, status="confirmed",
                   reason=_reason(reason, required=False))


def explain(session: Session, actor: Principal, run_id: int, item_id: int, *, reason: str,
            now: dt.datetime | None = None) -> ReconcileItem:
    """Record why an unresolved item may stand (a bank charge booked next month, ...)."""
    now = now or utcnow()
    authorize(actor, "reconcile.run.decide")
    run = _open_run(session, actor, run_id)
    item = _item(session, run, item_id)
    if item.status not in UNRESOLVED and item.status != "explained":
        raise errors.RunNotOpen(f"item {item_id} is {item.status}: nothing to explain")
    return _decide(session, actor, item, "explain", now, status="explained",
                   reason=_reason(reason))


def manual_match(session: Session, actor: Principal, run_id: int, *, line_ids: Sequence[int],
                 transaction_ids: Sequence[int], reason: str,
                 now: dt.datetime | None = None) -> ReconcileItem:
    """Match lines and ledger transactions by hand (their sums must be equal). The items they
    were in are withdrawn; a line or transaction in a confirmed match must be unmatched
    first (matching it twice is refused)."""
    now = now or utcnow()
    authorize(actor, "reconcile.run.decide")
    reason_text = _reason(reason) or ""
    run = _open_run(session, actor, run_id)
    lines_wanted, txs_wanted = set(line_ids), set(transaction_ids)
    if not lines_wanted or not txs_wanted:
        raise errors.InvalidMatch("a match needs at least one line and one transaction",
                                  errors=[{"location": "json", "field": "line_ids",
                                           "message": "at least one line and one transaction"}])
    if len(lines_wanted) != len(line_ids) or len(txs_wanted) != len(transaction_ids):
        raise errors.InvalidMatch("a line or transaction is named twice", errors=[
            {"location": "json", "field": "line_ids", "message": "named twice"}])
    return _match(session, actor, run, lines_wanted, txs_wanted, reason_text, now)


def _match(session: Session, actor: Principal, run: ReconcileRun, lines_wanted: set[int],
           txs_wanted: set[int], reason_text: str, now: dt.datetime, *,
           extra: dict[str, Any] | None = None) -> ReconcileItem:
    live = list(session.scalars(sa.select(ReconcileItem).where(
        ReconcileItem.run_id == run.id, ReconcileItem.status != "withdrawn")))
    holders: list[ReconcileItem] = []
    known_lines: set[int] = set()
    known_txs: set[int] = set()
    for item in live:
        known_lines.update(item.line_ids)
        known_txs.update(item.transaction_ids)
        touched = (lines_wanted & set(item.line_ids)) or (txs_wanted & set(item.transaction_ids))
        if not touched:
            continue
        if item.category == "matched" and item.status == "confirmed":
            raise errors.AlreadyMatched(
                f"item {item.id} already matches lines {item.line_ids} with transactions "
                f"{item.transaction_ids}: unmatch it first", item_id=item.id)
        holders.append(item)
    unknown = sorted(lines_wanted - known_lines) + sorted(txs_wanted - known_txs)
    if unknown:
        raise errors.InvalidMatch(f"not in this run: {unknown}", errors=[
            {"location": "json", "field": "line_ids", "message": f"unknown ids {unknown}"}])
    line_total = int(session.scalar(sa.select(sa.func.coalesce(
        sa.func.sum(ReconcileLine.amount_fen), 0)).where(ReconcileLine.id.in_(lines_wanted)))
        or 0)
    amounts = _run_movements(session, run)
    tx_total = sum(amounts.get(t, 0) for t in txs_wanted)
    if line_total != tx_total:
        raise errors.InvalidMatch(
            f"the lines sum to {line_total} fen and the transactions to {tx_total} fen: a match "
            "must balance exactly", errors=[{"location": "json", "field": "transaction_ids",
                                             "message": "sums differ"}])
    leftovers = _withdraw(session, actor, holders, now, reason_text,
                          lines_wanted, txs_wanted, amounts, extra=extra)
    item = ReconcileItem(run_id=run.id, category="matched", rule="manual", confidence=None,
                         status="confirmed", line_ids=sorted(lines_wanted),
                         transaction_ids=sorted(txs_wanted), difference_fen=0, gap_days=0,
                         reason=reason_text, decided_by=actor.label, decided_at=now)
    session.add(item)
    session.flush()
    audit.record(session, actor, "reconcile.item.match", "reconcile_item", item.id,
                 after={**audit.snapshot(item), "replaces": [h.id for h in holders],
                        "leftovers": leftovers, **(extra or {})})
    return item


def _withdraw(session: Session, actor: Principal, holders: Iterable[ReconcileItem],
              now: dt.datetime, reason: str | None, lines_taken: set[int], txs_taken: set[int],
              amounts: dict[int, int], *, extra: dict[str, Any] | None = None) -> list[int]:
    """Withdraw `holders`; what they held beyond the taken lines and transactions goes back
    as open items on its own side. Returns the new items' ids."""
    line_amounts = dict(session.execute(sa.select(ReconcileLine.id, ReconcileLine.amount_fen)
                                        .where(ReconcileLine.id.in_(
                                            {i for h in holders for i in h.line_ids}))).all()) \
        if holders else {}
    created = []
    for holder in holders:
        _decide(session, actor, holder, "withdraw", now, extra=extra, status="withdrawn",
                reason=reason)
        if holder.category == "duplicate":
            continue_lines = [i for i in holder.line_ids if i not in lines_taken]
        else:
            continue_lines = [i for i in holder.line_ids if i not in lines_taken]
        for line_id in continue_lines:
            created.append(_leftover(session, holder.run_id, "only_in_statement", [line_id], [],
                                     line_amounts.get(line_id, 0)))
        for tx in (t for t in holder.transaction_ids if t not in txs_taken):
            created.append(_leftover(session, holder.run_id, "only_in_ledger", [], [tx],
                                     -amounts.get(tx, 0)))
    return created


def _leftover(session: Session, run_id: int, category: str, line_ids: list[int],
              tx_ids: list[int], difference: int) -> int:
    item = ReconcileItem(run_id=run_id, category=category, rule=None, confidence=None,
                         status="open", line_ids=line_ids, transaction_ids=tx_ids,
                         difference_fen=difference, gap_days=0)
    session.add(item)
    session.flush()
    return item.id


def unmatch(session: Session, actor: Principal, run_id: int, item_id: int, *, reason: str,
            now: dt.datetime | None = None) -> list[int]:
    """Undo a match (proposed or confirmed): its lines and transactions become open items
    again. Returns the new items' ids."""
    now = now or utcnow()
    authorize(actor, "reconcile.run.decide")
    reason_text = _reason(reason)
    run = _open_run(session, actor, run_id)
    item = _item(session, run, item_id)
    if item.category != "matched":
        raise errors.RunNotOpen(f"item {item_id} is a {item.category}, not a match")
    amounts = _run_movements(session, run)
    return _withdraw(session, actor, [item], now, reason_text, set(), set(), amounts)


def sign_off(session: Session, actor: Principal, run_id: int, *, note: str | None = None,
             now: dt.datetime | None = None) -> ReconcileRun:
    """Sign the run off: finance, not its preparer; every item confirmed or explained; the
    reconciliation statement must agree with the ledger's balance now, which is recorded as a
    ledger balance assertion (so a later back-dated posting shows on `recheck`)."""
    now = now or utcnow()
    authorize(actor, "reconcile.run.signoff")
    run = _open_run(session, actor, run_id)
    if actor.label == run.prepared_by:
        raise errors.PreparerMaySignOff(f"run {run_id} was prepared by {run.prepared_by}; "
                                        "another finance officer signs it off")
    summary = summarize(session, run)
    if summary.unresolved:
        pending = list(session.scalars(sa.select(ReconcileItem.id).where(
            ReconcileItem.run_id == run.id, ReconcileItem.status.in_(UNRESOLVED))
            .order_by(ReconcileItem.id).limit(50)))
        raise errors.UnresolvedItems(
            f"{summary.unresolved} items are neither confirmed nor explained (first: "
            f"{pending[:10]}); confirm or explain each", item_ids=pending)
    if not summary.balanced:
        raise errors.LedgerChanged(
            f"the reconciliation does not balance: {summary.reconciled_fen} fen against the "
            f"statement's {summary.statement_closing_fen} fen")
    as_of = min(month_end(run.period), clock.local_today())
    expected = (run.statement_closing_fen - summary.opening_difference_fen
                - summary.outstanding_statement_fen + summary.outstanding_ledger_fen)
    assertion = ledger.assert_balance(
        session, actor, run.account_code, as_of=as_of, expected_balance=expected,
        memo=f"reconciliation run {run.id} ({run.period:%Y-%m})", now=now)
    if not assertion.passed:
        raise errors.LedgerChanged(
            f"the ledger balance of {run.account_code} at {as_of} is now "
            f"{assertion.actual_balance} fen, not the {expected} fen this run reconciled: "
            "postings changed since the run; run it again")
    before = audit.snapshot(run)
    run.status, run.signed_off_by, run.signed_off_at = "signed_off", actor.label, now
    run.sign_off_note = _reason(note, required=False)
    run.assertion_id = assertion.id
    session.flush()
    audit.record(session, actor, "reconcile.run.signoff", "reconcile_run", run.id,
                 before=before, after=audit.snapshot(run))
    return run


def close_period(session: Session, actor: Principal, period: dt.date, *,
                 note: str | None = None, now: dt.datetime | None = None) -> Any:
    """Close the ledger month once every statement of it is reconciled and signed off."""
    now = now or utcnow()
    authorize(actor, "reconcile.period.close")
    period = period.replace(day=1)
    statements = list(session.scalars(sa.select(ReconcileStatement)
                                      .where(ReconcileStatement.period == period)))
    if not statements:
        raise errors.PeriodNotReconciled(f"no statement was imported for {period:%Y-%m}")
    signed = set(session.scalars(sa.select(ReconcileRun.statement_id).where(
        ReconcileRun.period == period, ReconcileRun.status == "signed_off")))
    missing = sorted(s.account_code for s in statements if s.id not in signed)
    if missing:
        raise errors.PeriodNotReconciled(
            f"{period:%Y-%m} has statements not signed off: {', '.join(missing)}",
            accounts=missing)
    closed = ledger.close_period(session, actor, period, note=note or "reconciled", now=now)
    audit.record(session, actor, "reconcile.period.close", "reconcile_period",
                 f"{period:%Y-%m}", after={"accounts": sorted(s.account_code
                                                              for s in statements)})
    return closed


def carry_over_of(session: Session, run: ReconcileRun) -> dict[str, Any] | None:
    """What was carried over to `run` from the open run it replaced (`from_run`, `applied`,
    `not_applicable` with why), or None when it replaced none."""
    event = session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "reconcile.run.carry_over",
        AuditEvent.entity_type == "reconcile_run", AuditEvent.entity_id == str(run.id))
        .order_by(AuditEvent.seq.desc()).limit(1))
    return dict(event.after) if event is not None and event.after else None
