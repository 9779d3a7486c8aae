"""The audit trail: an append-only, hash-chained log of every state change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ecovalue.db import Base, BigIntPK, JSONDocument, UTCDateTime


class AuditEvent(Base):
    __tablename__ = "audit_events"

    #: position in the chain, 1, 2, 3 ... without gaps
    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    #: when the change was made (UTC)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    #: who made it: `token:<id>:<name>` or `system:<label>`; never a secret
    actor: Mapped[str] = mapped_column(sa.String(250), index=True)
    #: what was done, dotted, e.g. `catalog.product.verify`
    action: Mapped[str] = mapped_column(sa.String(100), index=True)
    #: kind of thing changed, e.g. `product`
    entity_type: Mapped[str] = mapped_column(sa.String(60))
    #: its identifier as text
    entity_id: Mapped[str] = mapped_column(sa.String(100))
    #: state before the change (JSON, personal data masked); NULL for a creation
    before: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    #: state after the change (JSON, personal data masked); NULL for a deletion
    after: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    #: request id of the HTTP request that caused it, if any
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    #: hash of the previous event (64 zeros for the first)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    #: SHA-256 of "<seq>|<prev_hash>|<SHA-256 of the canonical JSON of the rest>"
    hash: Mapped[str] = mapped_column(sa.String(64))

    __table_args__ = (sa.Index("ix_audit_events_entity", "entity_type", "entity_id"),)
