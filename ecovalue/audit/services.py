"""Appending to and verifying the audit hash chain.

Each event's hash covers its content and the previous event's hash, so changing, inserting or
deleting any stored event breaks the chain from that point on; `verify` names the first broken
link. What the chain alone cannot show is a rewrite by someone with write access to the
database who recomputes every later hash, or who deletes the newest events: a *checkpoint*
(the head's seq and hash, signed with HMAC-SHA256 under the audit key, which lives outside
the database like the personal-data key) that an auditor keeps detects both for every event
up to it (`verify_chain(..., against=[checkpoint])`). On PostgreSQL a trigger also refuses
UPDATE and DELETE of stored events (migration e0003_audit_append_only). Appends are
serialized: on PostgreSQL by a transaction-scoped advisory lock, taken in
the same statement that reads the head and inserts (`audit_append`, migration
e0002_audit_append); on SQLite by the write lock every writing transaction takes at BEGIN.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from flask import g, has_app_context
from sqlalchemy.orm import Session

from ecovalue.audit.models import AuditEvent
from ecovalue.auth.policy import Principal, authorize
from ecovalue.db import fetch_one, utcnow

GENESIS_HASH = "0" * 64
_ADVISORY_LOCK_KEY = 0x65636F76  # "ecov"


def to_jsonable(value: Any) -> Any:
    """A JSON-safe, deterministic rendering of a stored value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "<protected>"
    return str(value)


def snapshot(obj: Any, *, exclude: Iterable[str] = ()) -> dict:
    """Column values of a mapped object as JSON (binary columns, i.e. protected data, are
    replaced by a marker; pass personal plaintext columns in `exclude`)."""
    skip = set(exclude)
    return {
        col.key: to_jsonable(getattr(obj, col.key))
        for col in sa.inspect(obj).mapper.column_attrs
        if col.key not in skip
    }


