"""Tables of GEP valuation: custom indicators, price books, price indices, quantity sets, runs
and their results.

Immutability: a published price book, a quantity set and a finished run (with its results)
never change; services refuse it, and on PostgreSQL triggers (migration v0001) refuse it too.
The only change a run sees after it is computed is its publication.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecovalue.db import Base, BigIntPK, JSONDocument, UTCDateTime, utcnow

PRICE_BOOK_STATUSES = ("draft", "published")
CONFIRMATIONS = ("to-confirm", "confirmed")
QUANTITY_SOURCES = ("csv", "xlsx", "api", "grid", "catalog")
ORIGINS = ("local", "outside")
RUN_STATUSES = ("finished", "published")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({', '.join(repr(v) for v in values)})"


class CustomIndicator(Base):
    """An indicator added by an admin (local standards: noise reduction, pest control ...).
    Built-in indicators live in valuation/reference/ and are not stored here."""

    __tablename__ = "valuation_custom_indicators"

    #: indicator code, e.g. R-NOISE (P-, R- or C- by category); never reused for another meaning
    code: Mapped[str] = mapped_column(sa.String(30), primary_key=True)
    #: provisioning, regulating or cultural
    category: Mapped[str] = mapped_column(sa.String(16))
    #: Chinese name, e.g. 降噪
    name_zh: Mapped[str] = mapped_column(sa.String(100))
    #: English name
    name_en: Mapped[str] = mapped_column(sa.String(200))
    #: the full definition (units, items, terms, parameters with units, flags) as
    #: valuation.registry.IndicatorDef.to_dict() gives it
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    #: false once deactivated: no longer offered to new runs (finished runs keep their copy)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    #: +1 on every change
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who created it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: last change (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: who changed it last (actor label)
    updated_by: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.CheckConstraint(_in("category", ("provisioning", "regulating", "cultural")),
                           name="category"),
    )


class PriceBook(Base):
    """A versioned set of unit prices and coefficients. Drafts are edited; a published book is
    immutable and may be used by runs."""

    __tablename__ = "valuation_price_books"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: version label, unique, e.g. "default" or "2024-qxn-1"
    version: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: what the book is for
    title: Mapped[str] = mapped_column(sa.String(200))
    #: draft or published
    status: Mapped[str] = mapped_column(sa.String(12), default="draft")
    #: the book this one was copied from, if any
    based_on_version: Mapped[str | None] = mapped_column(sa.String(40))
    #: remarks (scope, approval document ...)
    note: Mapped[str | None] = mapped_column(sa.String(1000))
    #: SHA-256 of the entries, fixed at publication
    content_hash: Mapped[str | None] = mapped_column(sa.String(64))
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who created it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: publication time (UTC), NULL for a draft
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who published it (actor label)
    published_by: Mapped[str | None] = mapped_column(sa.String(250))

    entries: Mapped[list[PriceBookEntry]] = relationship(
        back_populates="book", order_by="PriceBookEntry.parameter", cascade="all, delete-orphan")

    __table_args__ = (sa.CheckConstraint(_in("status", PRICE_BOOK_STATUSES), name="status"),)


class PriceBookEntry(Base):
    """One parameter of a price book: a unit price (index-adjusted from its price year) or a
    physical coefficient (never adjusted)."""

    __tablename__ = "valuation_price_book_entries"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the book
    book_id: Mapped[int] = mapped_column(sa.ForeignKey("valuation_price_books.id"), index=True)
    #: parameter name, per item where the formula asks for one: reservoir_cost,
    #: abatement_cost.SO2, agri_price.rice
    parameter: Mapped[str] = mapped_column(sa.String(100))
    #: the value in `unit` (full float precision)
    value: Mapped[float] = mapped_column(sa.Double)
    #: unit of `value` (ecovalue.units), e.g. yuan/m3, yuan/tC, t/m3, 1
    unit: Mapped[str] = mapped_column(sa.String(40))
    #: year whose prices `value` is in (prices); NULL for coefficients
    price_year: Mapped[int | None] = mapped_column(sa.Integer)
    #: price-index series adjusting it to the accounting year (e.g. CPI-CN-1978); NULL = not
    #: adjusted (a market price of the accounting year, or a coefficient)
    index_series: Mapped[str | None] = mapped_column(sa.String(40))
    #: to-confirm or confirmed
    confirmation: Mapped[str] = mapped_column(sa.String(12), default="to-confirm")
    #: where the number comes from (standard, survey, yearbook, market report)
    source: Mapped[str | None] = mapped_column(sa.String(500))

    book: Mapped[PriceBook] = relationship(back_populates="entries")

    __table_args__ = (
        sa.UniqueConstraint("book_id", "parameter"),
        sa.CheckConstraint(_in("confirmation", CONFIRMATIONS), name="confirmation"),
    )


class PriceIndexSeries(Base):
    """A price-index series (fixed-base CPI and others)."""

    __tablename__ = "valuation_price_index_series"

    #: series code, e.g. CPI-CN-1978
    code: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    #: Chinese name, e.g. 全国居民消费价格指数(1978=100)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: English name
    name_en: Mapped[str] = mapped_column(sa.String(200))
    #: fixed-base (values comparable across years); only fixed-base series adjust prices
    kind: Mapped[str] = mapped_column(sa.String(20), default="fixed-base")
    #: base of the series, e.g. 1978=100
    base: Mapped[str] = mapped_column(sa.String(40))
    #: where the values come from
    source: Mapped[str | None] = mapped_column(sa.String(500))
    #: to-confirm or confirmed
    confirmation: Mapped[str] = mapped_column(sa.String(12), default="to-confirm")
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(_in("confirmation", CONFIRMATIONS), name="confirmation"),
        sa.CheckConstraint("kind = 'fixed-base'", name="kind"),
    )


class PriceIndexValue(Base):
    """The value of an index series for one year."""

    __tablename__ = "valuation_price_indices"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the series
    series_code: Mapped[str] = mapped_column(sa.ForeignKey("valuation_price_index_series.code"))
    #: calendar year
    year: Mapped[int] = mapped_column(sa.Integer)
    #: index value (e.g. 606.7 for 2014 on 1978=100)
    value: Mapped[float] = mapped_column(sa.Double)
    #: to-confirm or confirmed
    confirmation: Mapped[str] = mapped_column(sa.String(12), default="to-confirm")
    #: remarks (how derived, table reference)
    note: Mapped[str | None] = mapped_column(sa.String(500))
    #: last change (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: who set it last (actor label)
    updated_by: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.UniqueConstraint("series_code", "year"),
        sa.CheckConstraint("value > 0", name="positive"),
        sa.CheckConstraint(_in("confirmation", CONFIRMATIONS), name="confirmation"),
    )


class QuantitySet(Base):
    """An immutable set of physical quantities for one scope and year: an uploaded aggregate
    table, rows posted through the API, the output of the grid route, or quantities derived
    from the catalog's monitoring records."""

    __tablename__ = "valuation_quantity_sets"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the region the set covers (a county, or the prefecture); its rows lie inside it
    region_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    #: accounting year
    year: Mapped[int] = mapped_column(sa.Integer)
    #: csv, xlsx, api, grid or catalog
    source: Mapped[str] = mapped_column(sa.String(12))
    #: uploaded file name, as given
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    #: SHA-256 of the uploaded file's bytes
    file_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    #: SHA-256 of the canonical rows (what runs hash)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    #: number of rows
    row_count: Mapped[int] = mapped_column(sa.Integer)
    #: remarks, e.g. "DEMO quantities"
    note: Mapped[str | None] = mapped_column(sa.String(500))
    #: warnings raised while reading (grid route: negative water balance cells ...)
    warnings: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    #: grid route: the options and number of cells it was computed with
    grid: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who created it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))

    rows: Mapped[list[QuantityRow]] = relationship(
        back_populates="quantity_set", order_by="QuantityRow.id", cascade="all, delete-orphan")

    __table_args__ = (sa.CheckConstraint(_in("source", QUANTITY_SOURCES), name="source"),)


