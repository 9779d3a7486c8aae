"""Catalog tables: regions, parties (主体), ecological products with their version history,
monitoring records and import batches."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecovalue.db import Base, BigIntPK, UTCDateTime, utcnow

REGION_LEVELS = ("province", "prefecture", "county", "township", "village")
#: where a region row comes from: the national reference list, a registrar, or the demo dataset
#: (demo codes below county level are made up within the county prefix)
REGION_SOURCES = ("reference", "registered", "demo")
PARTY_KINDS = ("government", "village_collective", "cooperative", "household", "enterprise")
PRODUCT_CATEGORIES = ("provisioning", "regulating", "cultural")
PRODUCT_STATUSES = ("draft", "registered", "verified", "suspended", "retired")
RIGHTS_TYPES = ("ownership", "contract_management", "use")
DEVELOPMENT_STATUSES = ("not_developed", "developing", "developed", "traded")
MONITORING_METHODS = ("field_survey", "remote_sensing", "grid_monitoring",
                      "statistical_yearbook", "model_estimate")
IMPORT_KINDS = ("products", "monitoring", "parties")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({','.join(repr(v) for v in values)})"


class Region(Base):
    """An administrative region: province, prefecture or county (GB/T 2260, 6 digits), township
    (9-digit statistical code) or village (12-digit)."""

    __tablename__ = "regions"

    #: national code: 6 digits down to county, 9 for a township, 12 for a village
    code: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    #: province, prefecture, county, township or village
    level: Mapped[str] = mapped_column(sa.String(12))
    #: Chinese name, e.g. 望谟县
    name_zh: Mapped[str] = mapped_column(sa.String(100))
    #: English / pinyin name, e.g. Wangmo
    name_en: Mapped[str | None] = mapped_column(sa.String(100))
    #: the region it belongs to; NULL only for a province
    parent_code: Mapped[str | None] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    #: pilot programme the region takes part in, free text (e.g. "ecological-product pilot")
    pilot: Mapped[str | None] = mapped_column(sa.String(100))
    #: when the row was created (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: reference (national list), registered (added by a registrar/admin) or demo (made-up code)
    source: Mapped[str] = mapped_column(sa.String(12), default="registered",
                                        server_default="registered")

    parent: Mapped[Region | None] = relationship(remote_side=[code])

    __table_args__ = (
        sa.CheckConstraint(
            "level in ('province','prefecture','county','township','village')", name="level"
        ),
        sa.CheckConstraint(_in("source", REGION_SOURCES), name="source"),
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
    #: 18-character unified social credit code (enterprises must have one to be identified;
    #: an enterprise an import created without it is unidentified: it holds no ledger account,
    #: so it can neither trade nor receive money, until the code is added)
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
    #: false once deactivated: kept for history and references (accounts, products), but it
    #: can no longer be named as the rights holder of a product
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())

    region: Mapped[Region] = relationship()

    @property
    def identified(self) -> bool:
        """False for an enterprise without its unified social credit code."""
        return self.kind != "enterprise" or self.credit_code is not None

    __table_args__ = (
        sa.CheckConstraint(
            "kind in ('government','village_collective','cooperative','household','enterprise')",
            name="kind",
        ),
        sa.CheckConstraint("kind = 'household' OR id_number_index IS NULL",
                           name="id_number_only_households"),
    )


class Product(Base):
    """An ecological product (生态产品) in the catalog: what it is, where, who holds which right
    to it, how much of it there is, and where it stands in its lifecycle.

    Natural key: (region_code, type_code, name_zh) -- the same name may recur in another village
    or for another type, but not twice for one type in one region; imports match on it.
    """

    __tablename__ = "products"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the county's own catalog number, if it keeps one (unique within the county)
    external_code: Mapped[str | None] = mapped_column(sa.String(60))
    #: Chinese name, e.g. 打狼村古茶园
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: English name, if any
    name_en: Mapped[str | None] = mapped_column(sa.String(200))
    #: provisioning, regulating or cultural (follows from the type; stored for filtering)
    category: Mapped[str] = mapped_column(sa.String(16), index=True)
    #: product type from the controlled vocabulary (catalog/reference/product_types.csv)
    type_code: Mapped[str] = mapped_column(sa.String(40), index=True)
    #: the region it lies in (county, township or village)
    region_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    #: the county of `region_code` (first six digits), kept for scope checks and summaries
    county_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    #: the rights holder (权益归属)
    holder_party_id: Mapped[int] = mapped_column(sa.ForeignKey("parties.id"), index=True)
    #: ownership, contract_management (承包经营权) or use (使用权)
    rights_type: Mapped[str] = mapped_column(sa.String(24))
    #: area in hectares; NULL when not applicable or not yet surveyed (never 0 for unknown)
    area_ha: Mapped[float | None] = mapped_column(sa.Float)
    #: WGS84 latitude of a representative point, degrees
    latitude: Mapped[float | None] = mapped_column(sa.Float)
    #: WGS84 longitude of a representative point, degrees
    longitude: Mapped[float | None] = mapped_column(sa.Float)
    #: monitoring grid cell id, when located by grid rather than by point
    grid_cell_id: Mapped[str | None] = mapped_column(sa.String(40))
    #: stock or annual output in `quantity_unit`; NULL when unknown (missing is not zero)
    quantity: Mapped[float | None] = mapped_column(sa.Float)
    #: unit of `quantity` (ecovalue.units), of the dimension the type expects
    quantity_unit: Mapped[str | None] = mapped_column(sa.String(20))
    #: quality grade as the county grades it (e.g. 一级, A, 有机)
    quality_grade: Mapped[str | None] = mapped_column(sa.String(40))
    #: not_developed, developing, developed or traded
    development_status: Mapped[str] = mapped_column(sa.String(16), default="not_developed")
    #: brand name (e.g. a geographical-indication brand)
    brand: Mapped[str | None] = mapped_column(sa.String(100))
    #: certifications, e.g. ["绿色食品", "有机产品", "地理标志"]
    certifications: Mapped[list] = mapped_column(sa.JSON, default=list)
    #: free attributes (survey notes, parcel numbers, "demo": true ...); no personal data
    attributes: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    #: draft, registered, verified, suspended or retired (see catalog.lifecycle)
    status: Mapped[str] = mapped_column(sa.String(12), index=True, default="draft")
    #: optimistic version, +1 on every change; clients send it back as If-Match
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: when it was last verified (UTC), NULL if never
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who verified it last (actor label)
    verified_by: Mapped[str | None] = mapped_column(sa.String(250))
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who created it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: last change (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who changed it last (actor label)
    updated_by: Mapped[str] = mapped_column(sa.String(250))

    region: Mapped[Region] = relationship()
    holder: Mapped[Party] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("region_code", "type_code", "name_zh"),
        sa.UniqueConstraint("county_code", "external_code"),
        sa.CheckConstraint(_in("category", PRODUCT_CATEGORIES), name="category"),
        sa.CheckConstraint(_in("status", PRODUCT_STATUSES), name="status"),
        sa.CheckConstraint(_in("rights_type", RIGHTS_TYPES), name="rights_type"),
        sa.CheckConstraint(_in("development_status", DEVELOPMENT_STATUSES),
                           name="development_status"),
        sa.CheckConstraint("area_ha IS NULL OR area_ha > 0", name="area_positive"),
        sa.CheckConstraint("quantity IS NULL OR quantity >= 0", name="quantity_not_negative"),
        sa.CheckConstraint("(quantity IS NULL) = (quantity_unit IS NULL)", name="quantity_unit"),
        sa.CheckConstraint("latitude IS NULL OR latitude BETWEEN -90 AND 90", name="latitude"),
        sa.CheckConstraint("longitude IS NULL OR longitude BETWEEN -180 AND 180",
                           name="longitude"),
        sa.CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name="point"),
        sa.CheckConstraint("version >= 1", name="version"),
    )


class ProductVersion(Base):
    """One entry of a product's history: the full state after each change, append-only."""

    __tablename__ = "product_versions"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the product
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"), index=True)
    #: the product's version number this entry records
    version: Mapped[int] = mapped_column(sa.Integer)
    #: what happened: create, update, import, or a lifecycle transition (submit, verify ...)
    change: Mapped[str] = mapped_column(sa.String(20))
    #: the product's status after the change
    status: Mapped[str] = mapped_column(sa.String(12))
    #: the product's fields after the change (JSON, as the API shows them)
    data: Mapped[dict] = mapped_column(sa.JSON)
    #: names of the fields this change altered (empty for create)
    changed_fields: Mapped[list] = mapped_column(sa.JSON, default=list)
    #: why (required for reject, suspend, retire; optional otherwise)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    #: who made the change (actor label)
    actor: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the import batch that made the change, if any
    import_batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("import_batches.id"),
                                                        index=True)

    __table_args__ = (sa.UniqueConstraint("product_id", "version"),)