def _canonical(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(
    *, occurred_at: dt.datetime, actor: str, action: str, entity_type: str, entity_id: str,
    before: Any, after: Any, request_id: str | None,
) -> str:
    """SHA-256 over an event's canonical JSON (everything but its place in the chain)."""
    payload = {
        "occurred_at": to_jsonable(occurred_at), "actor": actor, "action": action,
        "entity_type": entity_type, "entity_id": entity_id, "before": before, "after": after,
        "request_id": request_id,
    }
    return hashlib.sha256(_canonical(payload)).hexdigest()


def link(seq: int, prev_hash: str, content: str) -> str:
    """An event's hash: its place in the chain and its content. PostgreSQL computes the same
    in `audit_append` (migration e0002_audit_append)."""
    return hashlib.sha256(f"{seq}|{prev_hash}|{content}".encode()).hexdigest()


_EVENTS = AuditEvent.__table__
# Built once: every state change of the application appends here.
_HEAD = sa.select(_EVENTS.c.seq, _EVENTS.c.hash).order_by(_EVENTS.c.seq.desc()).limit(1)
_INSERT = _EVENTS.insert()
#: PostgreSQL: lock, head read and inserts in one statement (migration e0002_audit_append);
#: driver level (`fetch_one`), so that inside `pipelined` the queued writes go with it
_APPEND = "SELECT audit_append(%s, %s, %s, %s, %s)"


def _current_request_id() -> str | None:
    return g.get("request_id") if has_app_context() else None


@dataclasses.dataclass(frozen=True)
class Change:
    """One state change to append, for `record_many`."""

    action: str
    entity_type: str
    entity_id: Any
    before: Any = None
    after: Any = None


#: PostgreSQL: the append as an SQL expression (the last seq appended), for a statement that
#: folds it in with its own writes (`append_arguments` gives the parameters, in order); the
#: statement must call it after its own row locks, e.g. `SELECT ... FROM <its insert>`
APPEND_CALL = "audit_append(%s, %s, %s, %s, %s)"


def append_arguments(session: Session, actor: Principal, changes: Iterable[Change]
                     ) -> tuple[int, dt.datetime, str, str | None, str]:
    """PostgreSQL: the parameters of `APPEND_CALL` that append `changes` as `record_many`
    would (pending ORM changes are flushed first, as there)."""
    session.flush()
    now, request_id, events = _events(actor, changes)
    return _ADVISORY_LOCK_KEY, now, actor.label, request_id, json.dumps(events)


def _events(actor: Principal, changes: Iterable[Change]
            ) -> tuple[dt.datetime, str | None, list[dict[str, Any]]]:
    now = utcnow()
    request_id = _current_request_id()
    events = []
    for change in changes:
        before, after = to_jsonable(change.before), to_jsonable(change.after)
        entity_id = str(change.entity_id)
        events.append({
            "action": change.action, "entity_type": change.entity_type, "entity_id": entity_id,
            "before": before, "after": after, "content": content_hash(
                occurred_at=now, actor=actor.label, action=change.action,
                entity_type=change.entity_type, entity_id=entity_id, before=before,
                after=after, request_id=request_id)})
    return now, request_id, events


def record_many(session: Session, actor: Principal, changes: Iterable[Change]) -> list[int]:
    """Append several events in one go (bulk imports); returns their sequence numbers."""
    # Pending ORM changes go out before the chain's lock is taken, not while it is held.
    session.flush()
    now, request_id, events = _events(actor, changes)
    if not events:
        return []
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        (last,) = fetch_one(session, _APPEND, (  # type: ignore[misc]  # RETURNING: one row
            _ADVISORY_LOCK_KEY, now, actor.label, request_id, json.dumps(events)))
        return list(range(last - len(events) + 1, last + 1))
    head = connection.execute(_HEAD).first()
    rows = _linked((head.seq, head.hash) if head else None, now, actor, request_id, events)
    connection.execute(_INSERT, rows if len(rows) > 1 else rows[0])
    return [r["seq"] for r in rows]


def _linked(head: tuple[int, str] | None, now: dt.datetime, actor: Principal,
            request_id: str | None, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seq, prev_hash = head if head else (0, GENESIS_HASH)
    rows = []
    for event in events:
        seq += 1
        digest = link(seq, prev_hash, event.pop("content"))
        rows.append({**event, "seq": seq, "occurred_at": now, "actor": actor.label,
                     "request_id": request_id, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    return rows


def chain_rows(session: Session, actor: Principal, changes: Iterable[Change],
               head: tuple[int, str] | None) -> list[dict[str, Any]]:
    """SQLite: the `audit_events` rows that append `changes` after `head` (the last event's
    seq and hash, None for an empty chain), for a writer that read the head itself while
    holding the database lock (so nothing can have been appended since) and inserts them in
    its own statement. Pending ORM changes are flushed first, as by `record_many`."""
    session.flush()
    now, request_id, events = _events(actor, changes)
    return _linked(head, now, actor, request_id, events)


def record(
    session: Session, actor: Principal, action: str, entity_type: str, entity_id: Any,
    *, before: Any = None, after: Any = None,
) -> int:
    """Append one event for a change made in the current transaction."""
    return record_many(session, actor, [Change(action, entity_type, entity_id, before, after)])[0]


@dataclasses.dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment, signed: what an auditor keeps to detect later rewrites
    and truncation of every event up to `seq`."""

    seq: int
    hash: str
    signed_at: dt.datetime
    signature: str

    def message(self) -> bytes:
        return (f"ecovalue-audit-checkpoint|{self.seq}|{self.hash}|"
                f"{to_jsonable(self.signed_at)}").encode()


def _sign(key: str, checkpoint: Checkpoint) -> str:
    return hmac.new(key.encode(), checkpoint.message(), hashlib.sha256).hexdigest()


def checkpoint(session: Session, actor: Principal, key: str, *,
               now: dt.datetime | None = None) -> Checkpoint:
    """A signed checkpoint of the chain's current head (seq 0 for an empty chain)."""
    authorize(actor, "audit.read")
    head = session.execute(_HEAD).first()
    seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    unsigned = Checkpoint(seq, head_hash, (now or utcnow()).astimezone(dt.UTC), "")
    return dataclasses.replace(unsigned, signature=_sign(key, unsigned))


def verify_chain(session: Session, *, batch: int = 5000, against: Iterable[Checkpoint] = (),
                 key: str | None = None) -> ChainReport:
    """Recompute every hash in order; report the first event that does not fit. With
    checkpoints (and the key that signed them): also that each checkpoint is genuine and that
    the event at its seq still exists with the hash it had then."""
    pins = {}
    for pin in against:
        if key is None or not hmac.compare_digest(_sign(key, pin), pin.signature):
            return ChainReport(False, 0, pin.seq, "the checkpoint's signature does not match "
                                                  "this server's audit key")
        pins[pin.seq] = pin
    report = _walk(session, batch, pins)
    last = max(pins, default=0)
    if report.ok and report.checked < last:
        return ChainReport(False, report.checked, report.checked + 1,
                           f"events {report.checked + 1}-{last} of checkpoint {last} are "
                           "missing (the chain was truncated)")
    return report


def _walk(session: Session, batch: int, pins: Mapping[int, Checkpoint]) -> ChainReport:
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    stmt = sa.select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=batch)
    for event in session.scalars(stmt):
        if event.seq != expected_seq:
            return ChainReport(False, checked, expected_seq,
                               f"event {expected_seq} is missing (next stored is {event.seq})")
        if event.prev_hash != expected_prev:
            return ChainReport(False, checked, event.seq,
                               "prev_hash does not match the previous event's hash")
        digest = link(event.seq, event.prev_hash, content_hash(
            occurred_at=event.occurred_at, actor=event.actor, action=event.action,
            entity_type=event.entity_type, entity_id=event.entity_id, before=event.before,
            after=event.after, request_id=event.request_id))
        if digest != event.hash:
            return ChainReport(False, checked, event.seq,
                               "content does not match its hash (the row was altered)")
        pin = pins.get(event.seq)
        if pin is not None and pin.hash != event.hash:
            return ChainReport(False, checked, event.seq,
                               f"the hash differs from checkpoint {event.seq}'s: the chain was "
                               "rewritten up to here")
        expected_prev, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    return ChainReport(True, checked)


def list_events(
    session: Session, actor: Principal, *, actor_label: str | None = None,
    action: str | None = None, entity_type: str | None = None, entity_id: str | None = None,
    since: dt.datetime | None = None, until: dt.datetime | None = None,
) -> sa.Select:
    """A query of events matching the filters, newest first (to be paginated by the caller)."""
    authorize(actor, "audit.read")
    stmt = sa.select(AuditEvent)
    if actor_label:
        stmt = stmt.where(AuditEvent.actor.contains(actor_label, autoescape=True))
    if action:
        stmt = stmt.where(
            AuditEvent.action.startswith(action, autoescape=True)
            if action.endswith(".") else AuditEvent.action == action
        )
    if entity_type:
        stmt = stmt.where(AuditEvent.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if since:
        stmt = stmt.where(AuditEvent.occurred_at >= since)
    if until:
        stmt = stmt.where(AuditEvent.occurred_at < until)
    return stmt.order_by(AuditEvent.seq.desc())