class QuantityRow(Base):
    """One physical quantity: region x indicator x item x ecosystem type, converted exactly to
    the indicator's canonical unit (the reported figure and unit are kept too)."""

    __tablename__ = "valuation_quantities"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the set
    set_id: Mapped[int] = mapped_column(sa.ForeignKey("valuation_quantity_sets.id"), index=True)
    #: row number in the uploaded file (header = 1) or position in the posted list (from 1)
    source_row: Mapped[int] = mapped_column(sa.Integer)
    #: region the quantity belongs to (county, township or village inside the set's region)
    region_code: Mapped[str] = mapped_column(sa.String(12))
    #: indicator code (built-in or custom)
    indicator_code: Mapped[str] = mapped_column(sa.String(30))
    #: product, pollutant, sector or site ('' when the indicator has none)
    item: Mapped[str] = mapped_column(sa.String(40), default="")
    #: ecosystem type (valuation.registry.ECOSYSTEM_TYPES), 'unspecified' when not given
    ecosystem_type: Mapped[str] = mapped_column(sa.String(16))
    #: local, or outside: produced by ecosystems outside the region (subtracted, GB/T 46869)
    origin: Mapped[str] = mapped_column(sa.String(8), default="local")
    #: quantity in `quantity_unit` (full float precision); NULL when reported as not
    #: available (the run lists it as unvalued: missing is not zero)
    quantity: Mapped[float | None] = mapped_column(sa.Double)
    #: the indicator's canonical unit (m3, t, tCO2 ...), yuan for an output value; NULL when
    #: the quantity is not available
    quantity_unit: Mapped[str | None] = mapped_column(sa.String(20))
    #: true when the quantity is an amount of money (statistical output value, revenue)
    money: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: the figure as reported (NULL when not available)
    reported_quantity: Mapped[float | None] = mapped_column(sa.Double)
    #: the unit as reported, e.g. 亿m³, 万t
    reported_unit: Mapped[str | None] = mapped_column(sa.String(40))
    #: remarks of the row
    note: Mapped[str | None] = mapped_column(sa.String(500))

    quantity_set: Mapped[QuantitySet] = relationship(back_populates="rows")

    __table_args__ = (sa.CheckConstraint(_in("origin", ORIGINS), name="origin"),)