class MonitoringRecord(Base):
    """One observed value of one metric of one product for one period (a year, or a month of
    it). Valuation derives GEP physical quantities from these records.

    Natural key: (product_id, metric, period_start, period_end, method) -- a yearbook figure and
    a field survey of the same metric and year may both be kept; re-imports update the value.
    """

    __tablename__ = "monitoring_records"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the product observed; its region and county are the record's
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"), index=True)
    #: the county of the product (denormalised for per-county time series and scope checks)
    county_code: Mapped[str] = mapped_column(sa.String(6))
    #: calendar year of the period
    period_year: Mapped[int] = mapped_column(sa.Integer)
    #: month 1-12 for a monthly record, NULL for a whole year
    period_month: Mapped[int | None] = mapped_column(sa.Integer)
    #: first day of the period (local date)
    period_start: Mapped[dt.date] = mapped_column(sa.Date)
    #: last day of the period, inclusive (local date)
    period_end: Mapped[dt.date] = mapped_column(sa.Date)
    #: metric code from catalog/reference/metrics.csv (output, area, carbon_sink, visits ...)
    metric: Mapped[str] = mapped_column(sa.String(40), index=True)
    #: observed value in `unit` (full float precision)
    value: Mapped[float] = mapped_column(sa.Float)
    #: unit of `value` (ecovalue.units), of the dimension the metric expects
    unit: Mapped[str] = mapped_column(sa.String(20))
    #: field_survey, remote_sensing, grid_monitoring, statistical_yearbook or model_estimate
    method: Mapped[str] = mapped_column(sa.String(24))
    #: where the number comes from (report, yearbook table, survey id)
    source: Mapped[str | None] = mapped_column(sa.String(300))
    #: remarks
    note: Mapped[str | None] = mapped_column(sa.String(500))
    #: who recorded it (actor label)
    recorded_by: Mapped[str] = mapped_column(sa.String(250))
    #: when it was recorded or last changed (UTC)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: +1 on every change of the value
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: the import batch that wrote it last, if any
    import_batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("import_batches.id"),
                                                        index=True)

    product: Mapped[Product] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("product_id", "metric", "period_start", "period_end", "method"),
        sa.Index("ix_monitoring_records_county_period", "county_code", "period_start"),
        sa.CheckConstraint(_in("method", MONITORING_METHODS), name="method"),
        sa.CheckConstraint("period_month IS NULL OR period_month BETWEEN 1 AND 12",
                           name="period_month"),
        sa.CheckConstraint("period_end >= period_start", name="period_order"),
    )


