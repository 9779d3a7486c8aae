"""Tables of bank and treasury reconciliation.

A statement (one ledger account, one month) holds the lines imported from the bank's files;
a run matches them against the ledger's movements of the account and keeps its findings
(`reconcile_items`), the decisions officers took on them, and, once signed off, is never
changed again. Money is integer fen, signed from the account's side (money in positive).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ecovalue.db import Base, BigInt, BigIntPK, JSONDocument, UTCDateTime, utcnow

RUN_STATUSES = ("open", "signed_off", "superseded")
ITEM_STATUSES = ("confirmed", "proposed", "open", "explained", "withdrawn")
ITEM_CATEGORIES = ("matched", "amount_mismatch", "outside_window", "duplicate",
                   "only_in_statement", "only_in_ledger")
SOURCES = ("bank", "treasury")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({','.join(repr(v) for v in values)})"


class ReconcileBankMapping(Base):
    """How one bank's statement files name their columns (saved once per bank)."""

    __tablename__ = "reconcile_bank_mappings"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: short ASCII code of the bank (ABC, CCB, TREASURY ...)
    bank_code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: the bank's name, Chinese
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: bank or treasury
    source: Mapped[str] = mapped_column(sa.String(12), default="bank")
    #: canonical field -> the header texts this bank uses for it
    columns: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    #: who saved it last, and when
    updated_by: Mapped[str] = mapped_column(sa.String(250))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.CheckConstraint(_in("source", SOURCES), name="source"),)


class ReconcileRuleSet(Base):
    """The ordered matching rules officers tune (one named set; each change is a new version)."""

    __tablename__ = "reconcile_rule_sets"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the set's name (`default` unless an officer keeps others)
    name: Mapped[str] = mapped_column(sa.String(40))
    #: 1, 2, ... per name; the highest is in force
    version: Mapped[int] = mapped_column(sa.Integer)
    #: the rules, in order (`ledger.reconcile.matching.validate_rules`)
    rules: Mapped[list] = mapped_column(JSONDocument)
    #: why it changed
    note: Mapped[str | None] = mapped_column(sa.String(500))
    created_by: Mapped[str] = mapped_column(sa.String(250))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.UniqueConstraint("name", "version"),)


class ReconcileStatement(Base):
    """A bank or treasury statement of one ledger account for one month."""

    __tablename__ = "reconcile_statements"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the ledger account the bank account mirrors (its code)
    account_code: Mapped[str] = mapped_column(sa.String(100))
    #: the month, as its first day
    period: Mapped[dt.date] = mapped_column(sa.Date)
    #: the bank whose column mapping reads its files
    bank_code: Mapped[str] = mapped_column(sa.String(40))
    #: balance at the start of the month, fen (as the bank states it)
    opening_balance_fen: Mapped[int] = mapped_column(sa.BigInteger)
    #: balance at the end of the month, fen (opening + every line)
    closing_balance_fen: Mapped[int] = mapped_column(sa.BigInteger)
    #: number of lines held
    line_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.UniqueConstraint("account_code", "period"),)


class ReconcileImport(Base):
    """One file read into a statement, with its validation report (kept even when refused)."""

    __tablename__ = "reconcile_imports"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    statement_id: Mapped[int | None] = mapped_column(
        BigInt, sa.ForeignKey("reconcile_statements.id"), index=True)
    account_code: Mapped[str] = mapped_column(sa.String(100))
    period: Mapped[dt.date] = mapped_column(sa.Date)
    bank_code: Mapped[str] = mapped_column(sa.String(40))
    #: the uploaded file's name and SHA-256
    filename: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    #: csv or xlsx; utf-8, gbk or xlsx
    format: Mapped[str] = mapped_column(sa.String(8))
    encoding: Mapped[str] = mapped_column(sa.String(8))
    #: accepted (lines stored) or refused (nothing stored)
    status: Mapped[str] = mapped_column(sa.String(10))
    rows_read: Mapped[int] = mapped_column(sa.Integer)
    lines_added: Mapped[int] = mapped_column(sa.Integer)
    #: lines already held from an earlier import of the same lines (not added again)
    lines_already_present: Mapped[int] = mapped_column(sa.Integer)
    #: the validation report: every bad line (row, field, code, message)
    problems: Mapped[list] = mapped_column(JSONDocument, default=list)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReconcileLine(Base):
    """A line of a statement (never changed once imported)."""

    __tablename__ = "reconcile_lines"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    statement_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("reconcile_statements.id"))
    import_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("reconcile_imports.id"))
    #: row number in the file it came from
    row_number: Mapped[int] = mapped_column(sa.Integer)
    #: value date (Asia/Shanghai)
    value_date: Mapped[dt.date] = mapped_column(sa.Date)
    #: money in positive, money out negative, fen
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    #: the balance the bank printed after the line, fen, when it did
    balance_fen: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: the bank's serial number of the line (流水号), when it has one
    bank_serial: Mapped[str | None] = mapped_column(sa.String(100))
    #: the payer's reference (附言 / 摘要 reference)
    reference: Mapped[str | None] = mapped_column(sa.String(200))
    #: a ledger transaction id the line names (column, or EV-n in its text)
    transaction_id: Mapped[int | None] = mapped_column(BigInt)
    #: the other party as the bank writes it
    counterparty: Mapped[str | None] = mapped_column(sa.String(200))
    memo: Mapped[str | None] = mapped_column(sa.String(500))
    #: SHA-256 of the line's content and its occurrence in the file: re-importing the same
    #: lines adds nothing
    fingerprint: Mapped[str] = mapped_column(sa.String(64))

    __table_args__ = (sa.UniqueConstraint("statement_id", "fingerprint"),
                      sa.Index("ix_reconcile_lines_statement_date", "statement_id",
                               "value_date"))


