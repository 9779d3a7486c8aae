"""Token lifecycle: create (secret shown once), list, revoke, authenticate.

Authentication caches, per worker, the principal of each token digest it has checked
(`TokenCache`), so that a request with a known token does not read `api_tokens`. What keeps
the cache honest is the *token generation* (`auth_state`, migration
e0004_auth_token_generation): a database trigger replaces it with a new random value in the
transaction that inserts, updates (revokes) or deletes any token, however that is done, and
every request reads it (one primary-key read; on PostgreSQL sent together with the
transaction's BEGIN, so it costs no round trip of its own). A cached principal is used only
under the generation it was cached under: a revocation is refused on the next request in
every worker, with no message between workers and no window. Expiry is checked on every
request against the cached `expires_at`; unknown tokens are never cached.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit
from ecovalue.auth.models import ApiToken, AuthState
from ecovalue.auth.policy import Principal, Role, authorize
from ecovalue.db import utcnow
from ecovalue.errors import NotFound, ValidationFailed

TOKEN_PREFIX = "evk_"
_TOKEN_RE = re.compile(r"^evk_[A-Za-z0-9_-]{20,100}$")

#: checks that a county code / party id exists; supplied by the composition root (ecovalue.app)
ScopeValidator = Callable[[Session, str | None, int | None], list[str]]


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  #: the only time the whole token is available


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: Session,
    actor: Principal,
    *,
    name: str,
    role: str,
    county_code: str | None = None,
    party_id: int | None = None,
    expires_at: dt.datetime | None = None,
    validate_scope: ScopeValidator | None = None,
) -> IssuedToken:
    authorize(actor, "token.manage")
    errors = []
    if role not in {r.value for r in Role}:
        errors.append({"field": "role", "message": f"unknown role {role!r}"})
    if not name or not name.strip():
        errors.append({"field": "name", "message": "a name is required"})
    if role == Role.REGISTRAR and not (county_code and re.fullmatch(r"\d{6}", county_code)):
        errors.append({"field": "county", "message": "a registrar needs a 6-digit county code"})
    if role != Role.REGISTRAR and county_code:
        errors.append({"field": "county", "message": "only registrars are scoped to a county"})
    if role == Role.TRADER and party_id is None:
        errors.append({"field": "party", "message": "a trader needs a party id"})
    if role != Role.TRADER and party_id is not None:
        errors.append({"field": "party", "message": "only traders are scoped to a party"})
    if expires_at is not None and expires_at <= utcnow():
        errors.append({"field": "expires_at", "message": "expiry must be in the future"})
    if not errors and validate_scope is not None:
        errors.extend({"field": "scope", "message": m}
                      for m in validate_scope(session, county_code, party_id))
    if errors:
        raise ValidationFailed("invalid token request", errors=errors)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name.strip(), role=role, county_code=county_code, party_id=party_id,
        display_prefix=secret[:12], digest=digest_of(secret), expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    audit.record(session, actor, "token.create", "api_token", token.id, after=_snapshot(token))
    return IssuedToken(token=token, secret=secret)


def list_tokens(session: Session, actor: Principal) -> list[ApiToken]:
    authorize(actor, "token.manage")
    return list(session.scalars(sa.select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, actor: Principal, token_id: int) -> ApiToken:
    authorize(actor, "token.manage")
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is None:
        before = _snapshot(token)
        token.revoked_at = utcnow()
        session.flush()
        audit.record(session, actor, "token.revoke", "api_token", token.id,
                     before=before, after=_snapshot(token))
    return token


_TOKENS = ApiToken.__table__
_STATE = AuthState.__table__
#: a token by digest, with what a principal needs (built once)
_TOKEN_BY_DIGEST = sa.select(
    _TOKENS.c.id, _TOKENS.c.name, _TOKENS.c.role, _TOKENS.c.county_code, _TOKENS.c.party_id,
    _TOKENS.c.expires_at, _TOKENS.c.revoked_at).where(_TOKENS.c.digest == sa.bindparam("digest"))
#: the token generation, at the driver (no statement compilation per request)
_GENERATION_SQL = "SELECT token_generation FROM auth_state WHERE id = 1"


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    expires_at: dt.datetime | None
    generation: int
    cached_at: float


class TokenCache:
    """One worker's cache of token digest -> principal (see the module's docstring): valid
    only under the token generation it was filled under, for at most `ttl` seconds, at most
    `size` entries (then it starts afresh). Held by the app (`create_app`), so that two apps
    in one process behave like two workers."""

    def __init__(self, *, ttl: float = 300.0, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._entries: dict[str, _Entry] = {}
        self.hits = self.misses = 0

    def get(self, digest: str, generation: int | None, now: dt.datetime) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or generation is None or entry.generation != generation \
                or time.monotonic() - entry.cached_at > self.ttl:
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            self._entries.pop(digest, None)
            return None
        self.hits += 1
        return entry.principal

    def put(self, digest: str, generation: int | None, principal: Principal,
            expires_at: dt.datetime | None) -> None:
        self.misses += 1
        if generation is None:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[digest] = _Entry(principal, expires_at, generation, time.monotonic())

    def clear(self) -> None:
        self._entries.clear()


def token_generation(session: Session) -> int | None:
    """The current token generation (None if `auth_state` has no row: caches are not used),
    read in the session's transaction; on SQLite, when the session has not begun one, read
    before it begins (`_sqlite_token_generation`)."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite" and not session.in_transaction() \
            and isinstance(getattr(bind, "pool", None), sa.pool.QueuePool):
        return _sqlite_token_generation(bind)
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        return _pg_token_generation(driver)
    if connection.dialect.name == "sqlite":
        cursor = driver.cursor()
        try:
            row = cursor.execute(_GENERATION_SQL).fetchone()
        finally:
            cursor.close()
        return None if row is None else int(row[0])
    row = connection.execute(sa.select(_STATE.c.token_generation)  # pragma: no cover
                             .where(_STATE.c.id == 1)).first()
    return None if row is None else int(row[0])  # pragma: no cover


