"""Tables of ecological compensation: assessed sections, agreements (one row per version,
their terms as a JSON document), monitored values, settlements and their payments.

Money moves only through the ledger core (`ledger.core`); a payment row records the pending
ledger transfer that carries it and the transaction that resolved it.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ecovalue.db import Base, BigInt, BigIntPK, JSONDocument, UTCDateTime, utcnow

AGREEMENT_STATUSES = ("draft", "in_force", "superseded", "terminated")
ASSESSMENT_SOURCES = ("entered", "imported", "catalog")
SETTLEMENT_STATUSES = ("prepared", "approved", "rejected")
PAYMENT_STATUSES = ("pending", "posted", "voided")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({','.join(repr(v) for v in values)})"


class CompensationSection(Base):
    """A place whose monitored values an agreement's conditions are assessed on: a river's
    assessment cross-section (考核断面), or an area for forest coverage or GEP."""

    __tablename__ = "compensation_sections"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: stable code, e.g. QINGSHUIPU (capital letters, digits, '-')
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: Chinese name, e.g. 清水铺断面
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: English name, if any
    name_en: Mapped[str | None] = mapped_column(sa.String(200))
    #: river or water body, if a water section (e.g. 赤水河)
    river: Mapped[str | None] = mapped_column(sa.String(100))
    #: the region it lies in (GB/T 2260 code, via the catalog)
    region_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    #: catalog product whose forest-coverage monitoring records this section reads, if any
    catalog_product_id: Mapped[int | None] = mapped_column(sa.ForeignKey("products.id"))
    #: remarks (monitoring station, coordinates, competent authority)
    note: Mapped[str | None] = mapped_column(sa.String(500))
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who registered it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))


class CompensationAgreement(Base):
    """One version of a compensation agreement. The terms (kind, parties and shares, amount,
    periods, schedule, conditions and clearing rules) are a JSON document validated by
    `ledger.compensation.terms`; a draft may be replaced, a version in force never changes
    (its SHA-256 is kept and rechecked by `ecovalue ledger verify`)."""

    __tablename__ = "compensation_agreements"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the agreement's code, shared by its versions, e.g. CHISHUI-2018
    code: Mapped[str] = mapped_column(sa.String(40), index=True)
    #: version number, 1, 2, ... per code
    version: Mapped[int] = mapped_column(sa.Integer)
    #: vertical, horizontal, market or thermal_power_fund (copied from the terms)
    kind: Mapped[str] = mapped_column(sa.String(24))
    #: draft, in_force, superseded (by a later version) or terminated
    status: Mapped[str] = mapped_column(sa.String(12), default="draft")
    #: the code while this version is in force, else NULL: one version in force per code
    in_force_code: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    #: Chinese name (copied from the terms)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: the whole amount over all periods, fen (copied from the terms)
    amount_fen: Mapped[int] = mapped_column(BigInt)
    #: the terms document
    terms: Mapped[dict] = mapped_column(JSONDocument)
    #: SHA-256 of the canonical terms, fixed when the version enters into force
    terms_sha256: Mapped[str] = mapped_column(sa.String(64))
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who drafted it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: last change of a draft (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when it entered into force (UTC)
    in_force_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who put it into force (actor label)
    in_force_by: Mapped[str | None] = mapped_column(sa.String(250))
    #: when it stopped being in force (superseded or terminated, UTC)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("code", "version"),
        sa.CheckConstraint(_in("status", AGREEMENT_STATUSES), name="status"),
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        sa.CheckConstraint("(status = 'in_force') = (in_force_code IS NOT NULL)",
                           name="in_force_code"),
    )


class CompensationAssessment(Base):
    """A monitored value of an indicator at a section for a period. Append-only: a correction
    is a new row, and the latest row of (section, period, indicator) counts; a settlement
    records the rows it used, so its numbers never change afterwards."""

    __tablename__ = "compensation_assessments"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the section
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("compensation_sections.id"))
    #: assessment period, e.g. 2019 or 2019-Q3
    period: Mapped[str] = mapped_column(sa.String(7))
    #: water_quality_class, forest_coverage_percent or gep_change_percent
    indicator: Mapped[str] = mapped_column(sa.String(40))
    #: the value in the indicator's unit (water-quality class as 1..6 for I..V, 劣V)
    value: Mapped[float] = mapped_column(sa.Float)
    #: entered (API, CLI), imported (CSV/XLSX) or catalog (monitoring records)
    origin: Mapped[str] = mapped_column(sa.String(12))
    #: where the value comes from: monitoring report, published valuation run, file name
    source: Mapped[str | None] = mapped_column(sa.String(300))
    #: the catalog monitoring record it was read from, if any
    catalog_record_id: Mapped[int | None] = mapped_column(BigInt)
    #: entry time (UTC)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who entered it (actor label)
    recorded_by: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.Index("ix_compensation_assessments_key", "section_id", "period", "indicator"),
        sa.CheckConstraint(_in("origin", ASSESSMENT_SOURCES), name="origin"),
    )


class CompensationSettlement(Base):
    """The settlement of one agreement for one period: the conditions evaluated, each party's
    contribution and allocation, and the netted payments, prepared by one person and approved
    (the payments posted) or rejected (voided) by another."""

    __tablename__ = "compensation_settlements"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the agreement version it was cleared under
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("compensation_agreements.id"),
                                              index=True)
    #: the agreement's code (for lookups across versions)
    agreement_code: Mapped[str] = mapped_column(sa.String(40))
    #: the period settled
    period: Mapped[str] = mapped_column(sa.String(7))
    #: "<code>/<period>" while prepared or approved, NULL once rejected: one live settlement
    #: per agreement and period, so settling twice pays once
    live_key: Mapped[str | None] = mapped_column(sa.String(60), unique=True)
    #: prepared, approved or rejected
    status: Mapped[str] = mapped_column(sa.String(12), default="prepared")
    #: the period's amount under the schedule, fen
    amount_fen: Mapped[int] = mapped_column(BigInt)
    #: the total of the netted payments, fen
    payments_total_fen: Mapped[int] = mapped_column(BigInt)
    #: the statement: evaluations, positions, adjustments, transfers, assessment ids used
    statement: Mapped[dict] = mapped_column(JSONDocument)
    #: preparation time (UTC)
    prepared_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who prepared it (actor label); never its approver
    prepared_by: Mapped[str] = mapped_column(sa.String(250))
    #: approval or rejection time (UTC)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who approved or rejected it (actor label)
    decided_by: Mapped[str | None] = mapped_column(sa.String(250))
    #: the reason given for a rejection, or a note with the approval
    decision_note: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        sa.Index("ix_compensation_settlements_period", "agreement_code", "period"),
        sa.CheckConstraint(_in("status", SETTLEMENT_STATUSES), name="status"),
        sa.CheckConstraint("(status = 'rejected') = (live_key IS NULL)", name="live_key"),
    )


class CompensationPayment(Base):
    """One netted payment of a settlement: a pending ledger transfer from the payer's account
    to the payee's, posted on approval or voided on rejection."""

    __tablename__ = "compensation_payments"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the settlement
    settlement_id: Mapped[int] = mapped_column(sa.ForeignKey("compensation_settlements.id"),
                                               index=True)
    #: 1, 2, ... within the settlement
    seq: Mapped[int] = mapped_column(sa.Integer)
    #: the paying party's key in the agreement
    payer_key: Mapped[str] = mapped_column(sa.String(30))
    #: the paying party
    payer_party_id: Mapped[int] = mapped_column(sa.ForeignKey("parties.id"))
    #: the receiving party's key in the agreement
    payee_key: Mapped[str] = mapped_column(sa.String(30))
    #: the receiving party
    payee_party_id: Mapped[int] = mapped_column(sa.ForeignKey("parties.id"))
    #: ledger account debited (code)
    from_account: Mapped[str] = mapped_column(sa.String(100))
    #: ledger account credited (code)
    to_account: Mapped[str] = mapped_column(sa.String(100))
    #: amount, fen
    amount_fen: Mapped[int] = mapped_column(BigInt)
    #: pending, posted or voided
    status: Mapped[str] = mapped_column(sa.String(8), default="pending")
    #: the pending ledger transaction carrying it
    pending_tx_id: Mapped[int] = mapped_column(BigInt)
    #: the ledger transaction that posted or voided it
    resolution_tx_id: Mapped[int | None] = mapped_column(BigInt)

    __table_args__ = (
        sa.UniqueConstraint("settlement_id", "seq"),
        sa.CheckConstraint(_in("status", PAYMENT_STATUSES), name="status"),
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
    )
