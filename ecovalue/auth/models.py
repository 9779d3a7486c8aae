"""API tokens: opaque bearer secrets, stored only as a SHA-256 digest."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ecovalue.db import Base, UTCDateTime, utcnow


class ApiToken(Base):
    __tablename__ = "api_tokens"

    #: surrogate key; the audit trail names a token as `token:<id>`
    id: Mapped[int] = mapped_column(primary_key=True)
    #: who holds it (person or system), free text chosen by the admin
    name: Mapped[str] = mapped_column(sa.String(200))
    #: one of ecovalue.auth.Role
    role: Mapped[str] = mapped_column(sa.String(20))
    #: registrar scope: the 6-digit county code; NULL for other roles
    county_code: Mapped[str | None] = mapped_column(sa.String(6))
    #: trader scope: the party (catalog) the token acts for; NULL for other roles
    party_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: first characters of the token, shown in listings so a holder can tell tokens apart
    display_prefix: Mapped[str] = mapped_column(sa.String(16))
    #: hex SHA-256 of the whole token; the token itself is never stored
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: after this instant (UTC) the token is refused; NULL = no expiry
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: when it was revoked (UTC); a revoked token is refused forever
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint(
            "role in ('admin','registrar','verifier','trader','finance','auditor')", name="role"
        ),
        sa.CheckConstraint("role <> 'registrar' OR county_code IS NOT NULL",
                           name="registrar_county"),
        sa.CheckConstraint("role <> 'trader' OR party_id IS NOT NULL", name="trader_party"),
    )

    def is_active(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AuthState(Base):
    """One row (id 1) whose `token_generation` changes whenever any token row is inserted,
    updated or deleted (a database trigger does it, in the same transaction, whoever makes the
    change: `revoke_token`, the CLI, or SQL by hand). Each worker's token cache is valid only
    for the generation it was filled under (`ecovalue.auth.services.TokenCache`), so a
    revocation is seen by the next request of every worker. No row: the caches are not used."""

    __tablename__ = "auth_state"

    #: always 1
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: a random 63-bit value, new on every change of `api_tokens` (random, not a counter, so
    #: that a state rebuilt after its row was deleted never repeats an earlier generation)
    token_generation: Mapped[int] = mapped_column(sa.BigInteger)
