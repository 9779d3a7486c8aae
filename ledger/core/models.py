"""Tables of the double-entry ledger core.

Conventions (TigerBeetle's, Modern Treasury's):

- a *posting* moves a positive integer `amount` of one asset into (`credit`) or out of
  (`debit`) one account; a *transaction* has two or more postings whose debits equal its
  credits per asset, so the sum of all balances of an asset is always zero;
- every account is credit-normal: balance = credits - debits. A party's holding grows with
  credits; an `external` account (the bank, the treasury, the issuing registry) goes negative
  as value enters the ledger from outside;
- transactions and postings are immutable (database triggers refuse UPDATE and DELETE);
  a correction is a reversal, a pending transfer is resolved by a second transaction
  (`post_pending`, `void_pending`, `expire_pending`) that references it;
- `ledger_balances` and `ledger_pending_holds` are materialised views of the postings kept
  in the same database transaction; tests prove they always equal the sums of postings.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecovalue.db import Base, BigInt, BigIntPK, JSONDocument, UTCDateTime, utcnow

#: asset kinds and the unit their integer amounts count
ASSET_KINDS = {"currency": "fen", "carbon_credit": "tCO2e"}
ACCOUNT_KINDS = ("holding", "fund", "escrow", "buffer", "retirement", "fee", "external")
DIRECTIONS = ("debit", "credit")
#: single-phase posted, the pending half of a two-phase transfer, and its three resolutions
PHASES = ("posted", "pending", "post_pending", "void_pending", "expire_pending")
RESOLUTION_PHASES = ("post_pending", "void_pending", "expire_pending")
PERIOD_STATUSES = ("open", "closed")

_FK = BigInt


def _in(values: tuple[str, ...] | Any) -> str:
    return "(" + ",".join(f"'{v}'" for v in values) + ")"


class LedgerAsset(Base):
    """What an amount counts: CNY in fen, or the credits of ONE carbon issuance batch in
    tonnes CO2e (batches and vintages are not fungible, so each is its own asset)."""

    __tablename__ = "ledger_assets"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: stable ASCII code used in the API, e.g. CNY or FCC-QXN-2023-0001
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: currency or carbon_credit
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: unit of the integer amounts: fen (currency) or tCO2e (carbon_credit)
    unit: Mapped[str] = mapped_column(sa.String(8))
    #: Chinese name, e.g. 人民币 or 望谟县林业碳汇 2023 年第 1 批
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    #: English name
    name_en: Mapped[str | None] = mapped_column(sa.String(200))
    #: carbon credits: the year the removals happened
    vintage_year: Mapped[int | None] = mapped_column(sa.Integer)
    #: carbon credits: the registry's reference of the issuance batch (serial block), unique
    batch_reference: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    #: carbon credits: reference of the project the batch was issued to
    project_reference: Mapped[str | None] = mapped_column(sa.String(100))
    #: further descriptive metadata (methodology, serial range, ...); never amounts
    attributes: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    #: who created it (audit label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(f"kind in {_in(ASSET_KINDS)}", name="kind"),
        sa.CheckConstraint(
            "(kind = 'currency' AND unit = 'fen' AND vintage_year IS NULL AND batch_reference "
            "IS NULL) OR (kind = 'carbon_credit' AND unit = 'tCO2e' AND vintage_year IS NOT NULL"
            " AND batch_reference IS NOT NULL)", name="kind_fields"),
    )


class LedgerAccount(Base):
    """An account of one party in one asset. `no_overdraft` (the guard) refuses any debit
    that would take the available balance (posted balance minus pending debits) below zero."""

    __tablename__ = "ledger_accounts"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: human-readable unique code, e.g. P12-HOLDING-CNY or FUND-FOREST-COMP
    code: Mapped[str] = mapped_column(sa.String(100), unique=True)
    #: display name
    name: Mapped[str] = mapped_column(sa.String(200))
    #: the owner (catalog party)
    party_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("parties.id"), index=True)
    #: the single asset this account holds
    asset_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("ledger_assets.id"), index=True)
    #: holding, fund, escrow, buffer, retirement, fee or external
    kind: Mapped[str] = mapped_column(sa.String(12), index=True)
    #: the no-overdraft guard; on for every kind but external unless set otherwise
    no_overdraft: Mapped[bool] = mapped_column(sa.Boolean)
    #: free descriptive metadata
    attributes: Mapped[dict] = mapped_column(JSONDocument, default=dict)
    #: who created it (audit label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: creation time (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    asset: Mapped[LedgerAsset] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (
        sa.CheckConstraint(f"kind in {_in(ACCOUNT_KINDS)}", name="kind"),
    )

    @property
    def asset_code(self) -> str:
        return self.asset.code


class LedgerBalance(Base):
    """Materialised running totals of one account, changed only together with the postings
    that explain them (and row-locked, in account-id order, while they change)."""

    __tablename__ = "ledger_balances"

    #: the account (one row per account, created with it)
    account_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("ledger_accounts.id"),
                                            primary_key=True)
    #: total of posted debits
    posted_debits: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: total of posted credits
    posted_credits: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: total of debits of pending transfers not yet resolved (reserved)
    pending_debits: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: total of credits of pending transfers not yet resolved (not yet available)
    pending_credits: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: latest effective date of any posted posting; an earlier-dated debit triggers a check
    #: of the balance history from that date on
    last_effective_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: +1 on every change
    version: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: last change (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("posted_debits >= 0 AND posted_credits >= 0 AND pending_debits >= 0"
                           " AND pending_credits >= 0", name="totals_not_negative"),
    )


class LedgerBatch(Base):
    """Many transactions posted in one request, all or nothing."""

    __tablename__ = "ledger_batches"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: how many transactions it holds
    transaction_count: Mapped[int] = mapped_column(sa.Integer)
    #: SHA-256 over the canonical content of its transactions and postings (also in the audit
    #: event), so that the batch's rows can be checked against the audit trail
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    #: free text
    memo: Mapped[str | None] = mapped_column(sa.String(500))
    #: who posted it (audit label)
    author: Mapped[str] = mapped_column(sa.String(250))
    #: when (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerTransaction(Base):
    """An immutable journal entry. Pending transfers and their resolutions are separate rows:
    the resolution's `pending_id` is unique, so a pending is resolved at most once."""

    __tablename__ = "ledger_transactions"

    #: surrogate key, also the order of entry
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: business type, e.g. transfer, deposit, issuance, retirement, fee, reversal (free
    #: lowercase vocabulary so that later packages add types without a migration)
    type: Mapped[str] = mapped_column(sa.String(40), index=True)
    #: posted, pending, post_pending, void_pending or expire_pending
    phase: Mapped[str] = mapped_column(sa.String(16))
    #: accounting date (local, Asia/Shanghai) in an open period
    effective_date: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    #: free text
    memo: Mapped[str | None] = mapped_column(sa.String(500))
    #: client metadata (references, invoice numbers ...)
    transaction_metadata: Mapped[dict | None] = mapped_column("metadata", JSONDocument)
    #: who entered it (audit label)
    author: Mapped[str] = mapped_column(sa.String(250))
    #: when it was entered (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the transaction this one reverses (at most one reversal per original)
    reverses_id: Mapped[int | None] = mapped_column(
        _FK, sa.ForeignKey("ledger_transactions.id"), unique=True)
    #: for a resolution: the pending transaction it posts, voids or expires (at most once)
    pending_id: Mapped[int | None] = mapped_column(
        _FK, sa.ForeignKey("ledger_transactions.id"), unique=True)
    #: for a pending transfer: after this instant (UTC) it can no longer be posted
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: the batch it was posted in, if any
    batch_id: Mapped[int | None] = mapped_column(_FK, sa.ForeignKey("ledger_batches.id"),
                                                 index=True)
    #: idempotency: whose key (`token:<id>` or the system label); NULL without a key
    idempotency_scope: Mapped[str | None] = mapped_column(sa.String(250))
    #: idempotency: the client's key
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))
    #: idempotency: SHA-256 of the canonical request, to tell a replay from a reuse
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (
        sa.CheckConstraint(f"phase in {_in(PHASES)}", name="phase"),
        sa.CheckConstraint(
            f"(phase in {_in(RESOLUTION_PHASES)}) = (pending_id IS NOT NULL)", name="resolution"),
        sa.CheckConstraint("phase = 'pending' OR expires_at IS NULL", name="expiry"),
        sa.CheckConstraint("(idempotency_key IS NULL) = (idempotency_scope IS NULL)",
                           name="idempotency"),
        sa.UniqueConstraint("idempotency_scope", "idempotency_key"),
    )


