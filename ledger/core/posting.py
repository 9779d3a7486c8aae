"""The posting algorithm: how one write (a transaction, a batch, a reversal, the resolution
of a pending) goes into the ledger, in the caller's database transaction.

1. look up (`look_up`): the first statement takes the period lock and reads the
   idempotency key, the accounts, the expired holds on what the write debits, the balance
   rows and the closed months (on PostgreSQL it also claims the key, so a racing duplicate
   waits for the first and replays it, and locks the balance rows);
2. prepare (`prepare`): validate everything and collect all errors (`ledger.core.rules`),
   then authorize the debits (a trader debits only its own party's accounts);
3. write (`write`, `write_batch`): refuse a closed period (`_lock`, the one place that
   does); release expired holds; apply the legs to the totals; check the no-overdraft guard
   (also on every past date for a back-dated debit); insert the transaction row(s), the
   postings, the totals and the audit event (on PostgreSQL one statement). Without a look-up
   that read the balance rows (a batch on SQLite with expired holds, say) the header goes
   first and `_lock` locks the rows.

The rules are pure (`ledger.core.rules`), the statements and every difference between the
databases are in `ledger.core.store`; this module is the order of work. The caller owns the
unit of work and commits; any exception leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy.orm import Session

from ecovalue import audit
from ecovalue.auth.policy import Principal, authorize, row_filter
from ecovalue.errors import Forbidden
from ledger.core import errors, rules, store
from ledger.core.calendar import local_date
from ledger.core.models import LedgerBatch
from ledger.core.replay import scope_of

# What the floors above and the routes build transactions from (public names).
from ledger.core.rules import (  # noqa: F401
    MAX_BATCH,
    AccountRow,
    PostingSpec,
    Prepared,
    Totals,
    TransactionSpec,
    account_ref,
)

#: the policy action under which value enters the ledger: a posted debit of an `external`
#: account (money from a bank receipt; a sibling such as the registry names its own action)
ENTER = "ledger.value.enter"


def look_up(session: Session, actor: Principal, specs: Sequence[TransactionSpec], *,
            now: dt.datetime, key: str | None = None,
            request_hash: str | None = None) -> store.Lookup:
    """Step 1: what validating `specs` needs, in one statement (with the period lock; on
    PostgreSQL also the key's claim, the balance locks and the closed months)."""
    refs, debited = rules.refs_of(specs)
    return look_up_accounts(session, actor, refs, debited, now=now, key=key,
                            request_hash=request_hash,
                            months=rules.months_asked(specs, local_date(now)))


def look_up_accounts(session: Session, actor: Principal, refs: Iterable[int | str],
                     debited: Iterable[int | str], *, now: dt.datetime,
                     months: Iterable[dt.date], key: str | None = None,
                     request_hash: str | None = None) -> store.Lookup:
    """Step 1 for accounts named directly (the legs of a reversal or a resolution, read
    from the original), posting into `months`."""
    if key is not None and not rules.KEY_RE.match(key):
        key = None  # validation refuses it: nothing to find, nothing to claim
    return store.look_up(session, refs, debited, now=now, scope=scope_of(actor), key=key,
                         request_hash=request_hash, months=months)


def prepare(actor: Principal, specs: Sequence[TransactionSpec], lookup: store.Lookup, *,
            now: dt.datetime, action: str, enter: str = ENTER,
            batch: bool = False) -> list[Prepared]:
    """Step 2: every spec validated (all errors at once), then the debits authorized."""
    prepared = rules.validate(specs, lookup.accounts, today=local_date(now), now=now,
                              batch=batch)
    authorize_debits(actor, prepared, action, enter=enter)
    return prepared


def authorize_debits(actor: Principal, prepared: Sequence[Prepared], action: str, *,
                     enter: str = ENTER) -> None:
    """Anyone allowed to perform `action` may credit any account; a party-scoped caller (a
    trader) may debit only accounts of its own party (it can pay others, never take from
    them). Value entering from outside needs `enter` too (`authorize_entry`)."""
    authorize_entry(actor, prepared, enter)
    debtors = {acc.party_id for p in prepared for acc, d, _ in p.legs if d == "debit"}
    try:
        authorize(actor, action, party=debtors)
    except Forbidden as exc:
        own = row_filter(actor, action).party
        if own is not None:
            raise errors.AccountNotOwned(
                f"a trader may only debit accounts of its own party {own}; "
                f"this would debit accounts of parties {sorted(debtors - {own})}",
                action=action) from exc
        raise


def authorize_entry(actor: Principal, prepared: Sequence[Prepared], enter: str = ENTER) -> None:
    """A posted debit of an `external` account brings value in from outside (a bank receipt,
    an issuance), which only `enter` allows; a pending one is a request, authorized when it
    is posted."""
    if any(acc.kind == "external" for p in prepared if p.phase in ("posted", "post_pending")
           for acc, d, _ in p.legs if d == "debit"):
        try:
            authorize(actor, enter)
        except Forbidden as exc:
            raise errors.ValueEntryRefused(
                "value enters the ledger only through finance (a bank or treasury receipt) "
                "or the registry (an issuance): this transaction debits an external account; "
                "a trader may request it as a pending transfer that finance posts",
                action=enter) from exc


def write(session: Session, actor: Principal, p: Prepared, *, now: dt.datetime, action: str,
          expired: Sequence[int] | None = None, lookup: store.Lookup | None = None
          ) -> int | None:
    """Step 3 for one transaction; returns its id, or None when a unique constraint says an
    equal row exists (idempotent replay, already reversed, already resolved: the caller
    finds out which). `expired`: the expired holds found by the look-up; `lookup`: the
    look-up itself, which on PostgreSQL holds the locks already, so that the write and the
    audit append go as one statement (`store.write_transaction`)."""
    values = rules.header_values(p, actor.label, now, scope=scope_of(actor))
    if lookup is not None and _holds_locks(lookup):
        return _write_locked(session, actor, p, values, lookup, now=now, action=action)
    tx_id = store.insert_header(session, values)
    if tx_id is None:
        return None
    totals = _lock(session, actor, [p], expired, now)
    previous_dates = {a: totals[a].last_effective_date for a in p.debited}
    _apply(totals, p)
    backdated = rules.backdated_debits([p], previous_dates)
    # a back-dated debit reads the account's history between the writes
    with store.writes(session, reads_between=bool(backdated)):
        store.insert_postings(session, rules.posting_rows(tx_id, p))
        if p.phase == "pending":
            store.insert_hold(session, tx_id, p.spec.expires_at)
        store.write_balances(session, totals, now)
        _check_history(session, backdated)
        audit.record(session, actor, action, "ledger_transaction", tx_id,
                     after=rules.audit_snapshot(tx_id, p, values))
    return tx_id


def _holds_locks(lookup: store.Lookup | None) -> bool:
    """Whether the look-up read (PostgreSQL: locked) every balance row the write touches:
    always on PostgreSQL; on SQLite unless expired holds are released first (rare: their
    accounts' rows are read, their resolutions and audit events written, before the write)."""
    return lookup is not None and lookup.locked is not None and (
        lookup.tx_id is not None or not lookup.expired)


def _apply(totals: dict[int, Totals], p: Prepared) -> None:
    """The legs of `p` on the locked totals, then the guard and the 64-bit range."""
    rules.release_legs(totals, p.release)
    rules.apply_legs(totals, p.legs, pending=p.phase == "pending",
                     effective_date=p.effective_date)
    if p.checks_guard:
        rules.check_guards(totals, p.debited)
    rules.check_range(totals)


def _write_locked(session: Session, actor: Principal, p: Prepared, values: dict,
                  lookup: store.Lookup, *, now: dt.datetime, action: str) -> int | None:
    """Step 3 after a look-up that read (PostgreSQL: locked) the balance rows: the rules on
    those totals, then the write and its audit event (`store.write_transaction`: one
    statement on PostgreSQL); a back-dated debit checks the account's history between the
    write and the audit append."""
    totals = _lock(session, actor, [p], lookup.expired, now, lookup=lookup)
    previous_dates = {a: totals[a].last_effective_date for a in p.debited}
    _apply(totals, p)
    backdated = rules.backdated_debits([p], previous_dates)

    def change(tx_id: int) -> audit.Change:
        return audit.Change(action, "ledger_transaction", tx_id,
                            after=rules.audit_snapshot(tx_id, p, values))

    written = store.write_transaction(
        session, actor, lookup, values, lambda tx_id: rules.posting_rows(tx_id, p),
        p.phase == "pending", totals, now, None if backdated else change)
    if written is not None and backdated:
        _check_history(session, backdated)
        audit.record_many(session, actor, [change(written)])
    return written


def write_batch(session: Session, actor: Principal, prepared: Sequence[Prepared], *,
                memo: str | None, now: dt.datetime, expired: Sequence[int] | None = None,
                lookup: store.Lookup | None = None) -> tuple[int, list[int]]:
    """Step 3 for a batch, all or nothing: one id allocation, one multi-row insert per
    table, one lock pass over every account touched, the guard on the batch's end state,
    one balance update, one audit event whose content digest covers every transaction and
    posting."""
    if not prepared:
        raise errors.InvalidTransaction("a batch needs at least one transaction", errors=[
            {"location": "json", "field": "transactions", "message": "empty"}])
    ids = store.allocate_ids(session, len(prepared))
    batch, rows = open_batch(session, actor, len(prepared), memo=memo, now=now)
    digest_rows: list[tuple] = []
    for tx_id, p in zip(ids, prepared, strict=True):
        rows.add(tx_id, p.type, p.phase, p.effective_date, p.spec.memo, p.spec.metadata,
                 p.spec.expires_at if p.phase == "pending" else None, p.legs)
        digest_rows.append((tx_id, p.type, p.phase, p.effective_date, p.spec.memo))
        digest_rows.extend((tx_id, acc.code, acc.asset_code, d, amount)
                           for acc, d, amount in p.legs)
    rows.insert(session)
    totals = _lock(session, actor, prepared, expired, now,
                   lookup=lookup if _holds_locks(lookup) else None)
    debited = {a: acc for p in prepared for a, acc in p.debited.items()}
    previous_dates = {a: totals[a].last_effective_date for a in debited}
    for p in prepared:
        rules.apply_legs(totals, p.legs, pending=p.phase == "pending",
                         effective_date=p.effective_date)
    rules.check_guards(totals, debited)
    rules.check_range(totals)
    store.write_balances(session, totals, now)
    _check_history(session, rules.backdated_debits(prepared, previous_dates))
    close_batch(session, actor, batch, ids, rules.batch_digest(digest_rows))
    return batch.id, ids


def open_batch(session: Session, actor: Principal, count: int, *, memo: str | None,
               now: dt.datetime) -> tuple[LedgerBatch, store.BatchRows]:
    """A batch's header row (its digest filled in by `close_batch`) and the collector of its
    transactions' rows."""
    batch = LedgerBatch(transaction_count=count, content_sha256="", memo=memo,
                        author=actor.label, created_at=now)
    session.add(batch)
    session.flush()
    return batch, store.BatchRows(session, author=actor.label, now=now, batch_id=batch.id)


def close_batch(session: Session, actor: Principal, batch: LedgerBatch, ids: Sequence[int],
                content_sha256: str) -> None:
    """The batch's content digest stored, and its one audit event."""
    batch.content_sha256 = content_sha256
    session.flush()
    audit.record(session, actor, "ledger.batch.post", "ledger_batch", batch.id, after={
        "id": batch.id, "transaction_count": batch.transaction_count,
        "first_transaction_id": ids[0], "last_transaction_id": ids[-1],
        "content_sha256": content_sha256, "memo": batch.memo})


def _lock(session: Session, actor: Principal, prepared: Sequence[Prepared],
          expired: Sequence[int] | None, now: dt.datetime,
          lookup: store.Lookup | None = None) -> dict[int, Totals]:
    """Lock the balance rows of every account the write touches (its legs, the legs of the
    pending it resolves, the legs of the expired holds it releases), refuse a closed period
    (the one place that does: the months come with the locked rows), and record the expiry
    of the holds past their time on the guarded accounts it debits. With a `lookup` that
    locked them already (PostgreSQL): the rows and the months it read."""
    guarded = {a for p in prepared if p.may_expire_holds
               for a, acc in p.debited.items() if acc.no_overdraft}
    if not guarded:
        expiring = {}
    elif lookup is not None and lookup.locked is not None:
        expiring = {tx: lookup.expired_legs[tx] for tx in lookup.expired
                    if tx in lookup.expired_legs}
    elif expired is not None:
        expiring = store.pending_legs(session, expired)
    else:
        expiring = store.expired_holds_on(session, guarded, now)
    touched = {acc.id for p in prepared for acc, _, _ in p.legs}
    touched |= {a for p in prepared for a, _, _ in p.release}
    touched |= {a for legs in expiring.values() for a, _, _ in legs}
    months = rules.months_posted(prepared)
    if lookup is not None and lookup.locked is not None:
        totals = {a: lookup.locked[a] for a in touched}
        closed = [m for m in lookup.closed if m in months]
    else:
        totals, closed = store.lock_balances(session, touched, months)
    rules.refuse_closed(closed)
    expire_locked(session, actor, totals, expiring, now)
    return totals


def expire_locked(session: Session, actor: Principal, totals: Mapping[int, Totals],
                  expiring: Mapping[int, list[rules.StoredLeg]], now: dt.datetime) -> list[int]:
    """Record the expiry of pendings whose accounts are already locked: delete their holds,
    release the reservations, append an `expire_pending` transaction each. Returns the ids
    of the pendings expired here."""
    if not expiring:
        return []
    done = []
    for tx_id, expires_at in store.delete_expired_holds(session, expiring, now):
        rules.release_legs(totals, expiring[tx_id])
        header = {"type": "pending_resolution", "phase": "expire_pending",
                  "effective_date": local_date(expires_at), "memo": "expired",
                  "metadata": None, "author": actor.label, "created_at": now,
                  "pending_id": tx_id}
        resolution_id = store.insert_header(session, header)
        audit.record(session, actor, "ledger.pending.expire", "ledger_transaction", tx_id,
                     after={"resolution_id": resolution_id, "expired_at": expires_at})
        done.append(tx_id)
    return done


def _check_history(session: Session,
                   backdated: Mapping[int, tuple[AccountRow, dt.date]]) -> None:
    """A back-dated debit of a guarded account must not make its posted balance negative on
    any date from then on (as-of balances stay >= 0, not only today's). Rare."""
    for account_id, (account, since) in backdated.items():
        negative = rules.first_negative(*store.daily_changes(session, account_id, since))
        if negative is not None:
            day, running = negative
            raise errors.InsufficientBalance(
                f"account {account.code} would have been overdrawn by {-running} "
                f"{account.asset_code} on {day}: a back-dated debit may not overdraw a "
                "guarded account on any date", account=account.code,
                errors=[{"location": "json", "field": "effective_date",
                         "message": f"{account.code} negative on {day}"}])
