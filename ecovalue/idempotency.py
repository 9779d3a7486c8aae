"""Exactly-once POSTs: the `Idempotency-Key` header.

The first successful response to a key is stored in the same transaction as the change it
reports, so either both exist or neither does. A later request with the same key (per caller)
and the same method, path and body gets the stored response back and changes nothing; with a
different request it is refused with 409. The key is taken FIRST, before the view runs (a
record inserted with `ON CONFLICT DO NOTHING`, completed with the response at the end): two
requests racing with one key queue on the unique index before doing any work, and the second
replays the first one's response once it commits (or runs itself if the first failed). Taking
the key before any other lock, on every route, also keeps the key's lock out of deadlocks.

A route whose service is idempotent itself (it stores the key with what it creates and
rebuilds the first response on a replay, like the ledger's transactions) skips the stored
response: `run_service_idempotent` only checks the header, and the service `claim`s the key
here in the same transaction, so that keys stay unique per caller across every route: any
other route answers 409 for a claimed key, and the service answers 409 for a key stored here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, g, request
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.exceptions import HTTPException

from ecovalue.db import (
    Base,
    BigIntPK,
    UTCDateTime,
    current_session,
    insert_ignoring_conflicts,
    utcnow,
)
from ecovalue.errors import BadRequest, ConcurrentUpdate, IdempotencyKeyReused

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
HEADER = "Idempotency-Key"
#: the detail of every 409 for a reused key, whichever mechanism notices it
REUSED = "this Idempotency-Key was already used for a different request; use a new key"


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
_STORE = _RECORDS.update().where(
    _RECORDS.c.scope == sa.bindparam("r_scope"), _RECORDS.c.key == sa.bindparam("r_key")).values(
    {k: sa.bindparam(k) for k in ("status_code", "content_type", "location", "body")})
#: content type of a record whose request is being served (never seen by others: the same
#: transaction completes it with the response, or rolls it back)
_IN_PROGRESS = "application/vnd.ecovalue.idempotency-in-progress"


def _find(session: Session, scope: str, key: str) -> sa.Row | None:
    return session.connection().execute(_FIND, {"scope": scope, "key": key}).first()


def _replay(record: Any, request_hash: str) -> Response:
    if record.content_type == CLAIM or record.request_hash != request_hash:
        raise IdempotencyKeyReused(REUSED)
    if record.content_type == _IN_PROGRESS:  # pragma: no cover - stored only with its response
        raise ConcurrentUpdate("a concurrent request with this key did not finish; retry")
    response = Response(record.body, status=record.status_code, content_type=record.content_type)
    if record.location:
        response.headers["Location"] = record.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _checked_key() -> str | None:
    key = request.headers.get(HEADER)
    if key is not None and not _KEY_RE.match(key):
        raise BadRequest("Idempotency-Key must be 1-200 printable ASCII characters",
                         errors=[{"location": "headers", "field": HEADER,
                                  "message": "1-200 printable ASCII characters"}])
    return key


def run_idempotent(view: Callable[[], Any]) -> Any:
    key = _checked_key()
    if key is None:
        return view()
    session = current_session()
    scope, request_hash = _scope(), _request_hash()
    if not _insert_once(session, {
            "scope": scope, "key": key, "request_hash": request_hash, "status_code": 0,
            "content_type": _IN_PROGRESS, "location": None, "body": b"",
            "created_at": utcnow()}):
        # The key was used (a concurrent request with it has committed, if there was one).
        existing = _find(session, scope, key)
        if existing is None:  # pragma: no cover - only a committed record blocks the insert
            raise ConcurrentUpdate("a concurrent request with this key did not finish; retry")
        return _replay(existing, request_hash)
    response = current_app.make_response(view())
    if response.status_code >= 400:
        return response  # the request's rollback removes the record: the key is free again
    stored = session.connection().execute(_STORE, {
        "r_scope": scope, "r_key": key, "status_code": response.status_code,
        "content_type": response.content_type or "application/json",
        "location": response.headers.get("Location"), "body": response.get_data()})
    if stored.rowcount != 1:  # pragma: no cover - a view rolled the request's work back
        # never answer a success whose replay would run the request again
        raise ConcurrentUpdate("the Idempotency-Key record was lost; retry")
    return response


def _insert_once(session: Session, values: dict) -> bool:
    """Insert the record unless the key is taken: one `INSERT ... ON CONFLICT DO NOTHING`
    (it waits for a concurrent insert of the same key to commit or roll back), instead of a
    savepoint around a plain INSERT, which costs two more round trips per request."""
    stmt = insert_ignoring_conflicts(session, _RECORDS, returning=(_RECORDS.c.id,))
    return session.connection().execute(stmt, values).first() is not None


# --- keys stored by the service itself ----------------------------------------------------------

#: content type of a record that only claims a key for a service that stores and replays its
#: own responses: never replayed here; any other request with the key is refused (409)
CLAIM = "application/vnd.ecovalue.idempotency-claim"
RECORDS = _RECORDS
_KEY_TAKEN = sa.select(sa.literal(1)).where(
    _RECORDS.c.scope == sa.bindparam("scope"), _RECORDS.c.key == sa.bindparam("key"))
_CLAIM_COLUMNS = ("scope", "key", "request_hash", "status_code", "content_type", "location",
                  "body", "created_at")


def claim_values(scope: str, key: str, request_hash: str, now: dt.datetime) -> dict[str, Any]:
    """The record that claims `key` for a service (see `claim`)."""
    return {"scope": scope, "key": key, "request_hash": request_hash, "status_code": 201,
            "content_type": CLAIM, "location": None, "body": b"", "created_at": now}


def claim_from(source: sa.FromClause, *, scope: Any, key: Any, request_hash: Any,
               now: Any) -> sa.Insert:
    """PostgreSQL: `INSERT ... SELECT` of the claim once per row of `source` (a CTE of the
    service's own insert, say), `ON CONFLICT DO NOTHING RETURNING id`, so that a service
    claims its key in the statement that stores it. The arguments are SQL expressions."""
    row = claim_values("", "", "", utcnow())
    return insert_ignoring_conflicts("postgresql", _RECORDS, returning=(_RECORDS.c.id,)) \
        .from_select(_CLAIM_COLUMNS, sa.select(
            scope, key, request_hash, sa.literal(row["status_code"]),
            sa.literal(row["content_type"]), sa.null(),
            sa.literal(row["body"], sa.LargeBinary), now,
        ).select_from(source))


def claim(session: Session, scope: str, key: str, request_hash: str,
          now: dt.datetime) -> bool:
    """Claim `key` for a service that stores and replays its own responses, in the caller's
    transaction; False if the key is taken (a concurrent claim or stored response waits for
    the other transaction to finish first). Claim BEFORE taking other locks (as
    `run_idempotent` does), so that the key's lock never closes a cycle. A service on
    PostgreSQL may fold the claim into its first insert (`claim_from`), in one round trip."""
    return _insert_once(session, claim_values(scope, key, request_hash, now))


def key_taken(session: Session, scope: str, key: str) -> bool:
    """Whether a record (a stored response or a claim) holds `key` for `scope`."""
    return session.connection().execute(_KEY_TAKEN, {"scope": scope, "key": key}).first() \
        is not None


def run_service_idempotent(view: Callable[[], Any]) -> Any:
    """For a route whose service stores, replays and claims keys itself: check the header
    (400 like `run_idempotent`), and refuse a request the view could not even parse (400,
    422) with 409 when its key is taken, as `run_idempotent` would have (a taken key with an
    unparseable body cannot be a replay)."""
    key = _checked_key()
    if key is None:
        return view()
    try:
        return view()
    except HTTPException as exc:
        if exc.code not in (400, 422):
            raise
        session = current_session()
        session.rollback()
        if key_taken(session, _scope(), key):
            raise IdempotencyKeyReused(REUSED) from None
        raise
