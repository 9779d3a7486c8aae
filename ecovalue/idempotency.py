"""Exactly-once POSTs: the `Idempotency-Key` header.

The first successful response to a key is stored in the same transaction as the change it
reports, so either both exist or neither does. A later request with the same key (per caller)
and the same method, path and body gets the stored response back and changes nothing; with a
different request it is refused with 409. Two identical requests racing each other: the second
one's insert of the key hits the unique index, its transaction is rolled back, and it replays
the first one's stored response.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, g, request
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from ecovalue.db import Base, BigIntPK, UTCDateTime, current_session, utcnow
from ecovalue.errors import BadRequest, ConcurrentUpdate, IdempotencyKeyReused

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
HEADER = "Idempotency-Key"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: whose key: `token:<id>` (keys of different callers never collide)
    scope: Mapped[str] = mapped_column(sa.String(40))
    #: the client's Idempotency-Key
    key: Mapped[str] = mapped_column(sa.String(200))
    #: SHA-256 of method, path, query and body of the first request
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    #: HTTP status of the stored response
    status_code: Mapped[int] = mapped_column(sa.Integer)
    #: media type of the stored response
    content_type: Mapped[str] = mapped_column(sa.String(120))
    #: Location header of the stored response, if any
    location: Mapped[str | None] = mapped_column(sa.String(500))
    #: the stored response body
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    #: when the first request was served (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.UniqueConstraint("scope", "key"),)


def _request_hash() -> str:
    h = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1")):
        h.update(part.encode())
        h.update(b"\0")
    h.update(request.get_data(cache=True))
    return h.hexdigest()


def _scope() -> str:
    principal = g.get("principal")
    return f"token:{principal.token_id}" if principal and principal.token_id else "anonymous"


_RECORDS = IdempotencyRecord.__table__
# Built once (every idempotent POST runs them): Core statements with bind parameters.
_FIND = sa.select(_RECORDS.c.request_hash, _RECORDS.c.status_code, _RECORDS.c.content_type,
                  _RECORDS.c.location, _RECORDS.c.body).where(
    _RECORDS.c.scope == sa.bindparam("scope"), _RECORDS.c.key == sa.bindparam("key"))
_INSERT_ONCE = {
    "postgresql": postgresql.insert(_RECORDS).on_conflict_do_nothing().returning(_RECORDS.c.id),
    "sqlite": sqlite.insert(_RECORDS).on_conflict_do_nothing().returning(_RECORDS.c.id),
}


def _find(session: Session, scope: str, key: str) -> sa.Row | None:
    return session.connection().execute(_FIND, {"scope": scope, "key": key}).first()


def _replay(record: Any, request_hash: str) -> Response:
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request; use a new key"
        )
    response = Response(record.body, status=record.status_code, content_type=record.content_type)
    if record.location:
        response.headers["Location"] = record.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def run_idempotent(view: Callable[[], Any]) -> Any:
    key = request.headers.get(HEADER)
    if key is None:
        return view()
    if not _KEY_RE.match(key):
        raise BadRequest("Idempotency-Key must be 1-200 printable ASCII characters",
                         errors=[{"location": "headers", "field": HEADER,
                                  "message": "1-200 printable ASCII characters"}])
    session = current_session()
    scope, request_hash = _scope(), _request_hash()
    existing = _find(session, scope, key)
    if existing is not None:
        return _replay(existing, request_hash)
    response = current_app.make_response(view())
    if response.status_code >= 400:
        return response
    values = dict(
        scope=scope, key=key, request_hash=request_hash, status_code=response.status_code,
        content_type=response.content_type or "application/json",
        location=response.headers.get("Location"), body=response.get_data(), created_at=utcnow(),
    )
    if not _insert_once(session, values):
        # A concurrent request with the same key committed first: drop our work, replay theirs.
        session.rollback()
        existing = _find(session, scope, key)
        if existing is None:  # pragma: no cover - the winner rolled back after all
            raise ConcurrentUpdate("a concurrent request with this key did not finish; retry")
        return _replay(existing, request_hash)
    return response


def _insert_once(session: Session, values: dict) -> bool:
    """Store the record unless the key is taken: one `INSERT ... ON CONFLICT DO NOTHING`
    (it waits for a concurrent insert of the same key to commit or roll back), instead of a
    savepoint around a plain INSERT, which costs two more round trips per request."""
    stmt = _INSERT_ONCE.get(session.get_bind().dialect.name)
    if stmt is not None:
        return session.connection().execute(stmt, values).first() is not None
    try:  # pragma: no cover - other databases
        with session.begin_nested():
            session.execute(_RECORDS.insert().values(**values))
    except sa_exc.IntegrityError:
        return False
    return True