class LedgerPosting(Base):
    """One immutable leg of a transaction. Asset, effective date and phase are copied from
    the account and the transaction so that balances and statements need no join."""

    __tablename__ = "ledger_postings"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the transaction
    transaction_id: Mapped[int] = mapped_column(
        _FK, sa.ForeignKey("ledger_transactions.id"), index=True)
    #: the account
    account_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("ledger_accounts.id"))
    #: the account's asset
    asset_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("ledger_assets.id"))
    #: debit (out of the account) or credit (into it)
    direction: Mapped[str] = mapped_column(sa.String(6))
    #: positive integer in the asset's unit (fen, tCO2e)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    #: the transaction's effective date
    effective_date: Mapped[dt.date] = mapped_column(sa.Date)
    #: true for the legs of a pending transfer (they count as reserved, not posted)
    pending: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    __table_args__ = (
        sa.CheckConstraint(f"direction in {_in(DIRECTIONS)}", name="direction"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.Index("ix_ledger_postings_account_date", "account_id", "effective_date", "id"),
    )


class LedgerPendingHold(Base):
    """The open pending transfers (materialised): a row per pending transaction, deleted when
    it is posted, voided or expired. Deleting the row is what serialises racing resolutions."""

    __tablename__ = "ledger_pending_holds"

    #: the pending transaction
    transaction_id: Mapped[int] = mapped_column(
        _FK, sa.ForeignKey("ledger_transactions.id"), primary_key=True)
    #: copy of its expiry, indexed for the sweep; NULL = never expires
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)


