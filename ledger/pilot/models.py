"""Tables of the thermal-power CO2 pilot (火电企业排放二氧化碳与森林生态补偿机制试点).

Versioned emission-factor tables, the pilot rule of each year, the plants' emission reports,
the obligation each verified report gives, and the settlements against it. Money and credits
never live here: a fee is a ledger transaction (`ledger.core`), a retirement a carbon-registry
retirement; a settlement row names the one it was settled by.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ecovalue.db import Base, BigInt, BigIntPK, JSONDocument, UTCDateTime, utcnow
from ledger.pilot.emissions import FACTOR_STATUSES, METHODS

REPORT_STATUSES = ("filed", "verified", "rejected")
REPORT_SOURCES = ("json", "csv", "xlsx")
SETTLEMENT_KINDS = ("retirement", "fee")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({','.join(repr(v) for v in values)})"


def _party() -> sa.ForeignKey:
    return sa.ForeignKey("parties.id")


class PilotFactorTable(Base):
    """One version of the emission-factor table: published as uploaded, immutable; a report
    records the version and content hash it computed with."""

    __tablename__ = "pilot_factor_tables"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: version label, unique: "reference" (the shipped table) or the uploader's, e.g. "2025-1"
    version: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: what the version is (source, approval)
    title: Mapped[str] = mapped_column(sa.String(200))
    #: remarks
    note: Mapped[str | None] = mapped_column(sa.String(1000))
    #: SHA-256 of the rows (canonical JSON, ledger.pilot.emissions.FactorTable.content_sha256)
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    #: number of rows
    row_count: Mapped[int] = mapped_column(sa.Integer)
    #: upload time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who uploaded it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))


class PilotFactor(Base):
    """One factor of one table version (value kept as the decimal text it was written as)."""

    __tablename__ = "pilot_factors"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the table version
    table_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("pilot_factor_tables.id"),
                                          index=True)
    #: factor name, e.g. fossil_power, raw_coal_average_ncv
    factor: Mapped[str] = mapped_column(sa.String(80))
    #: the year the value is for; NULL for a value without a year (used for every year)
    year: Mapped[int | None] = mapped_column(sa.Integer)
    #: the value, exact decimal text (e.g. "0.8273")
    value: Mapped[str] = mapped_column(sa.String(40))
    #: unit, e.g. tCO2/MWh, GJ/t, tC/GJ, fraction
    unit: Mapped[str] = mapped_column(sa.String(40))
    #: published or to-confirm (a value still to be confirmed by the authority)
    status: Mapped[str] = mapped_column(sa.String(12))
    #: where the value comes from
    source: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (sa.CheckConstraint(_in("status", FACTOR_STATUSES), name="status"),)


class PilotRule(Base):
    """The pilot's rule of one compliance year: what share of verified emissions a plant
    compensates, at what fee, with which credits, by when, into which fund."""

    __tablename__ = "pilot_rules"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the compliance year (emissions of that calendar year)
    year: Mapped[int] = mapped_column(sa.Integer, unique=True)
    #: share of verified emissions to compensate, basis points (100 bp = 1 %)
    share_bp: Mapped[int] = mapped_column(sa.Integer)
    #: compensation fee per tonne not covered by retired credits, fen per tCO2
    fee_fen_per_tco2: Mapped[int] = mapped_column(sa.BigInteger)
    #: eligible credits come from projects in this region (a prefecture or county code)
    eligible_region_code: Mapped[str] = mapped_column(sa.String(12))
    #: eligible methodologies of the credits' projects
    eligible_methodologies: Mapped[list] = mapped_column(JSONDocument)
    #: earliest eligible vintage year
    vintage_from: Mapped[int] = mapped_column(sa.Integer)
    #: latest eligible vintage year
    vintage_to: Mapped[int] = mapped_column(sa.Integer)
    #: last day (local) to file the year's emission report
    report_deadline: Mapped[dt.date] = mapped_column(sa.Date)
    #: last day (local) to settle the year's obligation
    settlement_deadline: Mapped[dt.date] = mapped_column(sa.Date)
    #: ledger account (code) of the forest compensation fund the fees go to
    fund_account_code: Mapped[str] = mapped_column(sa.String(100))
    #: remarks (the document that sets the rule)
    note: Mapped[str | None] = mapped_column(sa.String(1000))
    #: change counter (every update increments it)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: last change time (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who changed it last (actor label)
    updated_by: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.CheckConstraint("share_bp >= 0 AND share_bp <= 10000", name="share_bp"),
        sa.CheckConstraint("fee_fen_per_tco2 > 0", name="fee"),
        sa.CheckConstraint("vintage_from <= vintage_to", name="vintage_window"),
    )


class PilotEmissionReport(Base):
    """A plant's emissions of one year, as filed and (by someone else) verified."""

    __tablename__ = "pilot_emission_reports"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the plant (an enterprise party)
    plant_party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: the calendar year of the emissions
    year: Mapped[int] = mapped_column(sa.Integer, index=True)
    #: combustion (fuels) or generation (MWh x factor)
    method: Mapped[str] = mapped_column(sa.String(12))
    #: filed, verified or rejected
    status: Mapped[str] = mapped_column(sa.String(12), default="filed")
    #: the factor table version computed with
    factor_table_id: Mapped[int] = mapped_column(BigInt,
                                                 sa.ForeignKey("pilot_factor_tables.id"))
    #: its version label (copied for reading)
    factor_table_version: Mapped[str] = mapped_column(sa.String(40))
    #: its content hash at filing
    factor_table_sha256: Mapped[str] = mapped_column(sa.String(64))
    #: the computed lines: inputs, the values used and where each came from, exact tCO2
    lines: Mapped[list] = mapped_column(JSONDocument)
    #: exact total, six decimals, tCO2 (for reading; the rounding is done on the exact sum)
    emissions_exact_tco2: Mapped[str] = mapped_column(sa.String(60))
    #: total rounded once to whole tonnes, half up, tCO2
    emissions_tco2: Mapped[int] = mapped_column(sa.BigInteger)
    #: how it was filed: json, csv or xlsx
    source: Mapped[str] = mapped_column(sa.String(8))
    #: uploaded file name, if any
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    #: the plant's remarks
    note: Mapped[str | None] = mapped_column(sa.String(1000))
    #: filing time (UTC)
    filed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who filed (actor label)
    filed_by: Mapped[str] = mapped_column(sa.String(250))
    #: verification or rejection time (UTC)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who verified or rejected (actor label), never the filer
    reviewed_by: Mapped[str | None] = mapped_column(sa.String(250))
    #: the verifier's remarks (required for a rejection)
    review_note: Mapped[str | None] = mapped_column(sa.String(1000))

    __table_args__ = (
        sa.CheckConstraint(_in("method", METHODS), name="method"),
        sa.CheckConstraint(_in("status", REPORT_STATUSES), name="status"),
        sa.CheckConstraint(_in("source", REPORT_SOURCES), name="source"),
        sa.CheckConstraint("emissions_tco2 >= 0", name="emissions"),
        # one live (filed or verified) report per plant and year; rejected ones stay as history
        sa.Index("uq_pilot_emission_reports_live", "plant_party_id", "year", unique=True,
                 postgresql_where=sa.text("status <> 'rejected'"),
                 sqlite_where=sa.text("status <> 'rejected'")),
    )