class ReconcileRun(Base):
    """A reconciliation of one account and month: the statement's lines against the ledger."""

    __tablename__ = "reconcile_runs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    statement_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("reconcile_statements.id"),
                                              index=True)
    account_code: Mapped[str] = mapped_column(sa.String(100))
    period: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    #: open (officers decide), signed_off (immutable), superseded (a newer run replaced it)
    status: Mapped[str] = mapped_column(sa.String(12), default="open")
    #: the rules it ran with (copied: a later change of the rules does not alter it)
    rules: Mapped[list] = mapped_column(JSONDocument)
    rule_set_version: Mapped[int] = mapped_column(sa.Integer)
    #: balances, fen: the ledger's at the day before the month and at its last day
    ledger_opening_fen: Mapped[int] = mapped_column(sa.BigInteger)
    ledger_closing_fen: Mapped[int] = mapped_column(sa.BigInteger)
    statement_opening_fen: Mapped[int] = mapped_column(sa.BigInteger)
    statement_closing_fen: Mapped[int] = mapped_column(sa.BigInteger)
    #: the ledger balance assertion recorded at sign-off (ledger.core.assert_balance)
    assertion_id: Mapped[int | None] = mapped_column(BigInt)
    prepared_by: Mapped[str] = mapped_column(sa.String(250))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    signed_off_by: Mapped[str | None] = mapped_column(sa.String(250))
    signed_off_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sign_off_note: Mapped[str | None] = mapped_column(sa.String(1000))

    __table_args__ = (sa.CheckConstraint(_in("status", RUN_STATUSES), name="status"),)


class ReconcileItem(Base):
    """A finding of a run: a match (lines and ledger transactions that pay each other) or a
    discrepancy, with what officers decided about it. A replaced finding stays (withdrawn)."""

    __tablename__ = "reconcile_items"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("reconcile_runs.id"), index=True)
    category: Mapped[str] = mapped_column(sa.String(20))
    #: the rule that made it (`manual` for an officer's match; none for a leftover)
    rule: Mapped[str | None] = mapped_column(sa.String(40))
    #: 1.0 for a certain match; lower for a proposal; none for a discrepancy
    confidence: Mapped[float | None] = mapped_column(sa.Float)
    #: confirmed, proposed (a match awaiting an officer), open (a discrepancy), explained,
    #: withdrawn (replaced by an officer's match or unmatch)
    status: Mapped[str] = mapped_column(sa.String(12))
    #: statement line ids and ledger transaction ids in it
    line_ids: Mapped[list] = mapped_column(JSONDocument, default=list)
    transaction_ids: Mapped[list] = mapped_column(JSONDocument, default=list)
    #: sum of its lines minus sum of its ledger movements, fen
    difference_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: days between its lines and ledger movements
    gap_days: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: for a duplicate: the line or transaction it repeats
    related_id: Mapped[int | None] = mapped_column(BigInt)
    #: why an officer matched, unmatched, confirmed or explained it
    reason: Mapped[str | None] = mapped_column(sa.String(1000))
    decided_by: Mapped[str | None] = mapped_column(sa.String(250))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.CheckConstraint(_in("status", ITEM_STATUSES), name="status"),
                      sa.CheckConstraint(_in("category", ITEM_CATEGORIES), name="category"))
