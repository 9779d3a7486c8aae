"""Tables of benefit sharing: the villager register, sharing rules, funds, runs (distributions
and single-tree purchases) with their lines, and the attribution of each distribution to the
fund's inflows.

The money itself moves in the ledger core (`ledger.core.post_batch`); these tables hold what
benefit sharing adds, written in the same unit of work as the postings.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ecovalue.db import Base, BigInt, BigIntPK, JSONDocument, UTCDateTime, utcnow

REGISTER_STATUSES = ("member", "left")
SOURCE_KINDS = ("carbon_project", "product", "agreement", "fund", "other")
RUN_KINDS = ("distribution", "single_tree")
RUN_STATUSES = ("prepared", "paid", "cancelled", "reversed")
LINE_KINDS = ("account", "collective", "household")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({','.join(repr(v) for v in values)})"


def _party() -> sa.ForeignKey:
    return sa.ForeignKey("parties.id")


class SharingAccount(Base):
    """The ledger account (CNY) a collective or household is paid into, opened through
    `ledger.core.ensure_account` when the party first enters the register."""

    __tablename__ = "sharing_accounts"

    #: the collective or household (catalog party)
    party_id: Mapped[int] = mapped_column(BigInt, _party(), primary_key=True)
    #: code of its CNY ledger account
    account_code: Mapped[str] = mapped_column(sa.String(100))


class SharingRegisterEntry(Base):
    """One version of a household's place in a village collective (股份经济合作社): from
    `effective_date` until the household's next entry in the same collective. The register
    as of a date is, per household, its latest entry on or before that date."""

    __tablename__ = "sharing_register_entries"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the village collective (party of kind village_collective)
    collective_party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: the household (party of kind household)
    household_party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: the local date (Asia/Shanghai) from which this entry holds
    effective_date: Mapped[dt.date] = mapped_column(sa.Date)
    #: member, or left (the household has left the collective from this date)
    status: Mapped[str] = mapped_column(sa.String(8))
    #: shares (股份) the household holds in the collective, a whole number
    shares: Mapped[int] = mapped_column(BigInt)
    #: people in the household (members of the collective)
    members: Mapped[int] = mapped_column(sa.Integer)
    #: trees enrolled in a single-tree programme (单株碳汇), whole trees
    trees: Mapped[int] = mapped_column(BigInt)
    #: contracted forest area, whole square metres (1 mu = 2000/3 m2)
    area_m2: Mapped[int] = mapped_column(BigInt)
    #: why the entry was made (join, inheritance, share transfer, survey ...)
    reason: Mapped[str | None] = mapped_column(sa.String(200))
    #: who recorded it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: when it was recorded (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("collective_party_id", "household_party_id", "effective_date"),
        sa.CheckConstraint(_in("status", REGISTER_STATUSES), name="status"),
        sa.CheckConstraint("shares >= 0 AND members >= 0 AND trees >= 0 AND area_m2 >= 0",
                           name="non_negative"),
    )


class SharingRule(Base):
    """A benefit-sharing rule for one revenue source; its definitions are versions."""

    __tablename__ = "sharing_rules"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: human-readable unique code, e.g. SANMING-30-70
    code: Mapped[str] = mapped_column(sa.String(60), unique=True)
    #: Chinese name
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: English name
    name_en: Mapped[str | None] = mapped_column(sa.String(200))
    #: carbon_project, product, agreement, fund or other: what revenue it shares
    source_kind: Mapped[str] = mapped_column(sa.String(20))
    #: the source's reference (project code, product id, agreement code, fund account)
    source_ref: Mapped[str | None] = mapped_column(sa.String(200))
    #: who created it
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.CheckConstraint(_in("source_kind", SOURCE_KINDS), name="source_kind"),)


class SharingRuleVersion(Base):
    """One version of a rule's definition (the split tree of `ledger.sharing.allocation`);
    immutable once a run has used it (`used_at` set)."""

    __tablename__ = "sharing_rule_versions"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the rule
    rule_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("sharing_rules.id"), index=True)
    #: 1, 2, ... per rule
    version: Mapped[int] = mapped_column(sa.Integer)
    #: the split tree (JSON), validated by `allocation.validate_rule`
    definition: Mapped[dict] = mapped_column(JSONDocument)
    #: SHA-256 of the canonical JSON of the definition
    definition_sha256: Mapped[str] = mapped_column(sa.String(64))
    #: when a run first used it (UTC); from then on it cannot change
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who created it
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.UniqueConstraint("rule_id", "version"),)


class SharingFund(Base):
    """A ledger fund account whose money benefit sharing distributes and traces (e.g. the
    forest compensation fund the thermal-power plants pay into)."""

    __tablename__ = "sharing_funds"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: code of the fund's CNY ledger account
    account_code: Mapped[str] = mapped_column(sa.String(100), unique=True)
    #: Chinese name
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: English name
    name_en: Mapped[str | None] = mapped_column(sa.String(200))
    #: total attributed to inflows so far, fen (also the row locked while attributing)
    attributed_fen: Mapped[int] = mapped_column(BigInt, default=0)
    #: who registered it
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SharingTreeProgramme(Base):
    """A single-tree carbon programme (单株碳汇): what a buyer pays per tree and year, and the
    caps on what a household may enrol. Data, never changed once created (a new price is a
    new programme)."""

    __tablename__ = "sharing_tree_programmes"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: unique code, e.g. WANGMO-2023
    code: Mapped[str] = mapped_column(sa.String(60), unique=True)
    #: Chinese name
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: English name
    name_en: Mapped[str | None] = mapped_column(sa.String(200))
    #: fen per tree and year (300 = 3 yuan in the published Wangmo programme)
    price_fen_per_tree_year: Mapped[int] = mapped_column(BigInt)
    #: most trees paid per household (450 in Wangmo)
    max_trees_per_household: Mapped[int] = mapped_column(sa.Integer)
    #: most trees paid per mu of the household's area (225 in Wangmo); 0 = no area cap
    max_trees_per_mu: Mapped[int] = mapped_column(sa.Integer)
    #: programme term in years (5 in Wangmo)
    term_years: Mapped[int] = mapped_column(sa.Integer)
    #: who created it
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SharingRun(Base):
    """A distribution of a fund by a rule version (prepared, then approved and paid by the
    finance bureau), or a single-tree purchase (paid by the buyer at once). Paid in one
    ledger batch: all lines or none. A paid distribution may be reversed (status
    `reversed`): every transaction of its batch reversed in the ledger, all or none."""

    __tablename__ = "sharing_runs"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: distribution or single_tree
    kind: Mapped[str] = mapped_column(sa.String(12))
    #: unique business reference, e.g. 2026-Q4-WANGMO: a second run with it is refused
    reference: Mapped[str] = mapped_column(sa.String(100), unique=True)
    #: the fund distributed (distribution)
    fund_id: Mapped[int | None] = mapped_column(BigInt, sa.ForeignKey("sharing_funds.id"),
                                                index=True)
    #: the rule version applied (distribution)
    rule_version_id: Mapped[int | None] = mapped_column(
        BigInt, sa.ForeignKey("sharing_rule_versions.id"))
    #: the single-tree programme (single_tree)
    programme_id: Mapped[int | None] = mapped_column(
        BigInt, sa.ForeignKey("sharing_tree_programmes.id"))
    #: the buyer (single_tree): named on every household's statement
    buyer_party_id: Mapped[int | None] = mapped_column(BigInt, _party())
    #: the ledger account debited: the fund's, or the buyer's
    payer_account_code: Mapped[str] = mapped_column(sa.String(100))
    #: years paid for (single_tree)
    years: Mapped[int | None] = mapped_column(sa.Integer)
    #: the amount distributed or paid, fen
    amount_fen: Mapped[int] = mapped_column(BigInt)
    #: the village collectives taking part (party ids, in order)
    collective_party_ids: Mapped[list] = mapped_column(JSONDocument)
    #: the register is read as of this local date
    record_date: Mapped[dt.date] = mapped_column(sa.Date)
    #: attribution window: inflows effective on or after this date (None: from the start)
    window_from: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: prepared, paid, cancelled or reversed
    status: Mapped[str] = mapped_column(sa.String(10), index=True)
    #: remarks shown on statements
    memo: Mapped[str | None] = mapped_column(sa.String(300))
    #: SHA-256 of what was asked (a second request with the same reference and the same
    #: body returns this run; with another body it is refused)
    request_sha256: Mapped[str] = mapped_column(sa.String(64))
    #: number of lines
    line_count: Mapped[int] = mapped_column(sa.Integer)
    #: SHA-256 of the lines (what the approver saw is what is paid)
    lines_sha256: Mapped[str] = mapped_column(sa.String(64))
    #: who prepared it
    prepared_by: Mapped[str] = mapped_column(sa.String(250))
    #: the preparer's token id (the four-eyes check compares tokens, not labels)
    prepared_token_id: Mapped[int | None] = mapped_column(BigInt)
    #: when (UTC)
    prepared_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who approved and paid it
    approved_by: Mapped[str | None] = mapped_column(sa.String(250))
    #: when it was paid (UTC)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: local date of the postings
    paid_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: the ledger batch that paid it
    ledger_batch_id: Mapped[int | None] = mapped_column(BigInt)
    #: who reversed the paid run (红字冲销; never its preparer), or None
    reversed_by: Mapped[str | None] = mapped_column(sa.String(250))
    #: when it was reversed (UTC)
    reversed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: local date of the reversing postings (the month a period report shows it in)
    reversed_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: why it was reversed (shown on the statements)
    reversal_reason: Mapped[str | None] = mapped_column(sa.String(500))
    #: [original transaction id, its reversal's id] for every transaction of the paying batch
    reversal_transaction_ids: Mapped[list | None] = mapped_column(JSONDocument)

    __table_args__ = (
        sa.CheckConstraint(_in("kind", RUN_KINDS), name="kind"),
        sa.CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
    )


class SharingRunLine(Base):
    """One recipient of a run: a named account, a collective or a household, with its
    amount (zero when its share rounds to nothing: listed, not posted)."""

    __tablename__ = "sharing_run_lines"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the run
    run_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("sharing_runs.id"))
    #: 1, 2, ... in the run's order
    line_no: Mapped[int] = mapped_column(sa.Integer)
    #: account, collective or household
    kind: Mapped[str] = mapped_column(sa.String(10))
    #: the recipient party (the account's owner for an account line)
    party_id: Mapped[int | None] = mapped_column(BigInt, index=True)
    #: the village collective the line belongs to (None for a part paid to a named account)
    village_party_id: Mapped[int | None] = mapped_column(BigInt, index=True)
    #: the ledger account credited
    account_code: Mapped[str] = mapped_column(sa.String(100))
    #: the rule part that paid it (label path), or the programme for a purchase
    part: Mapped[str] = mapped_column(sa.String(300))
    #: what the split was based on for this line (shares, trees ... as of the record date)
    basis_value: Mapped[int | None] = mapped_column(BigInt)
    #: amount, fen (>= 0)
    amount_fen: Mapped[int] = mapped_column(BigInt)
    #: the ledger transaction that paid it (None until paid, or for a zero line)
    transaction_id: Mapped[int | None] = mapped_column(BigInt)

    __table_args__ = (
        sa.UniqueConstraint("run_id", "line_no"),
        sa.CheckConstraint(_in("kind", LINE_KINDS), name="kind"),
        sa.CheckConstraint("amount_fen >= 0", name="amount_non_negative"),
    )


class SharingRunSource(Base):
    """What part of a distribution is attributed to one inflow of the fund (pro rata to what
    each inflow still had unattributed, largest remainder), fixed when the run is paid."""

    __tablename__ = "sharing_run_sources"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the distribution
    run_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("sharing_runs.id"), index=True)
    #: the ledger transaction that brought the money into the fund
    inflow_transaction_id: Mapped[int] = mapped_column(BigInt, index=True)
    #: the fund
    fund_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("sharing_funds.id"))
    #: attributed to this inflow, fen (> 0)
    amount_fen: Mapped[int] = mapped_column(BigInt)

    __table_args__ = (
        sa.UniqueConstraint("run_id", "inflow_transaction_id"),
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
    )


class SharingRunAttribution(Base):
    """The attribution matrix of a paid distribution (`allocation.attribution_matrix`: who
    received what of which source), computed once when the run is paid, so that the
    traceability queries read it instead of recomputing it over every line. Immutable."""

    __tablename__ = "sharing_run_attributions"

    #: the distribution
    run_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("sharing_runs.id"),
                                        primary_key=True)
    #: the columns: the run's sources (inflow transaction ids), ascending
    source_ids: Mapped[list] = mapped_column(JSONDocument)
    #: the rows: the run's lines, line_no 1 .. line_count (a line without amount is zeros)
    line_count: Mapped[int] = mapped_column(sa.Integer)
    #: the cells, fen: int64 little-endian, row-major (line_count x sources)
    matrix: Mapped[bytes] = mapped_column(sa.LargeBinary)
