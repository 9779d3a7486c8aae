"""Helpers shared by the registry's services: clock, look-ups, the operator party."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue.db import utcnow
from ecovalue.errors import ValidationFailed
from ledger.carbon import errors
from ledger.carbon.models import CarbonBatch, CarbonProject, CarbonRegistry
from ledger.core.calendar import local_date

T = TypeVar("T")
MAX_ID = 2**63 - 1


def now_and_today(now: dt.datetime | None) -> tuple[dt.datetime, dt.date]:
    """The instant of an operation (UTC) and its accounting date (Asia/Shanghai)."""
    now = now or utcnow()
    return now, local_date(now)


def fetch(session: Session, model: type[T], key: Any) -> T | None:
    """`session.get` answering None for ids no row can have."""
    if isinstance(key, bool) or not isinstance(key, int) or not 0 < key <= MAX_ID:
        return None
    return session.get(model, key)


def invalid(detail: str, field: str, message: str, cls: type = ValidationFailed) -> Exception:
    return cls(detail, errors=[{"location": "json", "field": field, "message": message}])


def get_project(session: Session, ref: int | str) -> CarbonProject:
    """A project by id or code (no authorization: callers decide who may see it)."""
    if isinstance(ref, int):
        project = fetch(session, CarbonProject, ref)
    else:
        project = session.scalar(sa.select(CarbonProject).where(CarbonProject.code == ref)) \
            if "\x00" not in ref else None
    if project is None:
        raise errors.ProjectNotFound(f"no carbon project {ref!r}")
    return project


def get_batch(session: Session, ref: int | str) -> CarbonBatch:
    """A batch by id, asset code or serial block."""
    if isinstance(ref, int):
        batch = fetch(session, CarbonBatch, ref)
    else:
        batch = None if "\x00" in ref else session.scalar(sa.select(CarbonBatch).where(
            sa.or_(CarbonBatch.asset_code == ref, CarbonBatch.serial_block == ref)))
    if batch is None:
        raise errors.BatchNotFound(f"no carbon batch {ref!r}")
    return batch


def operator_party(session: Session) -> int:
    """The registry operator's party id, or 409 registry-not-configured."""
    row = session.get(CarbonRegistry, 1)
    if row is None:
        raise errors.RegistryNotConfigured(
            "the registry has no operator party yet: an admin sets it with "
            "`ecovalue carbon registry set-operator PARTY_ID` or PUT /carbon/registry")
    return row.operator_party_id


def party_names(session: Session, ids: set[int]) -> dict[int, Party]:
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(sa.select(Party).where(Party.id.in_(ids)))}
