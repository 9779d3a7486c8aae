"""`ledger verify` cross-checks postings against the audit trail (issue: on SQLite both legs
of a transaction changed by +100, with the balance rows adjusted, passed both `ledger verify`
and `audit verify` although the audit event still held the original amount)."""

from __future__ import annotations

import sqlalchemy as sa

from ecovalue.auth import system_principal
from ledger.core import services
from ledger.core.models import LedgerBalance, LedgerPosting, LedgerTransaction
from tests.conftest import tampering
from tests.ledger.conftest import NOW, transfer, verify

SYS = system_principal("test")


def run(database, fn):
    with database.unit_of_work() as s:
        return fn(s)


def _inflate(database, tx_id: int, by: int) -> None:
    """Add `by` to both legs of a transaction and to the balances, keeping every total
    consistent, as someone with write access to the database could."""
    with tampering(database) as s:
        for posting in s.scalars(sa.select(LedgerPosting).where(
                LedgerPosting.transaction_id == tx_id)).all():
            s.execute(sa.update(LedgerPosting).where(LedgerPosting.id == posting.id)
                      .values(amount=posting.amount + by))
            column = "posted_debits" if posting.direction == "debit" else "posted_credits"
            s.execute(sa.update(LedgerBalance).where(
                LedgerBalance.account_id == posting.account_id)
                .values({column: getattr(LedgerBalance, column) + by}))


def test_inflated_legs_with_adjusted_balances_are_found(world, database):
    tx = run(database, lambda s: services.create_transaction(
        s, SYS, transfer("BANK", "ALICE", 500), now=NOW))
    assert verify(database) == []
    _inflate(database, tx.id, 100)
    assert verify(database) == [f"transaction {tx.id}: postings differ from its audit event"]


def test_a_changed_batch_is_found(world, database):
    batch_id, ids = run(database, lambda s: services.post_batch(
        s, SYS, [transfer("BANK", "ALICE", 5), transfer("BANK", "PLANT", 7)], now=NOW))
    assert verify(database) == []
    with tampering(database) as s:
        s.execute(sa.update(LedgerTransaction).where(LedgerTransaction.id == ids[1])
                  .values(memo="not what was posted"))
    assert verify(database) == [
        f"batch {batch_id}: transactions or postings differ from the digest in its audit event"]