#: which quantity sets a run used (a set can serve several runs)
run_quantity_sets = sa.Table(
    "valuation_run_quantity_sets",
    Base.metadata,
    #: the run
    sa.Column("run_id", sa.ForeignKey("valuation_runs.id"), primary_key=True),
    #: a quantity set the run used
    sa.Column("set_id", sa.ForeignKey("valuation_quantity_sets.id"), primary_key=True,
              index=True),
)


class ValuationRun(Base):
    """One valuation: scope, year, quantities, price book and options in; results, totals,
    unvalued indicators and warnings out. Immutable once stored, except for publication."""

    __tablename__ = "valuation_runs"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the region valued (county or prefecture)
    region_code: Mapped[str] = mapped_column(sa.ForeignKey("regions.code"), index=True)
    #: accounting year
    year: Mapped[int] = mapped_column(sa.Integer)
    #: base year of the constant-price values
    base_year: Mapped[int] = mapped_column(sa.Integer)
    #: the (published) price book used
    price_book_id: Mapped[int] = mapped_column(sa.ForeignKey("valuation_price_books.id"),
                                               index=True)
    #: finished or published (public)
    status: Mapped[str] = mapped_column(sa.String(12), default="finished")
    #: label shown in lists, e.g. "Wangmo GEP 2024 (DEMO)"
    title: Mapped[str] = mapped_column(sa.String(200))
    #: options: enabled/disabled indicators, accepted double counts, deflator, ...
    options: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    #: GDP, area and population per region, as given (with units) and converted
    context: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    #: SHA-256 of every input and parameter (quantities, prices, indices, registry, options)
    input_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: version of the valuation engine that computed it
    engine_version: Mapped[str] = mapped_column(sa.String(20))
    #: GEP in yuan, current prices (full precision)
    gep_current: Mapped[float] = mapped_column(sa.Double)
    #: GEP in yuan at the base year's prices
    gep_constant: Mapped[float] = mapped_column(sa.Double)
    #: totals by category, ecosystem type, region and indicator (current and constant)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    #: GEP/GDP, GEP per km2 and per capita per region
    ratios: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    #: indicators, rows or terms left unvalued, each with its reason
    unvalued: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    #: sanity and data warnings
    warnings: Mapped[list[str]] = mapped_column(JSONDocument)
    #: every parameter used: book value, unit conversion, index factors, adjusted values
    prices: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    #: the definitions of the indicators the run used (so later registry edits cannot
    #: change what it means)
    registry_snapshot: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    #: the index values used: series -> {year: value}
    indices: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who ran it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: publication time (UTC)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who published it (actor label)
    published_by: Mapped[str | None] = mapped_column(sa.String(250))

    price_book: Mapped[PriceBook] = relationship()
    quantity_sets: Mapped[list[QuantitySet]] = relationship(secondary=run_quantity_sets,
                                                            order_by=QuantitySet.id)

    __table_args__ = (sa.CheckConstraint(_in("status", RUN_STATUSES), name="status"),)


