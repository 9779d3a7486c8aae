"""The staged batch path (`ledger.core.staged`) against the ordinary one: the same batch
gives the same postings, balances, headers and digest lines on both; every refusal is the
ordinary path's own (same exception, message and field errors) and writes nothing; the
staged path really posts the plain case (it does not quietly always fall back)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ecovalue.auth import system_principal
from ecovalue.auth.policy import Principal, Role
from ledger.core import errors as E
from ledger.core import posting, services, staged
from ledger.core.models import LedgerBalance, LedgerBatch, LedgerPosting, LedgerTransaction
from ledger.core.posting import PostingSpec, TransactionSpec
from tests.ledger.conftest import NOW, balance, count, fund, transfer, verify

SYS = system_principal("test")
TODAY = dt.date(2024, 3, 20)
#: the threshold as shipped (read before any test sets it)
SHIPPED_MIN_LEGS = staged.STAGED_MIN_LEGS


def run(database, fn):
    with database.unit_of_work() as s:
        return fn(s)


def _path(monkeypatch, which: str) -> None:
    """Send the next batches through `which` path; the staged one may not fall back."""
    if which == "ordinary":
        monkeypatch.setattr(staged, "STAGED_MIN_LEGS", 10**9)
        return
    monkeypatch.setattr(staged, "STAGED_MIN_LEGS", 1)

    def refuse(*args, **kwargs):
        raise AssertionError("the staged path fell back to the ordinary one")

    monkeypatch.setattr(posting, "write_batch", refuse)


def _snapshot(database, batch_id: int) -> dict:
    """A batch as stored, with its transactions numbered from 0 (ids differ between runs)."""
    with database.session(write=False) as s:
        txs = s.execute(sa.select(LedgerTransaction.id, LedgerTransaction.type,
                                  LedgerTransaction.phase, LedgerTransaction.effective_date,
                                  LedgerTransaction.memo, LedgerTransaction.transaction_metadata,
                                  LedgerTransaction.author)
                        .where(LedgerTransaction.batch_id == batch_id)
                        .order_by(LedgerTransaction.id)).all()
        number = {t[0]: i for i, t in enumerate(txs)}
        postings = s.execute(sa.select(LedgerPosting.transaction_id, LedgerPosting.account_id,
                                       LedgerPosting.asset_id, LedgerPosting.direction,
                                       LedgerPosting.amount, LedgerPosting.effective_date,
                                       LedgerPosting.pending)
                             .where(LedgerPosting.transaction_id.in_(list(number)))
                             .order_by(LedgerPosting.id)).all()
        batch = s.get(LedgerBatch, batch_id)
        assert batch is not None
        return {"transactions": [t[1:] for t in txs],
                "postings": [(number[p[0]], *p[1:]) for p in postings],
                "count": batch.transaction_count, "memo": batch.memo}


def _balances(database) -> dict:
    with database.session(write=False) as s:
        return {b.account_id: (b.posted_debits, b.posted_credits, b.pending_debits,
                               b.pending_credits, b.last_effective_date, b.version)
                for b in s.scalars(sa.select(LedgerBalance))}


def _delta(before: dict, after: dict) -> dict:
    return {a: (*(x - y for x, y in zip(after[a][:4], before[a][:4], strict=True)),
                after[a][4], after[a][5] - before[a][5])
            for a in after if after[a] != before[a]}


def _batch() -> list[TransactionSpec]:
    """Three transactions: ALICE pays PLANT and FUND in CNY, a carbon transfer, one more."""
    return [
        TransactionSpec(type="transfer", memo="一", metadata={"n": 1}, postings=[
            PostingSpec("ALICE", "CNY", "debit", 300), PostingSpec("PLANT", "CNY", "credit", 100),
            PostingSpec("FUND", "CNY", "credit", 150), PostingSpec("PLANT", "CNY", "credit", 50)]),
        transfer("ALICE-C", "PLANT-C", 7, asset="FCC-WM-2023-001"),
        transfer("PLANT", "FUND", 40, effective_date=TODAY),
    ]


def test_both_paths_store_the_same_batch(world, database, monkeypatch):
    fund(database, "ALICE", 1_000)
    fund(database, "ALICE-C", 20, asset="FCC-WM-2023-001", source="ISSUANCE")
    results = {}
    for which in ("ordinary", "staged"):
        _path(monkeypatch, which)
        before = _balances(database)
        batch_id, ids = run(database, lambda s: services.post_batch(s, SYS, _batch(), memo="m",
                                                                     now=NOW))
        assert len(ids) == 3 and ids == sorted(ids)
        results[which] = (_snapshot(database, batch_id), _delta(before, _balances(database)))
        monkeypatch.undo()
    assert results["staged"] == results["ordinary"]
    snapshot, delta = results["staged"]
    # hand-worked: ALICE -300 and -300 again, PLANT +150 - 40 twice, FUND +190 twice
    assert delta[world.accounts["ALICE"]][:2] == (300, 0)
    assert delta[world.accounts["PLANT"]][:2] == (40, 150)
    assert delta[world.accounts["FUND"]][:2] == (0, 190)
    assert [p[4] for p in snapshot["postings"]] == [300, 100, 150, 50, 7, 7, 40, 40]
    assert balance(database, "ALICE").balance == 400
    assert balance(database, "FUND").balance == 380
    assert verify(database) == []  # the digests of both batches recompute


def _refusal(database, specs, actor=SYS):
    with pytest.raises(Exception) as info:  # compared field by field by the caller
        run(database, lambda s: services.post_batch(s, actor, specs, now=NOW))
    exc = info.value
    return type(exc), str(exc), getattr(exc, "errors", None)


REFUSED = {
    "unknown account": lambda w: [transfer("ALICE", "PLANT", 1), transfer("ALICE", "NOPE", 1)],
    "asset mismatch": lambda w: [transfer("ALICE", "PLANT-C", 1)],
    "short": lambda w: [transfer("ALICE", "PLANT", 600), transfer("ALICE", "FUND", 600)],
    "future date": lambda w: [transfer("ALICE", "PLANT", 1,
                                       effective_date=TODAY + dt.timedelta(days=1))],
    "unbalanced": lambda w: [TransactionSpec(type="transfer", postings=[
        PostingSpec("ALICE", "CNY", "debit", 2), PostingSpec("PLANT", "CNY", "credit", 1)])],
    "bad amount": lambda w: [transfer("ALICE", "PLANT", 1.5)],
    "bad direction": lambda w: [TransactionSpec(type="transfer", postings=[
        PostingSpec("ALICE", "CNY", "debit", 1), PostingSpec("PLANT", "CNY", "up", 1)])],
    "range": lambda w: [transfer("ALICE", "PLANT", 2**62), transfer("ALICE", "PLANT", 2**62)],
    "back-dated": lambda w: [transfer("ALICE", "PLANT", 900,
                                      effective_date=TODAY - dt.timedelta(days=30))],
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_the_staged_path_refuses_as_the_ordinary_one(world, database, monkeypatch, case):
    fund(database, "ALICE", 1_000)  # today: a debit dated earlier is back-dated
    specs = REFUSED[case](world)
    monkeypatch.setattr(staged, "STAGED_MIN_LEGS", 10**9)
    ordinary = _refusal(database, specs)
    monkeypatch.setattr(staged, "STAGED_MIN_LEGS", 1)
    before = _balances(database)
    assert _refusal(database, specs) == ordinary
    assert _balances(database) == before and count(database, LedgerBatch) == 0


def test_a_back_dated_debit_that_stays_covered_is_posted_by_the_ordinary_path(
        world, database, monkeypatch):
    """The staged path hands a back-dated guarded debit over; the history check passes."""
    fund(database, "ALICE", 1_000, day=TODAY - dt.timedelta(days=40))
    fund(database, "ALICE", 1, day=TODAY)
    monkeypatch.setattr(staged, "STAGED_MIN_LEGS", 1)
    run(database, lambda s: services.post_batch(s, SYS, [transfer(
        "ALICE", "PLANT", 900, effective_date=TODAY - dt.timedelta(days=30))], now=NOW))
    assert balance(database, "ALICE").balance == 101 and verify(database) == []


def test_a_closed_period_is_refused_as_on_the_ordinary_path(world, database, monkeypatch):
    fund(database, "ALICE", 1_000, day=dt.date(2024, 2, 10))
    run(database, lambda s: services.close_period(s, SYS, dt.date(2024, 2, 1), now=NOW))
    specs = [transfer("ALICE", "PLANT", 1, effective_date=dt.date(2024, 2, 20))]
    monkeypatch.setattr(staged, "STAGED_MIN_LEGS", 10**9)
    ordinary = _refusal(database, specs)
    monkeypatch.setattr(staged, "STAGED_MIN_LEGS", 1)
    assert _refusal(database, specs) == ordinary
    assert ordinary[0] is E.PeriodClosed


def test_a_trader_debits_only_its_own_accounts_on_the_staged_path(world, database,
                                                                  monkeypatch):
    fund(database, "ALICE", 1_000)
    fund(database, "PLANT", 1_000)
    trader = Principal(role=Role.TRADER, label="t", token_id=3, party_id=world.plant)
    specs = [transfer("ALICE", "PLANT", 1)]
    monkeypatch.setattr(staged, "STAGED_MIN_LEGS", 10**9)
    ordinary = _refusal(database, specs, trader)
    _path(monkeypatch, "staged")
    assert _refusal(database, specs, trader) == ordinary
    _, ids = run(database, lambda s: services.post_batch(
        s, trader, [transfer("PLANT", "ALICE", 5)], now=NOW))  # its own: allowed, staged
    assert len(ids) == 1
    assert balance(database, "ALICE").balance == 1_005


def test_a_large_batch_takes_the_staged_path_by_default(world, database, monkeypatch):
    fund(database, "ALICE", 10**6)
    n = SHIPPED_MIN_LEGS // 2  # two legs each: exactly the threshold
    _path(monkeypatch, "staged")
    monkeypatch.setattr(staged, "STAGED_MIN_LEGS", SHIPPED_MIN_LEGS)
    _, ids = run(database, lambda s: services.post_batch(
        s, SYS, [transfer("ALICE", "PLANT", 3)] * n, now=NOW))
    assert len(ids) == n
    assert balance(database, "PLANT").balance == 3 * n
    assert balance(database, "ALICE").balance == 10**6 - 3 * n
    assert verify(database) == []