class LedgerPeriod(Base):
    """A monthly accounting period; a month without a row is open."""

    __tablename__ = "ledger_periods"

    #: first day of the month (local date)
    month: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    #: open or closed
    status: Mapped[str] = mapped_column(sa.String(8))
    #: last close (UTC)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who closed it (audit label)
    closed_by: Mapped[str | None] = mapped_column(sa.String(250))
    #: last reopening (UTC)
    reopened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: who reopened it (audit label)
    reopened_by: Mapped[str | None] = mapped_column(sa.String(250))
    #: why it was last closed or reopened
    note: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        sa.CheckConstraint(f"status in {_in(PERIOD_STATUSES)}", name="status"),
    )


class LedgerBalanceAssertion(Base):
    """An expected posted balance of an account at the end of a date, recorded and checked
    (beancount's `balance` directive), for reconciliation."""

    __tablename__ = "ledger_balance_assertions"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the account
    account_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("ledger_accounts.id"),
                                            index=True)
    #: the date whose closing balance is asserted (local date)
    as_of: Mapped[dt.date] = mapped_column(sa.Date)
    #: expected balance (credits - debits) in the asset's unit
    expected_balance: Mapped[int] = mapped_column(sa.BigInteger)
    #: balance found at the last check
    actual_balance: Mapped[int] = mapped_column(sa.BigInteger)
    #: whether the last check matched
    passed: Mapped[bool] = mapped_column(sa.Boolean, index=True)
    #: free text, e.g. the bank statement reference
    memo: Mapped[str | None] = mapped_column(sa.String(500))
    #: who recorded it (audit label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: when it was recorded (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when it was last checked (UTC)
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
