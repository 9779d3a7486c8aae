"""Tables of the forest-carbon registry.

The ledger core holds the balances (one `carbon_credit` asset per issued batch, integer
tonnes); these tables hold what a registry adds: projects and their parcels, parameter sets,
monitoring reports, batches with their serial range, and the serial blocks each account holds
(`carbon_blocks`), written in the same unit of work as the ledger posting that moves them.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ecovalue.db import Base, BigInt, BigIntPK, JSONDocument, UTCDateTime, utcnow

PARAMETER_SET_STATUSES = ("draft", "published")
CONFIRMATIONS = ("to-confirm", "confirmed")
METHODOLOGY_CODES = ("afforestation", "forest_management", "single_tree")
PROJECT_STATUSES = ("draft", "validated", "registered", "active", "closed", "rejected",
                    "withdrawn")
REPORT_SOURCES = ("catalog", "inventory_plots", "tree_registry")
REPORT_STATUSES = ("submitted", "verified", "rejected", "issued")
#: what an account's credits are: tradable (holding, share-of-proceeds fee), in the buffer
#: pool, retired, or cancelled (returned to the issuer's external account)
ACCOUNT_ROLES = ("tradable", "buffer", "retired", "cancelled")
EVENT_KINDS = ("issuance", "transfer", "retirement", "cancellation", "reversal")
REVERSAL_CAUSES = ("fire", "illegal_felling", "pest", "storm", "other")
RETIREMENT_PURPOSES = ("thermal_power_pilot", "compliance", "voluntary", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({','.join(repr(v) for v in values)})"


def _party() -> sa.ForeignKey:
    return sa.ForeignKey("parties.id")


class CarbonParameterSet(Base):
    """A versioned set of species parameters. Drafts are edited; a published set is
    immutable and is what projects and reports compute with."""

    __tablename__ = "carbon_parameter_sets"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: version label, unique, e.g. "reference" or "2025-wangmo-1"
    version: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: what the set is for
    title: Mapped[str] = mapped_column(sa.String(200))
    #: draft or published
    status: Mapped[str] = mapped_column(sa.String(12), default="draft")
    #: the set it was copied from, if any
    based_on_version: Mapped[str | None] = mapped_column(sa.String(40))
    #: remarks (approval document, scope)
    note: Mapped[str | None] = mapped_column(sa.String(1000))
    #: SHA-256 of the species rows, fixed at publication
    content_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who created it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: publication time (UTC), NULL for a draft
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who published it (actor label)
    published_by: Mapped[str | None] = mapped_column(sa.String(250))

    __table_args__ = (sa.CheckConstraint(_in("status", PARAMETER_SET_STATUSES), name="status"),)


class CarbonSpeciesParameter(Base):
    """The factors of one species in one parameter set."""

    __tablename__ = "carbon_species_parameters"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the set
    set_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_parameter_sets.id"),
                                        index=True)
    #: ASCII species code, e.g. cunninghamia
    species_code: Mapped[str] = mapped_column(sa.String(40))
    #: Chinese name, e.g. 杉木
    name_zh: Mapped[str] = mapped_column(sa.String(100))
    #: English name
    name_en: Mapped[str | None] = mapped_column(sa.String(100))
    #: basic wood density, t dry matter per m3 of stem volume
    wood_density_t_per_m3: Mapped[float] = mapped_column(sa.Double)
    #: biomass expansion factor, stem to above-ground biomass (dimensionless)
    biomass_expansion_factor: Mapped[float] = mapped_column(sa.Double)
    #: root:shoot ratio, below- to above-ground biomass (dimensionless)
    root_shoot_ratio: Mapped[float] = mapped_column(sa.Double)
    #: carbon fraction of dry matter, tC per t (a fraction, not a percent)
    carbon_fraction: Mapped[float] = mapped_column(sa.Double)
    #: single-tree route: tCO2e removed per tree and year; NULL = not given in this set
    tree_tco2e_per_year: Mapped[float | None] = mapped_column(sa.Double)
    #: to-confirm or confirmed
    confirmation: Mapped[str] = mapped_column(sa.String(12), default="to-confirm")
    #: where the values come from
    source: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        sa.UniqueConstraint("set_id", "species_code"),
        sa.CheckConstraint(_in("confirmation", CONFIRMATIONS), name="confirmation"),
    )


class CarbonRegistry(Base):
    """The registry's operator: the party whose accounts issue credits, hold the buffer pool,
    the share of proceeds and retired credits. One row (id 1)."""

    __tablename__ = "carbon_registry"

    #: always 1
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    #: the operating party (a government body)
    operator_party_id: Mapped[int] = mapped_column(BigInt, _party())
    #: last change (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who changed it (actor label)
    updated_by: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)


class CarbonProject(Base):
    """A forest-carbon project on verified catalog parcels."""

    __tablename__ = "carbon_projects"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: ASCII code used in serial numbers, e.g. WM-AR-001 (A-Z, 0-9, '-', at most 16)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    #: Chinese name
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: English name
    name_en: Mapped[str | None] = mapped_column(sa.String(200))
    #: afforestation, forest_management or single_tree (ledger.carbon.methodology)
    methodology: Mapped[str] = mapped_column(sa.String(24))
    #: the county the project lies in (6 digits); its registrar files for it
    county_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    #: every region code the project covers (townships, villages)
    region_codes: Mapped[list] = mapped_column(JSONDocument, default=list)
    #: the project developer (catalog party)
    developer_party_id: Mapped[int] = mapped_column(BigInt, _party())
    #: the project owner, who receives the issued credits (catalog party)
    owner_party_id: Mapped[int] = mapped_column(BigInt, _party())
    #: the published parameter set the project computes with
    parameter_set_id: Mapped[int] = mapped_column(BigInt,
                                                  sa.ForeignKey("carbon_parameter_sets.id"))
    #: species -> share of stem volume (or of trees), summing to 1
    species_composition: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    #: first day of the crediting period (local date)
    crediting_start: Mapped[dt.date] = mapped_column(sa.Date)
    #: last day of the crediting period, inclusive (local date)
    crediting_end: Mapped[dt.date] = mapped_column(sa.Date)
    #: buffer share withheld from each issuance, basis points (2000 = 20 %)
    buffer_share_bp: Mapped[int] = mapped_column(sa.Integer)
    #: share of proceeds (adaptation), basis points
    share_of_proceeds_bp: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: overall mitigation of global emissions (cancelled at issuance), basis points
    overall_mitigation_bp: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: documents: [{title, reference, sha256}] (design document, validation report ...)
    documents: Mapped[list] = mapped_column(JSONDocument, default=list)
    #: free description
    description: Mapped[str | None] = mapped_column(sa.String(2000))
    #: draft, validated, registered, active, closed, rejected or withdrawn
    status: Mapped[str] = mapped_column(sa.String(12), index=True, default="draft")
    #: optimistic version, +1 on every change
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who created it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: last change (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who changed it last (actor label)
    updated_by: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.CheckConstraint(_in("methodology", METHODOLOGY_CODES), name="methodology"),
        sa.CheckConstraint(_in("status", PROJECT_STATUSES), name="status"),
        sa.CheckConstraint("crediting_end > crediting_start", name="crediting_period"),
        sa.CheckConstraint("buffer_share_bp BETWEEN 0 AND 10000 AND share_of_proceeds_bp "
                           "BETWEEN 0 AND 10000 AND overall_mitigation_bp BETWEEN 0 AND 10000",
                           name="shares"),
    )


class CarbonProjectParcel(Base):
    """A verified catalog product (a forest parcel) a project covers."""

    __tablename__ = "carbon_project_parcels"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the project
    project_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_projects.id"),
                                            index=True)
    #: the catalog product (parcel)
    product_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("products.id"), index=True)

    __table_args__ = (sa.UniqueConstraint("project_id", "product_id"),)


class CarbonProjectEvent(Base):
    """One step of a project's lifecycle (append-only)."""

    __tablename__ = "carbon_project_events"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the project
    project_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_projects.id"),
                                            index=True)
    #: create, update, or a transition name (validate, register ...)
    change: Mapped[str] = mapped_column(sa.String(20))
    #: status before (NULL for create)
    from_status: Mapped[str | None] = mapped_column(sa.String(12))
    #: status after
    to_status: Mapped[str] = mapped_column(sa.String(12))
    #: why (required for reject, withdraw, close)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    #: who (actor label)
    actor: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CarbonHousehold(Base):
    """Single-tree route: a household enrolled with its parcel and enrolled area."""

    __tablename__ = "carbon_households"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the project
    project_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_projects.id"),
                                            index=True)
    #: the household (catalog party of kind household)
    party_id: Mapped[int] = mapped_column(BigInt, _party())
    #: the parcel the trees stand on (a parcel of the project)
    product_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("products.id"))
    #: enrolled land, mu (亩); at most 2 mu count
    area_mu: Mapped[float] = mapped_column(sa.Double)

    __table_args__ = (sa.UniqueConstraint("project_id", "party_id"),
                      sa.CheckConstraint("area_mu > 0", name="area_positive"))


