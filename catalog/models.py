"""Catalog tables: regions, parties (主体)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecovalue.db import Base, BigIntPK, UTCDateTime, utcnow

REGION_LEVELS = ("prefecture", "county", "township", "village")
PARTY_KINDS = ("government", "village_collective", "cooperative", "household", "enterprise")


class Region(Base):
    """An administrative region: prefecture, county (GB/T 2260), township (9-digit statistical
    code) or village (12-digit)."""

    __tablename__ = "regions"

    #: national code: 6 digits down to county, 9 for a township, 12 for a village
    code: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    #: prefecture, county, township or village
    level: Mapped[str] = mapped_column(sa.String(12))
    #: Chinese name, e.g. 望谟县
    name_zh: Mapped[str] = mapped_column(sa.String(100))
    #: English / pinyin name, e.g. Wangmo
    name_en: Mapped[str | None] = mapped_column(sa.String(100))
    #: the region it belongs to; NULL only for the prefecture
    parent_code: Mapped[str | None] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    #: pilot programme the region takes part in, free text (e.g. "ecological-product pilot")
    pilot: Mapped[str | None] = mapped_column(sa.String(100))
    #: when the row was created (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Region | None] = relationship(remote_side=[code])

    __table_args__ = (
        sa.CheckConstraint(
            "level in ('prefecture','county','township','village')", name="level"
        ),
    )


class Party(Base):
    """A party (主体) that can hold rights, money or credits: government body, village
    collective, cooperative, household or enterprise."""

    __tablename__ = "parties"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: government, village_collective, cooperative, household or enterprise
    kind: Mapped[str] = mapped_column(sa.String(24), index=True)
    #: Chinese name (for a household: the head of household)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: English name, if any
    name_en: Mapped[str | None] = mapped_column(sa.String(200))
    #: where it is registered or lives; decides which county's registrar manages it
    region_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    #: 18-character unified social credit code (enterprises must have one; others may)
    credit_code: Mapped[str | None] = mapped_column(sa.String(18), unique=True)
    #: enterprise sector, e.g. thermal_power, trader, tourism; free vocabulary
    sector: Mapped[str | None] = mapped_column(sa.String(40))
    #: household: ID-card number, encrypted (ecovalue.protect)
    id_number_encrypted: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    #: household: keyed HMAC of the ID-card number, for uniqueness without decryption
    id_number_index: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    #: household: masked ID-card number for display, e.g. 522***********123X
    id_number_masked: Mapped[str | None] = mapped_column(sa.String(18))
    #: household: bank account number, encrypted
    bank_account_encrypted: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    #: household: masked bank account for display, e.g. ************1234
    bank_account_masked: Mapped[str | None] = mapped_column(sa.String(40))
    #: household: bank name (not personal data on its own)
    bank_name: Mapped[str | None] = mapped_column(sa.String(100))
    #: free attributes (contact office, legal representative role, ...); no personal data
    attributes: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    #: optimistic version, +1 on every change
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: last change (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    region: Mapped[Region] = relationship()

    __table_args__ = (
        sa.CheckConstraint(
            "kind in ('government','village_collective','cooperative','household','enterprise')",
            name="kind",
        ),
        sa.CheckConstraint("kind <> 'enterprise' OR credit_code IS NOT NULL",
                           name="enterprise_credit_code"),
        sa.CheckConstraint("kind = 'household' OR id_number_index IS NULL",
                           name="id_number_only_households"),
    )
