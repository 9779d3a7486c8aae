"""The look-up of a write (`ledger.core.store.look_up`): on PostgreSQL the SQL function
`ledger_write_look_up` (migration l0002), on SQLite the store's prebuilt statement. Both are
checked here against the same Python statement of each rule, on the same cases, so that
neither can drift from the rules the ledger applies in Python (`ledger.core.rules`,
`ledger.core.views`): a period is closed iff its row says so (`rules.refuse_closed` refuses
exactly those), a hold has expired iff `expires_at <= now` (the boundary `views` and
`_resolve` use), only the expired holds debiting a guarded account the write debits are
released (oldest first, at most EXPIRED_HOLDS_PER_WRITE), and a key is free, held by a
transaction (replay or 409) or held by another route (409)."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools

import pytest
import sqlalchemy as sa

from ecovalue import idempotency
from ecovalue.auth import system_principal
from ledger.core import rules, services, store
from ledger.core.calendar import local_date
from ledger.core.errors import PeriodClosed
from ledger.core.models import LedgerPendingHold, LedgerPeriod
from tests.ledger.conftest import NOW, fund, transfer

SYS = system_principal("test")
MONTHS = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]


def _look_up(database, refs, debited, *, months=(), key=None, request_hash=None, now=NOW):
    with database.session() as s:
        result = store.look_up(s, refs, debited, now=now, scope="token:7", key=key,
                               request_hash=request_hash, months=months)
        s.rollback()
    return result


@pytest.mark.parametrize("closed", [set(), {MONTHS[0]}, {MONTHS[0], MONTHS[2]}, set(MONTHS)])
@pytest.mark.parametrize("asked", [MONTHS[:1], MONTHS[1:], MONTHS])
def test_closed_months_are_exactly_those_closed_among_those_asked(world, database, closed,
                                                                  asked):
    with database.unit_of_work() as s:
        for month in MONTHS:  # a row for every month: closed ones and reopened ones
            s.add(LedgerPeriod(month=month, status="closed" if month in closed else "open"))
    found = _look_up(database, ["ALICE"], ["ALICE"], months=asked)
    assert sorted(found.closed) == sorted(m for m in asked if m in closed)  # the Python rule
    with pytest.raises(PeriodClosed) if found.closed else contextlib.nullcontext():
        rules.refuse_closed(found.closed)


def test_accounts_balances_and_unknown_references(world, database):
    fund(database, "ALICE", 1_000)
    found = _look_up(database, ["ALICE", world.accounts["PLANT"], "NOPE", 10**6], ["ALICE"])
    assert {a for a in found.accounts if isinstance(a, str)} == {"ALICE", "PLANT"}
    alice = found.accounts["ALICE"]
    assert found.accounts[alice.id] is alice and alice.asset_code == "CNY"
    assert alice.no_overdraft is True and found.accounts["PLANT"].kind == "holding"
    assert found.locked is not None
    totals = found.locked[alice.id]
    assert (totals.posted_credits, totals.posted_debits, totals.pending_debits) == (1_000, 0, 0)
    assert totals.version >= 1 and totals.last_effective_date == local_date(NOW)


def test_expired_holds_follow_the_rules_boundary_and_guard(world, database):
    fund(database, "ALICE", 10_000)
    fund(database, "PLANT", 10_000)
    expiry = NOW + dt.timedelta(hours=1)
    pendings = {}
    with database.unit_of_work() as s:
        for name, (debit, credit) in {"alice": ("ALICE", "PLANT"), "plant": ("PLANT", "ALICE"),
                                      "bank": ("BANK", "ALICE")}.items():
            pendings[name] = services.create_transaction(
                s, SYS, transfer(debit, credit, 10, pending=True, expires_at=expiry),
                now=NOW).id
    holds = _holds(database)
    for now in (expiry - dt.timedelta(microseconds=1), expiry, expiry + dt.timedelta(days=1)):
        for debited in (["ALICE"], ["PLANT"], ["ALICE", "PLANT"], ["BANK"], []):
            found = _look_up(database, debited, debited, now=now)
            guarded = {world.accounts[c] for c in debited if c != "BANK"}
            # the Python statement of the rule, on the stored holds
            expected = sorted(tx for tx, (expires_at, debits) in holds.items()
                              if expires_at is not None and expires_at <= now
                              and debits & guarded)[:store.EXPIRED_HOLDS_PER_WRITE]
            assert found.expired == expected, (now, debited)
    assert pendings["bank"] not in _look_up(database, ["BANK"], ["BANK"],
                                            now=expiry + dt.timedelta(days=1)).expired


def _holds(database) -> dict[int, tuple[dt.datetime | None, set[int]]]:
    with database.session(write=False) as s:
        holds = dict(s.execute(sa.select(LedgerPendingHold.transaction_id,
                                         LedgerPendingHold.expires_at)).all())
        legs = store.pending_legs(s, holds)
    return {tx: (expires_at, {a for a, d, _ in legs[tx] if d == "debit"})
            for tx, expires_at in holds.items()}


def test_at_most_the_oldest_expired_holds_are_released_per_write(world, database,
                                                                 monkeypatch):
    fund(database, "ALICE", 10_000)
    expiry = NOW + dt.timedelta(minutes=1)
    with database.unit_of_work() as s:
        ids = [services.create_transaction(
            s, SYS, transfer("ALICE", "PLANT", 1, pending=True, expires_at=expiry),
            now=NOW).id for _ in range(5)]
    monkeypatch.setattr(store, "EXPIRED_HOLDS_PER_WRITE", 3)
    assert _look_up(database, ["ALICE"], ["ALICE"], now=expiry).expired == sorted(ids)[:3]


KEYS = itertools.count()


def test_a_key_is_free_held_by_a_transaction_or_held_by_another_route(world, database):
    fund(database, "ALICE", 1_000)
    free = f"free-{next(KEYS)}"
    found = _look_up(database, ["ALICE"], ["ALICE"], key=free, request_hash="h")
    assert found.found is None and found.accounts
    with database.unit_of_work() as s:  # the system principal's scope is its label
        tx = services.create_transaction(
            s, SYS, transfer("ALICE", "PLANT", 1, idempotency_key=f"used-{next(KEYS)}"),
            now=NOW)
    used_key = tx.idempotency_key
    with database.session(write=False) as s:
        request_hash = s.scalar(sa.select(store.TX.c.request_hash)
                                .where(store.TX.c.id == tx.id))
    with database.session() as s:
        held = store.look_up(s, ["ALICE"], ["ALICE"], now=NOW, scope="system:test",
                             key=used_key, request_hash="other")
    assert held.found == (tx.id, request_hash)
    other_route = f"route-{next(KEYS)}"
    with database.unit_of_work() as s:
        assert idempotency.claim(s, "token:7", other_route, "h", NOW)
    assert _look_up(database, ["ALICE"], ["ALICE"], key=other_route,
                    request_hash="h").found == (None, None)
    # the claim made by a free key's look-up is the write's: it stays only if the write commits
    assert _look_up(database, ["ALICE"], ["ALICE"], key=free, request_hash="h").found is None


def test_the_original_of_a_follow_up_carries_its_legs_and_its_reversal(world, database):
    """`store.original` reads a reversal's or a resolution's original with its legs and its
    reversal in one statement: the same legs, in posting order, as `store.pending_legs`, and
    the same reversal as `store.reversal_of`, before and after the reversal, for a pending
    and for an unknown id."""
    fund(database, "ALICE", 100)
    with database.unit_of_work() as s:
        posted = services.create_transaction(s, SYS, rules.TransactionSpec("transfer", [
            rules.PostingSpec("ALICE", "CNY", "debit", 7),
            rules.PostingSpec("PLANT", "CNY", "credit", 3),
            rules.PostingSpec("ESCROW", "CNY", "credit", 4)]), now=NOW).id
        pending = services.create_transaction(
            s, SYS, transfer("ALICE", "PLANT", 5, pending=True), now=NOW).id

    def agrees(tx_id: int) -> store.Original:
        with database.session() as s:
            found = store.original(s, tx_id)
            assert found is not None and found.row.id == tx_id
            assert found.legs == store.pending_legs(s, [tx_id])[tx_id]
            assert found.reversed_by == store.reversal_of(s, tx_id)
            s.rollback()
        return found

    assert [d for _, d, _ in agrees(posted).legs] == ["debit", "credit", "credit"]
    assert agrees(posted).reversed_by is None
    assert agrees(pending).legs and agrees(pending).reversed_by is None
    with database.unit_of_work() as s:
        reversal = services.reverse_transaction(s, SYS, posted, now=NOW).id
    assert agrees(posted).reversed_by == reversal
    assert agrees(reversal).reversed_by is None
    with database.session() as s:
        assert store.original(s, 10**12) is None
