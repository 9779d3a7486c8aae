"""Transactions: post, reserve (pending), resolve (post or void), reverse, batch, read.

Each operation is one unit of work that the caller commits; the write path itself is
`ledger.core.posting`, the replay of an `Idempotency-Key` is `ledger.core.replay`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue.auth.policy import Principal, authorize, row_filter
from ecovalue.bulk import paused_gc
from ecovalue.db import utcnow
from ledger.core import errors, posting, replay, rules, staged, store
from ledger.core.calendar import local_date, month_of
from ledger.core.models import LedgerAccount, LedgerAsset, LedgerBatch
from ledger.core.rules import Prepared, TransactionSpec, valid_id
from ledger.core.services.accounts import authorize_read, find_account
from ledger.core.store import POSTINGS, TX
from ledger.core.views import RESOLUTION_STATUS, TransactionView, fresh_view, load_views

#: the policy action under which a client's transaction is authorized
CREATE = "ledger.transaction.create"


def _authorize_tx_read(session: Session, actor: Principal, view: TransactionView) -> None:
    own = row_filter(actor, "ledger.read").party
    if own is None:
        authorize(actor, "ledger.read")
        return
    ids = {p.account_id for p in view.postings}
    if view.pending_id is not None and not ids:
        ids = {p.account_id for p in load_views(session, [view.pending_id])[0].postings}
    parties = set(session.scalars(sa.select(LedgerAccount.party_id)
                                  .where(LedgerAccount.id.in_(ids)))) if ids else set()
    if own not in parties:
        raise errors.AccountNotOwned("this transaction touches none of your party's accounts",
                                action="ledger.read")


def get_transaction(session: Session, actor: Principal, tx_id: int, *,
                    now: dt.datetime | None = None) -> TransactionView:
    views = load_views(session, [tx_id], now=now)
    if not views:
        raise errors.TransactionNotFound(f"no transaction {tx_id}")
    _authorize_tx_read(session, actor, views[0])
    return views[0]


def create_transaction(session: Session, actor: Principal, spec: TransactionSpec, *,
                       now: dt.datetime | None = None, action: str = CREATE,
                       enter: str = posting.ENTER) -> TransactionView:
    """Post a transaction (or, with `spec.pending`, reserve a two-phase transfer).

    With `spec.idempotency_key`: a replay (same key, same request, same caller scope)
    returns the first transaction with `replayed=True` and changes nothing; the same key
    with a different request raises IdempotencyKeyReused (409). `action`: the policy action
    the debits are authorized under, `enter` the one under which value enters from an
    `external` account (a sibling package names its own)."""
    now = now or utcnow()
    key = spec.idempotency_key if isinstance(spec.idempotency_key, str) else None
    request_hash = spec.request_hash() if spec.idempotency_key is not None else None
    lookup = posting.look_up(session, actor, [spec], now=now, key=key,
                             request_hash=request_hash)
    if lookup.found is not None:
        authorize(actor, action, party=actor.party_id)
        return replay.replayed(session, lookup.found, request_hash, now)
    prepared = posting.prepare(actor, [spec], lookup, now=now, action=action, enter=enter)[0]
    prepared.request_hash = request_hash
    audit_action = "ledger.pending.create" if spec.pending else "ledger.transaction.create"
    tx_id = posting.write(session, actor, prepared, now=now, action=audit_action,
                          expired=lookup.expired, lookup=lookup)
    if tx_id is None:  # a racing request with the same key committed first
        view = replay.replay_if_used(session, actor, key, request_hash, now)
        assert view is not None
        return view
    return fresh_view(prepared, tx_id, actor.label, now)


def _original(session: Session, tx_id: int) -> store.Original:
    found = store.original(session, tx_id) if valid_id(tx_id) else None
    if found is None:
        raise errors.TransactionNotFound(f"no transaction {tx_id}")
    return found


def _legs_and_look_up(session: Session, actor: Principal, stored: list[rules.StoredLeg], *,
                      mirrored: bool, effective_date: dt.date | None, key: str | None,
                      request_hash: str | None, now: dt.datetime
                      ) -> tuple[list[rules.Leg], store.Lookup]:
    """The original's legs `stored` (`mirrored`: debit <-> credit, for a reversal) with the
    look-up of the follow-up that writes them (`posting.look_up_accounts`: on PostgreSQL the
    claim of its key and the locks of its balance rows), which also reads their accounts."""
    if mirrored:
        stored = [(a, "credit" if d == "debit" else "debit", amount) for a, d, amount in stored]
    lookup = posting.look_up_accounts(
        session, actor, {a for a, _, _ in stored},
        {a for a, d, _ in stored if d == "debit"}, now=now, key=key,
        request_hash=request_hash,
        months={month_of(effective_date or local_date(now))} if stored else set())
    if lookup.found is not None:
        return [], lookup
    return [(lookup.accounts[a], d, amount) for a, d, amount in stored], lookup


def _body(memo: str | None, effective_date: dt.date | None) -> dict:
    return {"memo": memo, "effective_date": effective_date.isoformat() if effective_date
            else None}


def reverse_transaction(session: Session, actor: Principal, tx_id: int, *,
                        memo: str | None = None, effective_date: dt.date | None = None,
                        idempotency_key: str | None = None,
                        now: dt.datetime | None = None) -> TransactionView:
    """Append a transaction with every posting of `tx_id` mirrored (debit <-> credit), dated
    `effective_date` (default today) in an open period. A reversal cannot be reversed, an
    original is reversed at most once; pendings are voided, not reversed."""
    now = now or utcnow()
    authorize(actor, "ledger.transaction.reverse")
    request_hash = replay.follow_up_hash("reverse", tx_id, _body(memo, effective_date)) \
        if idempotency_key is not None else None
    replayed = replay.replay_if_used(session, actor, idempotency_key, request_hash, now)
    if replayed is not None:
        return replayed
    found = _original(session, tx_id)
    original = found.row
    if original.reverses_id is not None:
        raise errors.NotReversible(f"transaction {tx_id} is itself a reversal; post a new "
                                   "transaction instead of reversing a reversal")
    if original.phase == "pending":
        raise errors.NotReversible(f"transaction {tx_id} is a pending transfer: void it instead")
    if original.phase in ("void_pending", "expire_pending"):
        raise errors.NotReversible(f"transaction {tx_id} moved nothing (it resolves pending "
                              f"{original.pending_id}); there is nothing to reverse")
    existing = found.reversed_by
    if existing is not None:
        raise errors.AlreadyReversed(f"transaction {tx_id} was already reversed by {existing}",
                                reversed_by_id=existing)
    spec = TransactionSpec(type="reversal", postings=[], effective_date=effective_date,
                           memo=memo if memo is not None else f"reversal of {tx_id}",
                           metadata={"reverses": tx_id}, idempotency_key=idempotency_key)
    legs, lookup = _legs_and_look_up(session, actor, found.legs, mirrored=True,
                                     effective_date=effective_date, key=idempotency_key,
                                     request_hash=request_hash, now=now)
    if lookup.found is not None:  # a racing request with the key committed first
        return replay.replayed(session, lookup.found, request_hash, now)
    prepared = Prepared(
        spec=spec, type=spec.type, reverses_id=tx_id, request_hash=request_hash,
        effective_date=rules.validate_follow_up(spec, today=local_date(now), now=now,
                                                not_before=original.effective_date),
        legs=legs)
    posting.authorize_entry(actor, [prepared])
    new_id = posting.write(session, actor, prepared, now=now, action="ledger.transaction.reverse",
                           lookup=lookup)
    if new_id is None:  # a racing request committed first: its replay, or already reversed
        replayed = replay.replay_if_used(session, actor, idempotency_key, request_hash, now)
        if replayed is None:
            raise errors.AlreadyReversed(f"transaction {tx_id} was already reversed")
        return replayed
    return fresh_view(prepared, new_id, actor.label, now)


def _resolve(session: Session, actor: Principal, tx_id: int, *, phase: str,
             memo: str | None, effective_date: dt.date | None, idempotency_key: str | None,
             now: dt.datetime) -> TransactionView:
    op = "post" if phase == "post_pending" else "void"
    authorize(actor, "ledger.pending.resolve")
    request_hash = replay.follow_up_hash(op, tx_id, _body(memo, effective_date)) \
        if idempotency_key is not None else None
    replayed = replay.replay_if_used(session, actor, idempotency_key, request_hash, now)
    if replayed is not None:
        return replayed
    found = _original(session, tx_id)
    original = found.row
    if original.phase != "pending":
        raise errors.NotPending(f"transaction {tx_id} is not a pending transfer")
    hold = store.delete_hold(session, tx_id)
    if hold is None:
        resolution = store.resolution_of(session, tx_id)
        if resolution is not None:
            replayed = replay.replay_if_used(session, actor, idempotency_key, request_hash, now)
            if replayed is not None:
                return replayed
        what = RESOLUTION_STATUS.get(resolution.phase, "resolved") if resolution else "resolved"
        raise errors.PendingAlreadyResolved(
            f"pending transfer {tx_id} was already {what}"
            + (f" by transaction {resolution.id}" if resolution else ""),
            resolved_by_id=resolution.id if resolution else None)
    expires_at = hold[0]
    if expires_at is not None and expires_at <= now:
        raise errors.PendingExpired(f"pending transfer {tx_id} expired at "
                                    f"{expires_at.isoformat()}; "
                               "its reservation is released and it can no longer be "
                               f"{'posted' if op == 'post' else 'voided'}")
    pending_legs, lookup = _legs_and_look_up(session, actor, found.legs, mirrored=False,
                                             effective_date=effective_date
                                             if phase == "post_pending" else None,
                                             key=idempotency_key, request_hash=request_hash,
                                             now=now)
    if lookup.found is not None:  # pragma: no cover - the hold delete serialised us already
        return replay.replayed(session, lookup.found, request_hash, now)
    authorize(actor, "ledger.pending.resolve",
              party={acc.party_id for acc, d, _ in pending_legs if d == "debit"})
    spec = TransactionSpec(type=original.type, postings=[], effective_date=effective_date,
                           memo=memo, idempotency_key=idempotency_key,
                           metadata={"pending": tx_id})
    prepared = Prepared(
        spec=spec, type=spec.type, phase=phase, pending_id=tx_id, request_hash=request_hash,
        effective_date=rules.validate_follow_up(spec, today=local_date(now), now=now,
                                                not_before=original.effective_date),
        legs=pending_legs if phase == "post_pending" else [],
        release=[(acc.id, d, amount) for acc, d, amount in pending_legs])
    posting.authorize_entry(actor, [prepared])
    new_id = posting.write(session, actor, prepared, now=now, action=f"ledger.pending.{op}",
                           lookup=lookup)
    if new_id is None:  # pragma: no cover - the hold delete above already serialised us
        raise errors.PendingAlreadyResolved(f"pending transfer {tx_id} was already resolved")
    return fresh_view(prepared, new_id, actor.label, now)


def post_pending(session: Session, actor: Principal, tx_id: int, *, memo: str | None = None,
                 effective_date: dt.date | None = None, idempotency_key: str | None = None,
                 now: dt.datetime | None = None) -> TransactionView:
    """Post a pending transfer in full: its reserved debits and credits become posted."""
    return _resolve(session, actor, tx_id, phase="post_pending", memo=memo,
                    effective_date=effective_date, idempotency_key=idempotency_key,
                    now=now or utcnow())


def void_pending(session: Session, actor: Principal, tx_id: int, *, memo: str | None = None,
                 idempotency_key: str | None = None,
                 now: dt.datetime | None = None) -> TransactionView:
    """Cancel a pending transfer: its reservations are released, nothing moves."""
    return _resolve(session, actor, tx_id, phase="void_pending", memo=memo, effective_date=None,
                    idempotency_key=idempotency_key, now=now or utcnow())


def expire_pendings(session: Session, actor: Principal, *, now: dt.datetime | None = None,
                    limit: int = 1000) -> list[int]:
    """Record the expiry of every pending past its `expires_at` (a sweep; posting into an
    account also expires the pendings that reserve its funds). Returns the expired ids."""
    now = now or utcnow()
    authorize(actor, "ledger.pending.resolve")
    expiring = store.pending_legs(session, store.expired_holds(session, now, limit))
    if not expiring:
        return []
    totals, _ = store.lock_balances(session, {a for legs in expiring.values()
                                              for a, _, _ in legs}, ())
    done = posting.expire_locked(session, actor, totals, expiring, now)
    store.write_balances(session, totals, now)
    return done


@paused_gc()
def post_batch(session: Session, actor: Principal, specs: Sequence[TransactionSpec], *,
               memo: str | None = None, now: dt.datetime | None = None,
               action: str = CREATE, enter: str = posting.ENTER) -> tuple[int, list[int]]:
    """Post many transactions at once, all or nothing (errors name `transactions.<i>`).
    Guards are checked on the batch's end state. Returns (batch id, transaction ids). A
    batch of `staged.STAGED_MIN_LEGS` legs or more is posted set-based in SQL
    (`ledger.core.staged`), with the same guards and errors."""
    now = now or utcnow()
    authorize(actor, action, party=actor.party_id)
    if not specs:
        raise errors.InvalidTransaction("a batch needs at least one transaction", errors=[
            {"location": "json", "field": "transactions", "message": "empty"}])
    if len(specs) > rules.MAX_BATCH:
        raise errors.InvalidTransaction(
            f"at most {rules.MAX_BATCH} transactions per batch",
            errors=[{"location": "json", "field": "transactions", "message": "too many"}])
    if any(s.idempotency_key is not None for s in specs):
        raise errors.InvalidTransaction(
            "transactions of a batch carry no idempotency key of their own: the batch request "
            "is idempotent as a whole", errors=[{"location": "json", "field": "transactions",
                                                 "message": "idempotency_key not allowed"}])
    if memo is not None and len(memo) > rules.MAX_MEMO:
        raise errors.InvalidTransaction("memo too long", errors=[
            {"location": "json", "field": "memo",
             "message": f"at most {rules.MAX_MEMO} characters"}])
    if sum(len(s.postings) for s in specs if isinstance(s.postings, Sequence)) \
            >= staged.STAGED_MIN_LEGS:
        done = staged.post_batch(session, actor, specs, memo=memo, now=now, action=action,
                                 enter=enter)
        if done is not None:
            return done
    lookup = posting.look_up(session, actor, specs, now=now)
    prepared = posting.prepare(actor, specs, lookup, now=now, action=action, enter=enter,
                               batch=True)
    return posting.write_batch(session, actor, prepared, memo=memo, now=now,
                               expired=lookup.expired, lookup=lookup)


def get_batch(session: Session, actor: Principal, batch_id: int) -> tuple[LedgerBatch, list[int]]:
    authorize(actor, "ledger.read")
    batch = session.get(LedgerBatch, batch_id) if valid_id(batch_id) else None
    if batch is None:
        raise errors.TransactionNotFound(f"no batch {batch_id}")
    ids: Sequence[int] = session.scalars(sa.select(TX.c.id).where(TX.c.batch_id == batch_id)
                          .order_by(TX.c.id)).all()
    return batch, list(ids)


def list_transactions(session: Session, actor: Principal, *, account: int | str | None = None,
                      party_id: int | None = None, type: str | None = None,
                      phase: str | None = None, date_from: dt.date | None = None,
                      date_to: dt.date | None = None, batch_id: int | None = None,
                      asset: str | None = None) -> sa.Select:
    """Transaction ids matching the filters, newest first (the caller paginates and loads
    the views). A trader sees only transactions touching its party's accounts."""
    own = row_filter(actor, "ledger.read").party
    if own is not None:
        party_id = own if party_id is None else party_id
        authorize_read(actor, party_id)
    else:
        authorize(actor, "ledger.read")
    stmt = sa.select(TX.c.id)
    if account is not None:
        acc = find_account(session, account)
        authorize_read(actor, acc.party_id)
        stmt = stmt.where(sa.exists().where(POSTINGS.c.transaction_id == TX.c.id,
                                            POSTINGS.c.account_id == acc.id))
    if party_id is not None:
        owned = sa.select(LedgerAccount.id).where(LedgerAccount.party_id == party_id)
        stmt = stmt.where(sa.exists().where(POSTINGS.c.transaction_id == TX.c.id,
                                            POSTINGS.c.account_id.in_(owned)))
    if asset:
        assets = sa.select(LedgerAsset.id).where(LedgerAsset.code == asset)
        stmt = stmt.where(sa.exists().where(POSTINGS.c.transaction_id == TX.c.id,
                                            POSTINGS.c.asset_id.in_(assets)))
    if type:
        stmt = stmt.where(TX.c.type == type)
    if phase:
        stmt = stmt.where(TX.c.phase == phase)
    if date_from:
        stmt = stmt.where(TX.c.effective_date >= date_from)
    if date_to:
        stmt = stmt.where(TX.c.effective_date <= date_to)
    if batch_id is not None:
        stmt = stmt.where(TX.c.batch_id == batch_id)
    return stmt.order_by(TX.c.id.desc())
