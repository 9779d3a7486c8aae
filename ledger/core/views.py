"""Transactions as the API shows them: postings and the derived state of pendings and
reversals, read back from the database or built from what was just written."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue.db import utcnow
from ledger.core.models import LedgerAccount, LedgerAsset, LedgerPendingHold
from ledger.core.rules import Prepared, valid_id
from ledger.core.store import POSTINGS, TX


@dataclasses.dataclass(frozen=True)
class PostingView:
    id: int | None
    account_id: int
    account_code: str
    asset: str
    direction: str
    amount: int


@dataclasses.dataclass(frozen=True)
class TransactionView:
    """A transaction as the API shows it, with the derived state of pendings and reversals."""

    id: int
    type: str
    phase: str
    status: str
    effective_date: dt.date
    memo: str | None
    metadata: dict | None
    author: str
    created_at: dt.datetime
    reverses_id: int | None
    reversed_by_id: int | None
    pending_id: int | None
    resolved_by_id: int | None
    expires_at: dt.datetime | None
    batch_id: int | None
    idempotency_key: str | None
    postings: list[PostingView]
    replayed: bool = False


RESOLUTION_STATUS = {"post_pending": "posted", "void_pending": "voided",
                     "expire_pending": "expired"}


def created_status(phase: str) -> str:
    """The status of a transaction of `phase` at the moment it is created."""
    return "pending" if phase == "pending" else RESOLUTION_STATUS.get(phase, "posted")


def load_views(session: Session, ids: Sequence[int], *,
               now: dt.datetime | None = None) -> list[TransactionView]:
    """Transactions by id (in the given order) with postings and derived state."""
    ids = [i for i in ids if valid_id(i)]
    if not ids:
        return []
    now = now or utcnow()
    rows = {r.id: r for r in session.execute(sa.select(TX).where(TX.c.id.in_(ids)))}
    postings: dict[int, list[PostingView]] = defaultdict(list)
    a, s = LedgerAccount.__table__, LedgerAsset.__table__
    for row in session.execute(
            sa.select(POSTINGS.c.id, POSTINGS.c.transaction_id, POSTINGS.c.account_id, a.c.code,
                      s.c.code, POSTINGS.c.direction, POSTINGS.c.amount)
            .join(a, a.c.id == POSTINGS.c.account_id).join(s, s.c.id == POSTINGS.c.asset_id)
            .where(POSTINGS.c.transaction_id.in_(ids)).order_by(POSTINGS.c.id)):
        postings[row[1]].append(PostingView(row[0], row[2], row[3], row[4], row[5], row[6]))
    followers = session.execute(sa.select(TX.c.id, TX.c.phase, TX.c.pending_id, TX.c.reverses_id)
                                .where(sa.or_(TX.c.pending_id.in_(ids),
                                              TX.c.reverses_id.in_(ids)))).all()
    resolved = {f.pending_id: f for f in followers if f.pending_id is not None}
    reversed_by = {f.reverses_id: f.id for f in followers if f.reverses_id is not None}
    # a pending's own legs: the resolution has none (void/expire) or copies them (post)
    holds = dict(session.execute(sa.select(LedgerPendingHold.transaction_id,
                                           LedgerPendingHold.expires_at)
                                 .where(LedgerPendingHold.transaction_id.in_(ids))).all())
    views = []
    for tx_id in ids:
        r = rows.get(tx_id)
        if r is None:
            continue
        resolution = resolved.get(tx_id)
        if r.phase == "pending":
            if resolution is not None:
                status = RESOLUTION_STATUS[resolution.phase]
            elif (expires_at := holds.get(tx_id)) is not None and expires_at <= now:
                status = "expired"
            else:
                status = "pending"
        else:
            status = RESOLUTION_STATUS.get(r.phase, "posted")
        views.append(TransactionView(
            id=r.id, type=r.type, phase=r.phase, status=status, effective_date=r.effective_date,
            memo=r.memo, metadata=r.metadata, author=r.author, created_at=r.created_at,
            reverses_id=r.reverses_id, reversed_by_id=reversed_by.get(tx_id),
            pending_id=r.pending_id, resolved_by_id=resolution.id if resolution else None,
            expires_at=r.expires_at, batch_id=r.batch_id, idempotency_key=r.idempotency_key,
            postings=postings.get(tx_id, [])))
    return views


def fresh_view(p: Prepared, tx_id: int, author: str, now: dt.datetime) -> TransactionView:
    """The view of a transaction just written, without reading it back: what a read-back
    would show at this instant (timestamps in UTC, as stored), which is also what a replay
    answers (`as_created`)."""
    expires_at = p.spec.expires_at if p.phase == "pending" else None
    return TransactionView(
        id=tx_id, type=p.type, phase=p.phase, status=created_status(p.phase),
        effective_date=p.effective_date, memo=p.spec.memo,
        metadata=dict(p.spec.metadata) if p.spec.metadata is not None else None,
        author=author, created_at=now.astimezone(dt.UTC), reverses_id=p.reverses_id,
        reversed_by_id=None, pending_id=p.pending_id, resolved_by_id=None,
        expires_at=expires_at.astimezone(dt.UTC) if expires_at is not None else None,
        batch_id=None, idempotency_key=p.spec.idempotency_key,
        postings=[PostingView(None, acc.id, acc.code, acc.asset_code, d, amount)
                  for acc, d, amount in p.legs])


def as_created(view: TransactionView) -> TransactionView:
    """A transaction as it was the moment it was created (as `fresh_view` showed it),
    whatever happened to it since (a later reversal, the resolution of a pending)."""
    return dataclasses.replace(
        view, status=created_status(view.phase), reversed_by_id=None, resolved_by_id=None,
        postings=[dataclasses.replace(p, id=None) for p in view.postings], replayed=True)