class CarbonTree(Base):
    """Single-tree route: one registered tree."""

    __tablename__ = "carbon_trees"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the project
    project_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_projects.id"),
                                            index=True)
    #: the household enrolment it belongs to
    household_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_households.id"),
                                              index=True)
    #: the tree's tag, unique in the project (e.g. DL-0001-017)
    tree_code: Mapped[str] = mapped_column(sa.String(40))
    #: species code of the project's parameter set
    species_code: Mapped[str] = mapped_column(sa.String(40))
    #: year planted
    planting_year: Mapped[int] = mapped_column(sa.Integer)
    #: reference of a photo (file name or document id), optional
    photo_reference: Mapped[str | None] = mapped_column(sa.String(200))

    __table_args__ = (sa.UniqueConstraint("project_id", "tree_code"),)


class CarbonReport(Base):
    """A monitoring report: the removals of one period, computed and kept with its inputs."""

    __tablename__ = "carbon_reports"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the project
    project_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_projects.id"),
                                            index=True)
    #: first day of the monitoring period (local date)
    period_start: Mapped[dt.date] = mapped_column(sa.Date)
    #: last day, inclusive (local date)
    period_end: Mapped[dt.date] = mapped_column(sa.Date)
    #: the vintage of the credits: the year the period ends
    vintage_year: Mapped[int] = mapped_column(sa.Integer)
    #: catalog (monitoring records), inventory_plots (upload) or tree_registry
    source: Mapped[str] = mapped_column(sa.String(16))
    #: submitted, verified, rejected or issued
    status: Mapped[str] = mapped_column(sa.String(12), default="submitted")
    #: actual net change in carbon stocks, tCO2e (float estimate)
    actual_removals_tco2e: Mapped[float] = mapped_column(sa.Double)
    #: baseline removals deducted, tCO2e
    baseline_tco2e: Mapped[float] = mapped_column(sa.Double, default=0.0)
    #: leakage emissions deducted, tCO2e
    leakage_tco2e: Mapped[float] = mapped_column(sa.Double, default=0.0)
    #: actual - baseline - leakage, tCO2e (float estimate)
    net_removals_tco2e: Mapped[float] = mapped_column(sa.Double)
    #: credits the report supports: net removals rounded down to whole tonnes
    quantity_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: per parcel and species: volumes, factors, removals (how the number was made)
    calculation: Mapped[list] = mapped_column(JSONDocument, default=list)
    #: the catalog monitoring records behind the quantity
    record_ids: Mapped[list] = mapped_column(JSONDocument, default=list)
    #: SHA-256 of the inputs (records or uploaded file) and parameters
    input_sha256: Mapped[str] = mapped_column(sa.String(64))
    #: the parameter set version used
    parameter_set_version: Mapped[str] = mapped_column(sa.String(40))
    #: free remarks
    note: Mapped[str | None] = mapped_column(sa.String(1000))
    #: why it was rejected
    rejection_reason: Mapped[str | None] = mapped_column(sa.String(500))
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who filed it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: verification or rejection time (UTC)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who verified or rejected it (actor label)
    verified_by: Mapped[str | None] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.CheckConstraint(_in("source", REPORT_SOURCES), name="source"),
        sa.CheckConstraint(_in("status", REPORT_STATUSES), name="status"),
        sa.CheckConstraint("period_end >= period_start", name="period"),
        sa.CheckConstraint("quantity_t >= 0", name="quantity"),
    )


