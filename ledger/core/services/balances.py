"""Balances, statements, balance assertions and the integrity check.

Every account is credit-normal: balance = credits - debits. Current balances come from the
materialised totals; balances as of a date, statements and assertions from the postings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit
from ecovalue.audit.models import AuditEvent
from ecovalue.auth.policy import Principal, authorize
from ecovalue.db import utcnow
from ecovalue.errors import ValidationFailed
from ledger.core import errors, rules
from ledger.core.amounts import signed_problem
from ledger.core.calendar import local_date, month_of
from ledger.core.models import (
    LedgerAccount,
    LedgerAsset,
    LedgerBalance,
    LedgerBalanceAssertion,
    LedgerPendingHold,
    LedgerPosting,
)
from ledger.core.rules import valid_id
from ledger.core.services.accounts import authorize_read, find_account, get_account
from ledger.core.store import POSTINGS, SIGNED, TX


@dataclasses.dataclass(frozen=True)
class BalanceView:
    account_id: int
    account_code: str
    party_id: int
    kind: str
    asset: str
    unit: str
    as_of: dt.date | None
    balance: int  #: posted credits - posted debits
    pending_debits: int | None
    pending_credits: int | None
    available: int | None  #: balance - pending debits (what the guard protects)
    no_overdraft: bool


def _balance_rows(session: Session, accounts: Sequence[LedgerAccount],
                  as_of: dt.date | None) -> list[BalanceView]:
    if not accounts:
        return []
    ids = [a.id for a in accounts]
    assets = {s.id: s for s in session.scalars(
        sa.select(LedgerAsset).where(LedgerAsset.id.in_({a.asset_id for a in accounts})))}
    out = []
    if as_of is None:
        totals = {b.account_id: b for b in session.scalars(
            sa.select(LedgerBalance).where(LedgerBalance.account_id.in_(ids)))}
        for a in accounts:
            b = totals[a.id]
            balance = b.posted_credits - b.posted_debits
            out.append(BalanceView(a.id, a.code, a.party_id, a.kind, assets[a.asset_id].code,
                                   assets[a.asset_id].unit, None, balance, b.pending_debits,
                                   b.pending_credits, balance - b.pending_debits,
                                   a.no_overdraft))
        return out
    sums: dict[int, int] = dict(session.execute(
        sa.select(LedgerPosting.account_id, sa.func.sum(SIGNED))
        .where(LedgerPosting.account_id.in_(ids), LedgerPosting.pending.is_(False),
               LedgerPosting.effective_date <= as_of)
        .group_by(LedgerPosting.account_id)).all())
    for a in accounts:
        out.append(BalanceView(a.id, a.code, a.party_id, a.kind, assets[a.asset_id].code,
                               assets[a.asset_id].unit, as_of, int(sums.get(a.id) or 0), None,
                               None, None, a.no_overdraft))
    return out


def account_balance(session: Session, actor: Principal, ref: int | str, *,
                    as_of: dt.date | None = None) -> BalanceView:
    """Current balance (with pending reservations), or the posted balance at the end of
    `as_of` (sum of postings dated on or before it)."""
    account = get_account(session, actor, ref)
    return _balance_rows(session, [account], as_of)[0]


def party_balances(session: Session, actor: Principal, party_id: int, *,
                   as_of: dt.date | None = None) -> tuple[list[BalanceView], dict[str, int]]:
    """Every account of a party with its balance, and totals per asset."""
    authorize_read(actor, party_id)
    if not valid_id(party_id) or session.get(Party, party_id) is None:
        raise errors.AccountNotFound(f"no party {party_id}")
    accounts = session.scalars(sa.select(LedgerAccount).where(LedgerAccount.party_id == party_id)
                               .order_by(LedgerAccount.id)).all()
    rows = _balance_rows(session, accounts, as_of)
    totals: dict[str, int] = defaultdict(int)
    for r in rows:
        totals[r.asset] += r.balance
    return rows, dict(totals)


@dataclasses.dataclass(frozen=True)
class StatementLine:
    effective_date: dt.date
    transaction_id: int
    type: str
    memo: str | None
    debit: int
    credit: int
    balance: int


@dataclasses.dataclass(frozen=True)
class Statement:
    account_id: int
    account_code: str
    account_name: str
    party_id: int
    asset: str
    unit: str
    date_from: dt.date
    date_to: dt.date
    opening_balance: int
    closing_balance: int
    total_debits: int
    total_credits: int
    lines: list[StatementLine]


MAX_STATEMENT_LINES = 100_000


def statement(session: Session, actor: Principal, ref: int | str, *,
              date_from: dt.date | None = None, date_to: dt.date | None = None,
              now: dt.datetime | None = None) -> Statement:
    """Posted movements of an account between two dates (inclusive, default: this month up
    to today) with the opening balance and the running balance after each line."""
    account = get_account(session, actor, ref)
    today = local_date(now or utcnow())
    date_to = date_to or today
    date_from = date_from or month_of(date_to)
    if date_from > date_to:
        raise ValidationFailed("date_from is after date_to", errors=[
            {"location": "query", "field": "date_from", "message": "must not be after date_to"}])
    asset = session.get(LedgerAsset, account.asset_id)
    assert asset is not None
    opening = int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(SIGNED), 0)).where(
        LedgerPosting.account_id == account.id, LedgerPosting.pending.is_(False),
        LedgerPosting.effective_date < date_from)) or 0)
    rows: Sequence[Sequence[Any]] = session.execute(
        sa.select(LedgerPosting.effective_date, LedgerPosting.transaction_id, TX.c.type,
                  TX.c.memo, LedgerPosting.direction, LedgerPosting.amount)
        .join(TX, TX.c.id == LedgerPosting.transaction_id)
        .where(LedgerPosting.account_id == account.id, LedgerPosting.pending.is_(False),
               LedgerPosting.effective_date >= date_from, LedgerPosting.effective_date <= date_to)
        .order_by(LedgerPosting.effective_date, LedgerPosting.transaction_id, LedgerPosting.id)
        .limit(MAX_STATEMENT_LINES + 1)).all()
    if len(rows) > MAX_STATEMENT_LINES:
        raise ValidationFailed(f"more than {MAX_STATEMENT_LINES} lines: ask for a shorter range",
                               errors=[{"location": "query", "field": "date_from",
                                        "message": "range too long"}])
    running, lines, debits, credits = opening, [], 0, 0
    for day, tx_id, tx_type, memo, direction, amount in rows:
        if direction == "debit":
            running -= amount
            debits += amount
        else:
            running += amount
            credits += amount
        lines.append(StatementLine(day, tx_id, tx_type, memo,
                                   amount if direction == "debit" else 0,
                                   amount if direction == "credit" else 0, running))
    return Statement(account.id, account.code, account.name, account.party_id, asset.code,
                     asset.unit, date_from, date_to, opening, running, debits, credits, lines)


# --- balance assertions ----------------------------------------------------------------------


def _posted_as_of(session: Session, account_id: int, as_of: dt.date) -> int:
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(SIGNED), 0)).where(
        LedgerPosting.account_id == account_id, LedgerPosting.pending.is_(False),
        LedgerPosting.effective_date <= as_of)) or 0)


def assert_balance(session: Session, actor: Principal, ref: int | str, *, as_of: dt.date,
                   expected_balance: int, memo: str | None = None,
                   now: dt.datetime | None = None) -> LedgerBalanceAssertion:
    """Record that `ref` should hold `expected_balance` at the end of `as_of` and check it now;
    a failed assertion is recorded too (passed = false) for reconciliation to follow up."""
    now = now or utcnow()
    authorize(actor, "ledger.assertion.write")
    problem = signed_problem(expected_balance)
    if problem:
        raise errors.InvalidAmount(f"expected_balance {problem}", errors=[
            {"location": "json", "field": "expected_balance", "message": problem}])
    if as_of > local_date(now):
        raise errors.EffectiveDateInFuture(
            "a balance can only be asserted for a past date",
            errors=[{"location": "json", "field": "as_of", "message": "must not be in the future"}])
    account = find_account(session, ref)
    actual = _posted_as_of(session, account.id, as_of)
    assertion = LedgerBalanceAssertion(
        account_id=account.id, as_of=as_of, expected_balance=expected_balance,
        actual_balance=actual, passed=actual == expected_balance, memo=memo,
        created_by=actor.label, created_at=now, checked_at=now)
    session.add(assertion)
    session.flush()
    audit.record(session, actor, "ledger.assertion.create", "ledger_balance_assertion",
                 assertion.id, after=audit.snapshot(assertion))
    return assertion


def recheck_assertions(session: Session, actor: Principal, *, account: int | str | None = None,
                       now: dt.datetime | None = None) -> list[LedgerBalanceAssertion]:
    """Check recorded assertions again (e.g. after back-dated postings); those whose outcome
    changed are updated and audited. Returns every assertion checked."""
    now = now or utcnow()
    authorize(actor, "ledger.assertion.write")
    stmt = sa.select(LedgerBalanceAssertion).order_by(LedgerBalanceAssertion.id)
    if account is not None:
        stmt = stmt.where(LedgerBalanceAssertion.account_id == find_account(session, account).id)
    checked = []
    for assertion in session.scalars(stmt):
        actual = _posted_as_of(session, assertion.account_id, assertion.as_of)
        before = audit.snapshot(assertion)
        changed = actual != assertion.actual_balance
        assertion.actual_balance = actual
        assertion.passed = actual == assertion.expected_balance
        assertion.checked_at = now
        if changed:
            session.flush()
            audit.record(session, actor, "ledger.assertion.check", "ledger_balance_assertion",
                         assertion.id, before=before, after=audit.snapshot(assertion))
        checked.append(assertion)
    session.flush()
    return checked


def list_assertions(session: Session, actor: Principal, *, account: int | str | None = None,
                    passed: bool | None = None) -> sa.Select:
    authorize(actor, "ledger.read")
    stmt = sa.select(LedgerBalanceAssertion)
    if account is not None:
        stmt = stmt.where(LedgerBalanceAssertion.account_id == find_account(session, account).id)
    if passed is not None:
        stmt = stmt.where(LedgerBalanceAssertion.passed.is_(passed))
    return stmt.order_by(LedgerBalanceAssertion.id.desc())


# --- integrity check (tests, `ecovalue ledger verify`) ---------------------------------------


#: audit actions whose event records a transaction's postings (`rules.audit_snapshot`)
_POSTING_ACTIONS = ("ledger.transaction.create", "ledger.pending.create",
                    "ledger.transaction.reverse", "ledger.pending.post", "ledger.pending.void")


def verify(session: Session, actor: Principal) -> list[str]:
    """Recompute every materialised total from the postings and check the invariants: each
    asset sums to zero, every transaction balances per asset, guarded accounts are not
    negative, the holds are exactly the unresolved pendings, and every transaction's postings
    are those its audit event recorded (so postings changed together with the balances are
    caught too). Returns the problems found."""
    authorize(actor, "ledger.read")
    problems = _audit_mismatches(session)
    p = POSTINGS
    debit = sa.case((p.c.direction == "debit", p.c.amount), else_=0)
    credit = sa.case((p.c.direction == "credit", p.c.amount), else_=0)
    held = sa.select(LedgerPendingHold.transaction_id)
    computed = {r[0]: tuple(int(x or 0) for x in r[1:]) for r in session.execute(
        sa.select(p.c.account_id,
                  sa.func.sum(sa.case((p.c.pending.is_(False), debit), else_=0)),
                  sa.func.sum(sa.case((p.c.pending.is_(False), credit), else_=0)),
                  sa.func.sum(sa.case((p.c.transaction_id.in_(held), debit), else_=0)),
                  sa.func.sum(sa.case((p.c.transaction_id.in_(held), credit), else_=0)))
        .group_by(p.c.account_id))}
    accounts = {a.id: a for a in session.scalars(sa.select(LedgerAccount))}
    for b in session.scalars(sa.select(LedgerBalance)):
        stored = (b.posted_debits, b.posted_credits, b.pending_debits, b.pending_credits)
        expected = computed.get(b.account_id, (0, 0, 0, 0))
        if stored != expected:
            problems.append(f"account {b.account_id}: stored totals {stored} != postings "
                            f"{expected}")
        account = accounts[b.account_id]
        if account.no_overdraft and b.posted_credits - b.posted_debits - b.pending_debits < 0:
            problems.append(f"account {account.code}: guarded but available "
                            f"{b.posted_credits - b.posted_debits - b.pending_debits}")
    asset_totals: Iterable[Sequence[Any]] = session.execute(
            sa.select(p.c.asset_id, sa.func.sum(sa.case((p.c.direction == "credit", p.c.amount),
                                                        else_=-p.c.amount)))
            .where(p.c.pending.is_(False)).group_by(p.c.asset_id))
    for asset_id, total in asset_totals:
        if int(total) != 0:
            problems.append(f"asset {asset_id}: posted balances sum to {total}, not 0")
    unbalanced: Iterable[Sequence[Any]] = session.execute(
            sa.select(p.c.transaction_id, p.c.asset_id,
                      sa.func.sum(sa.case((p.c.direction == "credit", p.c.amount),
                                          else_=-p.c.amount)))
            .group_by(p.c.transaction_id, p.c.asset_id)
            .having(sa.func.sum(sa.case((p.c.direction == "credit", p.c.amount),
                                        else_=-p.c.amount)) != 0))
    for tx_id, asset_id, total in unbalanced:
        problems.append(f"transaction {tx_id}: asset {asset_id} unbalanced by {total}")
    resolution = TX.alias("resolution")
    open_pendings: set[int] = set(session.scalars(sa.select(TX.c.id).where(
        TX.c.phase == "pending", ~sa.exists().where(resolution.c.pending_id == TX.c.id))))
    holds = set(session.scalars(held))
    if open_pendings != holds:
        problems.append(f"holds {sorted(holds ^ open_pendings)[:10]} disagree with the "
                        "unresolved pendings")
    return problems


def _audit_mismatches(session: Session) -> list[str]:
    """Transactions whose stored postings differ from what the audit trail recorded when they
    were written: each transaction's event lists its postings; a batch's event carries the
    SHA-256 of all its transactions and postings (`rules.batch_digest`)."""
    a, s_ = LedgerAccount.__table__, LedgerAsset.__table__
    legs: dict[int, list[list]] = defaultdict(list)
    stored: Iterable[Sequence[Any]] = session.execute(
            sa.select(POSTINGS.c.transaction_id, a.c.code, s_.c.code, POSTINGS.c.direction,
                      POSTINGS.c.amount).join(a, a.c.id == POSTINGS.c.account_id)
            .join(s_, s_.c.id == POSTINGS.c.asset_id).order_by(POSTINGS.c.id))
    for tx_id, code, asset, direction, amount in stored:
        legs[tx_id].append([code, asset, direction, int(amount)])
    posting_events: Iterable[Sequence[Any]] = session.execute(
        sa.select(AuditEvent.entity_id, AuditEvent.after).where(
            AuditEvent.entity_type == "ledger_transaction",
            AuditEvent.action.in_(_POSTING_ACTIONS)))
    recorded = {int(entity_id): (after or {}).get("postings")
                for entity_id, after in posting_events}
    batch_events: Iterable[Sequence[Any]] = session.execute(
        sa.select(AuditEvent.entity_id, AuditEvent.after).where(
            AuditEvent.action == "ledger.batch.post"))
    batches = {int(entity_id): (after or {}).get("content_sha256")
               for entity_id, after in batch_events}
    problems = []
    batch_rows: dict[int, list[tuple]] = defaultdict(list)
    for tx in session.execute(sa.select(TX.c.id, TX.c.type, TX.c.phase, TX.c.effective_date,
                                        TX.c.memo, TX.c.batch_id).order_by(TX.c.id)):
        if tx.batch_id is not None:
            batch_rows[tx.batch_id].append((tx.id, tx.type, tx.phase, tx.effective_date,
                                            tx.memo))
            batch_rows[tx.batch_id].extend((tx.id, *leg) for leg in legs.get(tx.id, []))
        elif tx.phase != "expire_pending" and recorded.get(tx.id) != legs.get(tx.id, []):
            problems.append(f"transaction {tx.id}: postings differ from its audit event"
                            if tx.id in recorded else f"transaction {tx.id}: no audit event")
    for batch_id, rows in batch_rows.items():
        if batches.get(batch_id) != rules.batch_digest(rows):
            problems.append(f"batch {batch_id}: transactions or postings differ from the "
                            "digest in its audit event")
    return problems


# --- inflows (for the floors above that trace pooled money) ----------------------------------


@dataclasses.dataclass(frozen=True)
class Inflow:
    """One posted credit of an account: the transaction that brought value in, how much,
    and the accounts it debited (who paid: code and owner party). `reversed_by_id` is set
    when the transaction was reversed since."""

    transaction_id: int
    effective_date: dt.date
    type: str
    memo: str | None
    amount: int
    payers: tuple[tuple[str, int], ...]
    reversed_by_id: int | None


MAX_INFLOWS = 100_000


def account_inflows(session: Session, actor: Principal, ref: int | str, *,
                    date_from: dt.date | None = None, date_to: dt.date | None = None,
                    transaction_ids: Iterable[int] | None = None) -> list[Inflow]:
    """The posted credits of an account (optionally between two effective dates, inclusive,
    or only those of `transaction_ids`), oldest first, each with the accounts its
    transaction debited. Reversals (whose credits return value, not bring it in) are left
    out; an inflow that was reversed carries `reversed_by_id`. At most MAX_INFLOWS."""
    account = get_account(session, actor, ref)
    credit = sa.and_(LedgerPosting.account_id == account.id, LedgerPosting.pending.is_(False),
                     LedgerPosting.direction == "credit", TX.c.type != "reversal")
    if date_from is not None:
        credit = sa.and_(credit, LedgerPosting.effective_date >= date_from)
    if date_to is not None:
        credit = sa.and_(credit, LedgerPosting.effective_date <= date_to)
    if transaction_ids is not None:
        ids = [i for i in transaction_ids if valid_id(i)]
        credit = sa.and_(credit, LedgerPosting.transaction_id.in_(ids))
    rows: Sequence[Sequence[Any]] = session.execute(
        sa.select(LedgerPosting.transaction_id, LedgerPosting.effective_date, TX.c.type,
                  TX.c.memo, sa.func.sum(LedgerPosting.amount))
        .join(TX, TX.c.id == LedgerPosting.transaction_id).where(credit)
        .group_by(LedgerPosting.transaction_id, LedgerPosting.effective_date, TX.c.type,
                  TX.c.memo)
        .order_by(LedgerPosting.effective_date, LedgerPosting.transaction_id)
        .limit(MAX_INFLOWS + 1)).all()
    if len(rows) > MAX_INFLOWS:
        raise ValidationFailed(f"more than {MAX_INFLOWS} inflows: ask for a shorter range",
                               errors=[{"location": "query", "field": "date_from",
                                        "message": "range too long"}])
    tx_ids = [int(r[0]) for r in rows]
    payers: dict[int, list[tuple[str, int]]] = defaultdict(list)
    reversed_by: dict[int, int] = {}
    for start in range(0, len(tx_ids), 10_000):
        chunk = tx_ids[start:start + 10_000]
        for tx_id, code, party_id in session.execute(
                sa.select(LedgerPosting.transaction_id, LedgerAccount.code,
                          LedgerAccount.party_id)
                .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
                .where(LedgerPosting.transaction_id.in_(chunk),
                       LedgerPosting.direction == "debit")
                .order_by(LedgerPosting.id)):
            payers[int(tx_id)].append((code, int(party_id)))
        reversals: Iterable[Sequence[Any]] = session.execute(
            sa.select(TX.c.id, TX.c.reverses_id).where(TX.c.reverses_id.in_(chunk)))
        reversed_by.update({int(o): int(r) for r, o in reversals})
    return [Inflow(int(tx_id), day, tx_type, memo, int(amount), tuple(payers.get(int(tx_id), ())),
                   reversed_by.get(int(tx_id)))
            for tx_id, day, tx_type, memo, amount in rows]