class PilotObligation(Base):
    """What a plant owes for a year, fixed when its report is verified (the rule's share and
    fee copied, so a later rule change never moves an existing obligation); the settled
    totals are kept here, under a row lock, beside the settlements that make them up."""

    __tablename__ = "pilot_obligations"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: human reference, PO-<year>-<plant party id>, named by retirements and fee payments
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: the plant
    plant_party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: the compliance year
    year: Mapped[int] = mapped_column(sa.Integer, index=True)
    #: the verified report it comes from
    report_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("pilot_emission_reports.id"),
                                           unique=True)
    #: the rule it was computed by
    rule_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("pilot_rules.id"))
    #: verified emissions, tCO2
    emissions_tco2: Mapped[int] = mapped_column(sa.BigInteger)
    #: the rule's share at creation, basis points
    share_bp: Mapped[int] = mapped_column(sa.Integer)
    #: tonnes to compensate: emissions x share, rounded once, half up (tCO2)
    obligation_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: the rule's fee at creation, fen per tCO2
    fee_fen_per_tco2: Mapped[int] = mapped_column(sa.BigInteger)
    #: the rule's settlement deadline at creation (local date)
    settlement_deadline: Mapped[dt.date] = mapped_column(sa.Date)
    #: tonnes settled by retired credits so far (tCO2e)
    retired_t: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: tonnes settled by the fee so far (tCO2)
    fee_t: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: fee paid into the fund so far (fen) = fee_t x fee_fen_per_tco2
    paid_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: the day (local) the obligation was fully settled, if it is
    settled_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: creation time (UTC): the report's verification
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("plant_party_id", "year"),
        sa.CheckConstraint("retired_t >= 0 AND fee_t >= 0 AND retired_t + fee_t <= obligation_t",
                           name="not_over_settled"),
        sa.CheckConstraint("paid_fen = fee_t * fee_fen_per_tco2", name="paid"),
    )


class PilotSettlement(Base):
    """One part of a settlement: credits retired against the obligation, or the fee paid
    for some of its tonnes into the fund."""

    __tablename__ = "pilot_settlements"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the obligation settled
    obligation_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("pilot_obligations.id"),
                                               index=True)
    #: the plant (copied for queries)
    plant_party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: retirement or fee
    kind: Mapped[str] = mapped_column(sa.String(12))
    #: tonnes this part settles (tCO2e)
    quantity_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: fee paid, fen (0 for a retirement)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: the account debited: the carbon account of the credits, or the plant's CNY account
    from_account_code: Mapped[str] = mapped_column(sa.String(100))
    #: the credits' batch (ledger asset code), for a retirement
    batch_asset_code: Mapped[str | None] = mapped_column(sa.String(40))
    #: the credits' vintage year, for a retirement
    vintage_year: Mapped[int | None] = mapped_column(sa.Integer)
    #: the registry's retirement certificate, for a retirement
    certificate_number: Mapped[str | None] = mapped_column(sa.String(40), unique=True)
    #: the ledger transaction that moved the credits or the money
    ledger_transaction_id: Mapped[int] = mapped_column(BigInt)
    #: settlement date (local)
    settled_on: Mapped[dt.date] = mapped_column(sa.Date)
    #: settlement time (UTC)
    settled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who settled (actor label)
    settled_by: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.CheckConstraint(_in("kind", SETTLEMENT_KINDS), name="kind"),
        sa.CheckConstraint("quantity_t > 0", name="quantity"),
        sa.CheckConstraint("(kind = 'fee') = (amount_fen > 0)", name="amount"),
    )