class CarbonBatch(Base):
    """An issuance: one ledger asset, one inclusive serial range."""

    __tablename__ = "carbon_batches"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the project
    project_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_projects.id"),
                                            index=True)
    #: the verified report it was issued on (once)
    report_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_reports.id"),
                                           unique=True)
    #: the ledger asset code of its credits, e.g. QXN-522326-WM-AR-001-2023-01
    asset_code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: vintage year
    vintage_year: Mapped[int] = mapped_column(sa.Integer, index=True)
    #: the whole serial block, e.g. QXN-522326-WM-AR-001-2023-000001-001000
    serial_block: Mapped[str] = mapped_column(sa.String(100), unique=True)
    #: first serial number
    serial_start: Mapped[int] = mapped_column(sa.BigInteger)
    #: last serial number (inclusive)
    serial_end: Mapped[int] = mapped_column(sa.BigInteger)
    #: tonnes issued (= serial_end - serial_start + 1)
    quantity_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: withheld to the buffer pool
    buffer_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: share of proceeds
    share_of_proceeds_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: cancelled at issuance for overall mitigation
    overall_mitigation_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: posted to the owner
    owner_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: the ledger transaction of the issuance
    ledger_transaction_id: Mapped[int] = mapped_column(BigInt)
    #: issuance date (local)
    issued_on: Mapped[dt.date] = mapped_column(sa.Date)
    #: issuance time (UTC)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who issued (actor label)
    issued_by: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.CheckConstraint("quantity_t = serial_end - serial_start + 1", name="range"),
        sa.CheckConstraint("buffer_t + share_of_proceeds_t + overall_mitigation_t + owner_t = "
                           "quantity_t", name="split"),
    )