class ValuationResult(Base):
    """One valued row of a run: indicator x item x region x ecosystem type."""

    __tablename__ = "valuation_results"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the run
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("valuation_runs.id"), index=True)
    #: indicator code
    indicator_code: Mapped[str] = mapped_column(sa.String(30))
    #: provisioning, regulating or cultural
    category: Mapped[str] = mapped_column(sa.String(16))
    #: product, pollutant, sector or site ('' when none)
    item: Mapped[str] = mapped_column(sa.String(40))
    #: region code
    region_code: Mapped[str] = mapped_column(sa.String(12))
    #: ecosystem type
    ecosystem_type: Mapped[str] = mapped_column(sa.String(16))
    #: accounted (net) physical quantity in `quantity_unit`
    quantity: Mapped[float] = mapped_column(sa.Double)
    #: canonical unit of the quantity (yuan for a reported output value)
    quantity_unit: Mapped[str] = mapped_column(sa.String(20))
    #: quantity as reported, before the territorial subtraction
    quantity_gross: Mapped[float] = mapped_column(sa.Double)
    #: quantity tagged as from outside the region, subtracted
    quantity_outside: Mapped[float] = mapped_column(sa.Double)
    #: effective unit price, yuan per quantity unit, accounting-year prices (NULL if Q = 0)
    unit_price: Mapped[float | None] = mapped_column(sa.Double)
    #: effective unit price at base-year prices
    unit_price_constant: Mapped[float | None] = mapped_column(sa.Double)
    #: value at adjusted prices / value at book prices (the index adjustment; NULL if 0)
    adjustment_factor: Mapped[float | None] = mapped_column(sa.Double)
    #: value at the book's unadjusted prices, yuan
    value_reference: Mapped[float] = mapped_column(sa.Double)
    #: value in yuan at accounting-year (current) prices
    value_current: Mapped[float] = mapped_column(sa.Double)
    #: value in yuan at base-year (constant) prices
    value_constant: Mapped[float] = mapped_column(sa.Double)
    #: false when some value term of the indicator was left unvalued (see the run's unvalued)
    complete: Mapped[bool] = mapped_column(sa.Boolean)
    #: names of the value terms included
    terms: Mapped[list[str]] = mapped_column(JSONDocument)
    #: parameters used (keys of the run's prices)
    parameters: Mapped[list[str]] = mapped_column(JSONDocument)

    __table_args__ = (
        sa.UniqueConstraint("run_id", "indicator_code", "item", "region_code", "ecosystem_type",
                            "quantity_unit"),
    )
