"""Accounting periods: a calendar month is open unless closed; nothing is posted into a
closed month (`ledger.core.rules.refuse_closed`, applied by the posting algorithm). Closing
waits for the writes in flight and keeps new ones out until it commits."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit
from ecovalue.auth.policy import Principal, authorize
from ecovalue.db import utcnow
from ecovalue.errors import ValidationFailed
from ledger.core import errors, store
from ledger.core.calendar import format_month, local_date, month_of
from ledger.core.models import LedgerPeriod


def close_period(session: Session, actor: Principal, month: dt.date, *, note: str | None = None,
                 now: dt.datetime | None = None) -> LedgerPeriod:
    """Close a month: no posting may be dated in it until it is reopened."""
    now = now or utcnow()
    authorize(actor, "ledger.period.manage")
    month = month_of(month)
    if month > month_of(local_date(now)):
        raise ValidationFailed(f"{format_month(month)} has not begun", errors=[
            {"location": "path", "field": "month", "message": "a future month cannot be closed"}])
    store.lock_periods_exclusive(session)
    period = session.get(LedgerPeriod, month, populate_existing=True)
    before = audit.snapshot(period) if period else None
    if period is not None and period.status == "closed":
        raise errors.PeriodAlreadyClosed(f"{format_month(month)} is already closed")
    if period is None:
        period = LedgerPeriod(month=month, status="closed")
        session.add(period)
    period.status, period.closed_at, period.closed_by, period.note = (
        "closed", now, actor.label, note)
    session.flush()
    audit.record(session, actor, "ledger.period.close", "ledger_period", format_month(month),
                 before=before, after=audit.snapshot(period))
    return period


def reopen_period(session: Session, actor: Principal, month: dt.date, *, note: str | None = None,
                  now: dt.datetime | None = None) -> LedgerPeriod:
    now = now or utcnow()
    authorize(actor, "ledger.period.manage")
    month = month_of(month)
    store.lock_periods_exclusive(session)
    period = session.get(LedgerPeriod, month, populate_existing=True)
    if period is None or period.status != "closed":
        raise errors.PeriodNotClosed(f"{format_month(month)} is not closed")
    before = audit.snapshot(period)
    period.status, period.reopened_at, period.reopened_by, period.note = (
        "open", now, actor.label, note)
    session.flush()
    audit.record(session, actor, "ledger.period.reopen", "ledger_period", format_month(month),
                 before=before, after=audit.snapshot(period))
    return period


def list_periods(session: Session, actor: Principal) -> list[LedgerPeriod]:
    """Months that were ever closed (every other month is open)."""
    authorize(actor, "ledger.read")
    return list(session.scalars(sa.select(LedgerPeriod).order_by(LedgerPeriod.month.desc())))


def period_status(session: Session, month: dt.date) -> str:
    period = session.get(LedgerPeriod, month_of(month))
    return period.status if period else "open"