class CarbonAccount(Base):
    """A ledger account of one batch as the registry sees it: whose, and what its credits
    are (tradable, buffer, retired, cancelled)."""

    __tablename__ = "carbon_accounts"

    #: the ledger account id
    ledger_account_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("ledger_accounts.id"),
                                                   primary_key=True, autoincrement=False)
    #: the batch
    batch_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_batches.id"),
                                          index=True)
    #: the owning party
    party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: tradable, buffer, retired or cancelled
    role: Mapped[str] = mapped_column(sa.String(12))
    #: the ledger account code
    code: Mapped[str] = mapped_column(sa.String(100))
    #: the batch's ledger asset code (copied, so that a movement needs no batch look-up)
    asset_code: Mapped[str] = mapped_column(sa.String(40))

    __table_args__ = (sa.CheckConstraint(_in("role", ACCOUNT_ROLES), name="role"),
                      sa.Index("ix_carbon_accounts_code", "code", unique=True))


class CarbonBlock(Base):
    """A run of consecutive serial numbers held by one account. The blocks of a batch never
    overlap and leave no gap; an account's blocks are disjoint and never adjacent (merged)."""

    __tablename__ = "carbon_blocks"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the batch
    batch_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_batches.id"))
    #: the holding account (ledger account id)
    account_id: Mapped[int] = mapped_column(BigInt,
                                            sa.ForeignKey("carbon_accounts.ledger_account_id"))
    #: first serial (inclusive)
    start_serial: Mapped[int] = mapped_column(sa.BigInteger)
    #: last serial (inclusive)
    end_serial: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.UniqueConstraint("batch_id", "start_serial"),
        sa.Index("ix_carbon_blocks_account_start", "account_id", "start_serial"),
        sa.CheckConstraint("end_serial >= start_serial AND start_serial >= 1", name="range"),
    )