def _sqlite_token_generation(bind: Any) -> int | None:
    """SQLite: the generation read on a pooled connection of its own, outside any
    transaction (one autocommit SELECT: the last committed value), so that a write request's
    session does not take the database write lock (BEGIN IMMEDIATE, held to the commit) at
    authentication, only at its first statement: its argument parsing and the rest of the
    work before that statement run beside other writers instead of holding them up. The
    guarantee is PostgreSQL's: there the read is in the request's transaction, but under READ
    COMMITTED a revocation that commits after it is not seen by the request either; every
    request that starts after the revocation committed reads the new generation. (Only with
    a file database's queue pool: an in-memory database's single connection is shared with
    the session, whose transaction the pool's reset on return would roll back.)"""
    raw = bind.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            row = cursor.execute(_GENERATION_SQL).fetchone()
        finally:
            cursor.close()
    finally:
        raw.close()
    return None if row is None else int(row[0])


def _pg_token_generation(driver: Any) -> int | None:
    """PostgreSQL: the request's first statement. psycopg would send its BEGIN in a round
    trip of its own; when the transaction has not begun and uses the server's defaults (a
    plain BEGIN), BEGIN and the read go as one simple query, in one round trip."""
    from psycopg import errors, pq

    pgconn = driver.pgconn
    if pgconn.transaction_status != pq.TransactionStatus.IDLE or driver.autocommit or any(
            v is not None for v in (driver.isolation_level, driver.read_only,
                                    driver.deferrable)):
        try:
            with driver.cursor() as cursor:
                cursor.execute(_GENERATION_SQL)
                row = cursor.fetchone()
        except driver.Error as exc:
            raise sa.exc.DBAPIError.instance(_GENERATION_SQL, (), exc, driver.Error) from exc
        return None if row is None else int(row[0])
    result = pgconn.exec_(b"BEGIN; " + _GENERATION_SQL.encode())
    if result.status != pq.ExecStatus.TUPLES_OK:
        error = errors.error_from_result(result, encoding=driver.info.encoding)
        raise sa.exc.DBAPIError.instance(_GENERATION_SQL, (), error, driver.Error) from error
    return int(result.get_value(0, 0)) if result.ntuples else None


def authenticate(session: Session, secret: str, cache: TokenCache | None = None
                 ) -> Principal | None:
    """The principal of a presented token, or None if unknown, expired or revoked. With a
    `cache`: the cached principal when the token generation has not changed since it was
    cached (one primary-key read), else the token's row."""
    if not _TOKEN_RE.match(secret):
        return None
    digest = digest_of(secret)
    now = utcnow()
    generation = token_generation(session) if cache is not None else None
    if cache is not None:
        principal = cache.get(digest, generation, now)
        if principal is not None:
            return principal
    row = session.connection().execute(_TOKEN_BY_DIGEST, {"digest": digest}).first()
    if row is None or row.revoked_at is not None or (
            row.expires_at is not None and row.expires_at <= now):
        return None
    principal = Principal(
        role=Role(row.role), label=f"token:{row.id}:{row.name}", token_id=row.id,
        county_code=row.county_code, party_id=row.party_id,
    )
    if cache is not None:
        cache.put(digest, generation, principal, row.expires_at)
    return principal


def _snapshot(token: ApiToken) -> dict:
    return audit.snapshot(token, exclude={"digest"})