class VocabularySynonym(Base):
    """A spelling an admin added to a controlled vocabulary (the shipped ones are in
    catalog/reference/synonyms.csv): e.g. a county's own name of a product type."""

    __tablename__ = "vocabulary_synonyms"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: type, category, rights_type, development_status, metric or method
    vocabulary: Mapped[str] = mapped_column(sa.String(24))
    #: the spelling as the admin wrote it
    term: Mapped[str] = mapped_column(sa.String(100))
    #: the spelling as compared (catalog.vocabulary.normalize_term): unique per vocabulary
    term_key: Mapped[str] = mapped_column(sa.String(100))
    #: the code it means
    code: Mapped[str] = mapped_column(sa.String(40))
    #: why it was added (a county's usage, a standard's wording)
    note: Mapped[str | None] = mapped_column(sa.String(300))
    #: who added it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.UniqueConstraint("vocabulary", "term_key"),)


class ImportBatch(Base):
    """One committed bulk import: the file's digest and what it did. Each product version and
    monitoring record it wrote points back here; the audit trail holds one event per batch."""

    __tablename__ = "import_batches"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: products, monitoring or parties
    kind: Mapped[str] = mapped_column(sa.String(12))
    #: uploaded file name, as given
    filename: Mapped[str] = mapped_column(sa.String(255))
    #: SHA-256 of the file's bytes
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: detected encoding (utf-8, gbk) or xlsx
    encoding: Mapped[str] = mapped_column(sa.String(12))
    #: data rows in the file
    rows: Mapped[int] = mapped_column(sa.Integer)
    #: rows that created a new record
    created: Mapped[int] = mapped_column(sa.Integer)
    #: rows that changed an existing record
    updated: Mapped[int] = mapped_column(sa.Integer)
    #: rows identical to what was stored (skipped)
    unchanged: Mapped[int] = mapped_column(sa.Integer)
    #: the county the importer was scoped to (registrar), NULL for admins
    county_code: Mapped[str | None] = mapped_column(sa.String(6))
    #: who imported (actor label)
    actor: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.CheckConstraint(_in("kind", IMPORT_KINDS), name="kind"),)