class CarbonEvent(Base):
    """Something that happened to credits: issuance, transfer, retirement, cancellation,
    reversal; it names the serial blocks it touched (append-only)."""

    __tablename__ = "carbon_events"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the batch
    batch_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_batches.id"),
                                          index=True)
    #: issuance, transfer, retirement, cancellation or reversal
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: the account debited (NULL for an issuance)
    from_account_id: Mapped[int | None] = mapped_column(BigInt)
    #: the account credited
    to_account_id: Mapped[int] = mapped_column(BigInt)
    #: tonnes moved
    quantity_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: the serial blocks moved, as text
    blocks: Mapped[list] = mapped_column(JSONDocument)
    #: the ledger transaction that moved them
    ledger_transaction_id: Mapped[int] = mapped_column(BigInt)
    #: why (cancellations, reversals)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    #: the reversal event it belongs to, if any
    reversal_id: Mapped[int | None] = mapped_column(BigInt,
                                                    sa.ForeignKey("carbon_reversals.id"))
    #: accounting date (local)
    effective_date: Mapped[dt.date] = mapped_column(sa.Date)
    #: who (actor label)
    actor: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
        sa.CheckConstraint("quantity_t > 0", name="quantity"),
    )


class CarbonRetirement(Base):
    """A retirement with its public certificate."""

    __tablename__ = "carbon_retirements"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: certificate number, e.g. QXN-RET-2024-000001
    certificate_number: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: the event that moved the credits into retirement
    event_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_events.id"),
                                          unique=True)
    #: the batch
    batch_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_batches.id"),
                                          index=True)
    #: the account the credits came from
    account_id: Mapped[int] = mapped_column(BigInt)
    #: the party that retired them
    party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: tonnes retired
    quantity_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: serial blocks retired, as text
    blocks: Mapped[list] = mapped_column(JSONDocument)
    #: on whose behalf (public, as the retiree chose to name it)
    beneficiary_name: Mapped[str] = mapped_column(sa.String(200), index=True)
    #: thermal_power_pilot, compliance, voluntary or other
    purpose: Mapped[str] = mapped_column(sa.String(24), index=True)
    #: the compliance year the retirement counts for, if any
    compliance_year: Mapped[int | None] = mapped_column(sa.Integer)
    #: where it counts (region code or a scheme's name), e.g. 522300
    jurisdiction: Mapped[str | None] = mapped_column(sa.String(100))
    #: free text
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    #: vintage (copied from the batch, for queries)
    vintage_year: Mapped[int] = mapped_column(sa.Integer, index=True)
    #: retirement date (local)
    retired_on: Mapped[dt.date] = mapped_column(sa.Date)
    #: retirement time (UTC)
    retired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who (actor label)
    retired_by: Mapped[str] = mapped_column(sa.String(250))
    #: sequence number of the retirement's audit event
    audit_seq: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: hash of the retirement's audit event (the certificate carries it)
    audit_hash: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (
        sa.CheckConstraint(_in("purpose", RETIREMENT_PURPOSES), name="purpose"),
        sa.CheckConstraint("quantity_t > 0", name="quantity"),
    )


class CarbonReversal(Base):
    """A loss of stored carbon (fire, illegal felling ...) compensated from the buffer pool."""

    __tablename__ = "carbon_reversals"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the project that lost carbon
    project_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_projects.id"),
                                            index=True)
    #: fire, illegal_felling, pest, storm or other
    cause: Mapped[str] = mapped_column(sa.String(16))
    #: when it happened (local date)
    occurred_on: Mapped[dt.date] = mapped_column(sa.Date)
    #: tonnes lost, cancelled from the buffer pool
    lost_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: what happened (report, police or forestry case number)
    description: Mapped[str] = mapped_column(sa.String(1000))
    #: who recorded it (actor label)
    recorded_by: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(_in("cause", REVERSAL_CAUSES), name="cause"),
        sa.CheckConstraint("lost_t > 0", name="lost"),
    )
