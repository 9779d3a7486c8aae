"""Helpers shared by the pilot's services: look-ups, the plant party, who sees what."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue.auth import Principal, RowFilter, row_filter
from ecovalue.clock import local_date, utcnow

T = TypeVar("T")
MAX_ID = 2**63 - 1
#: the pilot's jurisdiction (Qianxinan Prefecture), named on its retirements
JURISDICTION = "522300"


def now_and_today(now: dt.datetime | None) -> tuple[dt.datetime, dt.date]:
    """The instant of an operation (UTC) and its accounting date (Asia/Shanghai)."""
    now = now or utcnow()
    return now, local_date(now)


def fetch(session: Session, model: type[T], key: Any) -> T | None:
    """`session.get` answering None for ids no row can have."""
    if isinstance(key, bool) or not isinstance(key, int) or not 0 < key <= MAX_ID:
        return None
    return session.get(model, key)


def valid_year(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 2000 <= value <= 2100


def readable(actor: Principal | None) -> RowFilter:
    """Whose pilot data `actor` reads: everything, or (a plant's trader) its own party's."""
    return row_filter(actor, "pilot.read")


def party_names(session: Session, ids: set[int]) -> dict[int, Party]:
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(sa.select(Party).where(Party.id.in_(ids)))}


def party_ref(party: Party | None, party_id: int) -> dict[str, Any]:
    return {"id": party_id, "name_zh": party.name_zh if party else None,
            "name_en": party.name_en if party else None,
            "credit_code": party.credit_code if party else None}
