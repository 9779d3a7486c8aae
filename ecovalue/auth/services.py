"""Token lifecycle: create (secret shown once), list, revoke, authenticate."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit
from ecovalue.auth.models import ApiToken
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


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal of a presented token, or None if unknown, expired or revoked."""
    if not _TOKEN_RE.match(secret):
        return None
    token = session.scalar(sa.select(ApiToken).where(ApiToken.digest == digest_of(secret)))
    if token is None or not token.is_active(utcnow()):
        return None
    return Principal(
        role=Role(token.role), label=f"token:{token.id}:{token.name}", token_id=token.id,
        county_code=token.county_code, party_id=token.party_id,
    )


def _snapshot(token: ApiToken) -> dict:
    return audit.snapshot(token, exclude={"digest"})
