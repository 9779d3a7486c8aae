"""The ledger's rules at the service layer, with hand-worked numbers."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ecovalue.audit.models import AuditEvent
from ecovalue.audit.services import verify_chain
from ecovalue.auth import system_principal
from ecovalue.auth.policy import Principal, Role
from ecovalue.errors import Forbidden, IdempotencyKeyReused
from ledger.core import errors as E
from ledger.core import services
from ledger.core.calendar import local_date
from ledger.core.models import (
    LedgerBatch,
    LedgerPendingHold,
    LedgerPosting,
    LedgerTransaction,
)
from ledger.core.posting import PostingSpec, TransactionSpec
from tests.ledger.conftest import NOW, balance, count, fund, transfer, verify

SYS = system_principal("test")
TODAY = local_date(NOW)


def run(database, fn):
    with database.unit_of_work() as s:
        return fn(s)


def create(database, spec, actor=SYS, now=NOW):
    return run(database, lambda s: services.create_transaction(s, actor, spec, now=now))


def test_transfer_moves_value_and_keeps_every_invariant(world, database):
    fund(database, "ALICE", 10_000)
    view = create(database, transfer("ALICE", "PLANT", 2_500, memo="payment"))
    assert (view.phase, view.status, view.effective_date) == ("posted", "posted", TODAY)
    assert balance(database, "ALICE").balance == 7_500
    assert balance(database, "PLANT").balance == 2_500
    assert balance(database, "BANK").balance == -10_000  # external: value came from outside
    assert verify(database) == []
    stored = run(database, lambda s: services.get_transaction(s, SYS, view.id))
    assert [(p.account_code, p.direction, p.amount) for p in stored.postings] == [
        ("ALICE", "debit", 2_500), ("PLANT", "credit", 2_500)]
    assert stored.author == "system:test" and stored.memo == "payment"


def test_multi_asset_transaction_balances_per_asset(world, database):
    """Delivery versus payment: credits one way, money the other, in one transaction."""
    fund(database, "PLANT", 50_000)
    fund(database, "ALICE-C", 100, asset="FCC-WM-2023-001", source="ISSUANCE")
    view = create(database, TransactionSpec(type="trade", postings=[
        PostingSpec("ALICE-C", "FCC-WM-2023-001", "debit", 40),
        PostingSpec("PLANT-C", "FCC-WM-2023-001", "credit", 40),
        PostingSpec("PLANT", "CNY", "debit", 40 * 1_250),
        PostingSpec("ALICE", "CNY", "credit", 40 * 1_250)]))
    assert len(view.postings) == 4
    assert balance(database, "PLANT-C").balance == 40
    assert balance(database, "ALICE").balance == 50_000
    assert verify(database) == []


def test_guard_refuses_overdraft_and_writes_nothing(world, database):
    fund(database, "ALICE", 1_000)
    before = count(database, LedgerTransaction), count(database, AuditEvent)
    with pytest.raises(E.InsufficientBalance) as info:
        create(database, transfer("ALICE", "PLANT", 1_001))
    assert "short by 1 CNY" in info.value.detail
    assert (count(database, LedgerTransaction), count(database, AuditEvent)) == before
    assert balance(database, "ALICE").balance == 1_000


def test_external_and_unguarded_accounts_may_go_negative(world, database):
    create(database, transfer("BANK", "FUND", 5))
    assert balance(database, "BANK").balance == -5
    run(database, lambda s: services.create_account(s, SYS, party_id=world.alice, asset="CNY",
                                                     kind="holding", code="CREDIT-LINE",
                                                     no_overdraft=False))
    create(database, transfer("CREDIT-LINE", "ALICE", 7))
    assert balance(database, "CREDIT-LINE").balance == -7


@pytest.mark.parametrize("spec, error", [
    (TransactionSpec("transfer", [PostingSpec("ALICE", "CNY", "debit", 5),
                                  PostingSpec("PLANT", "CNY", "credit", 4)]),
     E.UnbalancedTransaction),
    (transfer("ALICE", "NOPE", 5), E.UnknownAccount),
    (transfer("ALICE", 999_999, 5), E.UnknownAccount),
    (TransactionSpec("transfer", [PostingSpec("ALICE", "CNY", "debit", 5),
                                  PostingSpec("PLANT-C", "CNY", "credit", 5)]), E.AssetMismatch),
    (transfer("ALICE", "PLANT", 0), E.InvalidAmount),
    (transfer("ALICE", "PLANT", -5), E.InvalidAmount),
    (transfer("ALICE", "PLANT", 1.5), E.InvalidAmount),
    (transfer("ALICE", "PLANT", 1.0), E.InvalidAmount),
    (transfer("ALICE", "PLANT", "1"), E.InvalidAmount),
    (transfer("ALICE", "PLANT", True), E.InvalidAmount),
    (transfer("ALICE", "PLANT", 2**63), E.InvalidAmount),
    (TransactionSpec("transfer", [PostingSpec("ALICE", "CNY", "debit", 2**62),
                                  PostingSpec("ALICE", "CNY", "debit", 2**62),
                                  PostingSpec("PLANT", "CNY", "credit", 2**62),
                                  PostingSpec("PLANT", "CNY", "credit", 2**62)]),
     E.InvalidAmount),
    (TransactionSpec("transfer", [PostingSpec("ALICE", "CNY", "debit", 5)]),
     E.InvalidTransaction),
    (transfer("ALICE", "PLANT", 5, type="Bad Type"), E.InvalidTransaction),
    (transfer("ALICE", "PLANT", 5, type="reversal"), E.InvalidTransaction),
    (transfer("ALICE", "PLANT", 5, effective_date=TODAY + dt.timedelta(days=1)),
     E.EffectiveDateInFuture),
    (transfer("ALICE", "PLANT", 5, expires_at=NOW + dt.timedelta(hours=1)),
     E.InvalidTransaction),
    (transfer("ALICE", "PLANT", 5, pending=True, expires_at=NOW), E.InvalidTransaction),
])
def test_bad_input_is_refused_with_a_named_error_and_nothing_written(world, database, spec,
                                                                     error):
    fund(database, "ALICE", 1_000)
    before = count(database, LedgerPosting), count(database, AuditEvent)
    with pytest.raises(error) as info:
        create(database, spec)
    assert info.value.errors and info.value.errors[0]["field"]
    assert (count(database, LedgerPosting), count(database, AuditEvent)) == before
    assert verify(database) == []


def test_all_errors_are_listed_at_once(world, database):
    spec = TransactionSpec("transfer", [PostingSpec("ALICE", "CNY", "debit", 1.5),
                                        PostingSpec("NOPE", "CNY", "credit", 0)])
    with pytest.raises(E.InvalidAmount) as info:
        create(database, spec)
    fields = [e["field"] for e in info.value.errors]
    assert fields == ["postings.0.amount", "postings.1.amount", "postings.1.account"]


def test_a_balance_cannot_overflow_64_bits(world, database):
    create(database, transfer("BANK", "ALICE", 2**63 - 1))
    with pytest.raises(E.AmountOutOfRange):
        create(database, transfer("BANK", "ALICE", 1))
    assert verify(database) == []


def test_trader_may_debit_only_its_own_accounts(world, database):
    fund(database, "PLANT", 1_000)
    fund(database, "ALICE", 1_000)
    trader = Principal(role=Role.TRADER, label="token:9:plant", token_id=9, party_id=world.plant)
    create(database, transfer("PLANT", "ALICE", 300), actor=trader)  # paying others is fine
    with pytest.raises(E.AccountNotOwned):
        create(database, transfer("ALICE", "PLANT", 300), actor=trader)
    auditor = Principal(role=Role.AUDITOR, label="token:8:a", token_id=8)
    with pytest.raises(Forbidden):
        create(database, transfer("BANK", "ALICE", 1), actor=auditor)
    assert balance(database, "PLANT").balance == 700


# --- reversals -------------------------------------------------------------------------------


def test_reversal_nets_the_original_to_zero_and_only_once(world, database):
    fund(database, "ALICE", 1_000)
    original = create(database, transfer("ALICE", "PLANT", 400))
    reversal = run(database, lambda s: services.reverse_transaction(s, SYS, original.id, now=NOW))
    assert reversal.type == "reversal" and reversal.reverses_id == original.id
    assert [(p.account_code, p.direction, p.amount) for p in reversal.postings] == [
        ("ALICE", "credit", 400), ("PLANT", "debit", 400)]
    assert balance(database, "ALICE").balance == 1_000 and balance(database, "PLANT").balance == 0
    shown = run(database, lambda s: services.get_transaction(s, SYS, original.id))
    assert shown.reversed_by_id == reversal.id
    with pytest.raises(E.AlreadyReversed):
        run(database, lambda s: services.reverse_transaction(s, SYS, original.id, now=NOW))
    with pytest.raises(E.NotReversible):
        run(database, lambda s: services.reverse_transaction(s, SYS, reversal.id, now=NOW))
    with pytest.raises(E.TransactionNotFound):
        run(database, lambda s: services.reverse_transaction(s, SYS, 424242, now=NOW))
    assert verify(database) == []


def test_reversal_is_guarded_too(world, database):
    fund(database, "ALICE", 1_000)
    original = create(database, transfer("ALICE", "PLANT", 400))
    create(database, transfer("PLANT", "FUND", 400))  # the payee spent it
    with pytest.raises(E.InsufficientBalance):
        run(database, lambda s: services.reverse_transaction(s, SYS, original.id, now=NOW))


def test_reversal_date_not_before_original(world, database):
    fund(database, "ALICE", 1_000)
    original = create(database, transfer("ALICE", "PLANT", 400))
    with pytest.raises(E.EffectiveDateTooEarly):
        run(database, lambda s: services.reverse_transaction(
            s, SYS, original.id, effective_date=TODAY - dt.timedelta(days=1), now=NOW))


# --- two-phase transfers ---------------------------------------------------------------------


def test_pending_reserves_then_posts_once(world, database):
    fund(database, "ALICE", 1_000)
    pending = create(database, transfer("ALICE", "PLANT", 600, pending=True))
    b = balance(database, "ALICE")
    assert (b.balance, b.pending_debits, b.available) == (1_000, 600, 400)
    assert balance(database, "PLANT").pending_credits == 600
    # the reservation cannot be spent twice
    with pytest.raises(E.InsufficientBalance):
        create(database, transfer("ALICE", "FUND", 401))
    posted = run(database, lambda s: services.post_pending(s, SYS, pending.id, now=NOW))
    assert (posted.phase, posted.pending_id) == ("post_pending", pending.id)
    b = balance(database, "ALICE")
    assert (b.balance, b.pending_debits, b.available) == (400, 0, 400)
    assert balance(database, "PLANT").balance == 600
    shown = run(database, lambda s: services.get_transaction(s, SYS, pending.id, now=NOW))
    assert (shown.status, shown.resolved_by_id) == ("posted", posted.id)
    for again in (services.post_pending, services.void_pending):
        with pytest.raises(E.PendingAlreadyResolved):
            run(database, lambda s, f=again: f(s, SYS, pending.id, now=NOW))
    with pytest.raises(E.NotReversible):
        run(database, lambda s: services.reverse_transaction(s, SYS, pending.id, now=NOW))
    # the posted half is an ordinary movement that can be reversed
    run(database, lambda s: services.reverse_transaction(s, SYS, posted.id, now=NOW))
    assert balance(database, "ALICE").balance == 1_000
    assert verify(database) == []


def test_void_releases_the_reservation(world, database):
    fund(database, "ALICE", 1_000)
    pending = create(database, transfer("ALICE", "PLANT", 600, pending=True))
    voided = run(database, lambda s: services.void_pending(s, SYS, pending.id, now=NOW))
    assert voided.phase == "void_pending" and voided.postings == []
    assert balance(database, "ALICE").available == 1_000
    assert balance(database, "PLANT").pending_credits == 0
    with pytest.raises(E.NotPending):
        run(database, lambda s: services.post_pending(s, SYS, voided.id, now=NOW))
    assert verify(database) == []


def test_expired_pending_cannot_be_posted_and_releases_its_reservation(world, database):
    fund(database, "ALICE", 1_000)
    pending = create(database, transfer("ALICE", "PLANT", 600, pending=True,
                                        expires_at=NOW + dt.timedelta(hours=1)))
    later = NOW + dt.timedelta(hours=2)
    shown = run(database, lambda s: services.get_transaction(s, SYS, pending.id, now=later))
    assert shown.status == "expired"
    with pytest.raises(E.PendingExpired):
        run(database, lambda s: services.post_pending(s, SYS, pending.id, now=later))
    # spending the account sweeps the expired reservation first
    create(database, transfer("ALICE", "FUND", 1_000), now=later)
    assert balance(database, "ALICE").pending_debits == 0
    shown = run(database, lambda s: services.get_transaction(s, SYS, pending.id, now=later))
    assert shown.status == "expired" and shown.resolved_by_id is not None
    assert count(database, LedgerPendingHold) == 0
    assert verify(database) == []


def test_expiry_sweep(world, database):
    fund(database, "ALICE", 1_000)
    ids = [create(database, transfer("ALICE", "PLANT", 100, pending=True,
                                     expires_at=NOW + dt.timedelta(minutes=m))).id
           for m in (10, 20, 30)]
    swept = run(database, lambda s: services.expire_pendings(
        s, SYS, now=NOW + dt.timedelta(minutes=25)))
    assert swept == ids[:2]
    assert balance(database, "ALICE").pending_debits == 100
    assert verify(database) == []


# --- dates, periods, history -----------------------------------------------------------------


def test_balance_as_of_a_date_and_statement(world, database):
    march = [dt.date(2024, 3, d) for d in (1, 5, 10)]
    fund(database, "ALICE", 10_000, day=march[0])
    create(database, transfer("ALICE", "PLANT", 2_500, effective_date=march[1]))
    create(database, transfer("PLANT", "ALICE", 1_000, effective_date=march[2]))
    assert balance(database, "ALICE", dt.date(2024, 2, 29)).balance == 0
    assert balance(database, "ALICE", march[0]).balance == 10_000
    assert balance(database, "ALICE", march[1]).balance == 7_500
    assert balance(database, "ALICE", march[2]).balance == 8_500
    st = run(database, lambda s: services.statement(s, SYS, "ALICE", date_from=march[1],
                                                    date_to=march[2], now=NOW))
    assert (st.opening_balance, st.closing_balance) == (10_000, 8_500)
    assert [(line.debit, line.credit, line.balance) for line in st.lines] == [
        (2_500, 0, 7_500), (0, 1_000, 8_500)]
    assert (st.total_debits, st.total_credits) == (2_500, 1_000)


def test_party_balances(world, database):
    fund(database, "ALICE", 300)
    fund(database, "ALICE-C", 7, asset="FCC-WM-2023-001", source="ISSUANCE")
    rows, totals = run(database, lambda s: services.party_balances(s, SYS, world.alice))
    assert totals == {"CNY": 300, "FCC-WM-2023-001": 7}
    assert {r.account_code for r in rows} == {"ALICE", "ALICE-C"}


def test_back_dated_debit_may_not_overdraw_history(world, database):
    """ALICE receives 1,000 on 10 March. A debit dated 5 March would make her balance
    negative from 5 to 9 March, although today's balance would cover it."""
    fund(database, "ALICE", 1_000, day=dt.date(2024, 3, 10))
    with pytest.raises(E.InsufficientBalance) as info:
        create(database, transfer("ALICE", "PLANT", 400, effective_date=dt.date(2024, 3, 5)))
    assert "2024-03-05" in info.value.detail
    create(database, transfer("ALICE", "PLANT", 400, effective_date=dt.date(2024, 3, 12)))
    assert verify(database) == []


def test_closed_period_refuses_postings_until_reopened(world, database):
    fund(database, "ALICE", 1_000, day=dt.date(2024, 2, 10))
    period = run(database, lambda s: services.close_period(s, SYS, dt.date(2024, 2, 1),
                                                            note="Feb signed off", now=NOW))
    assert period.status == "closed"
    with pytest.raises(E.PeriodClosed):
        create(database, transfer("ALICE", "PLANT", 10, effective_date=dt.date(2024, 2, 20)))
    with pytest.raises(E.PeriodAlreadyClosed):
        run(database, lambda s: services.close_period(s, SYS, dt.date(2024, 2, 1), now=NOW))
    create(database, transfer("ALICE", "PLANT", 10, effective_date=dt.date(2024, 3, 1)))
    run(database, lambda s: services.reopen_period(s, SYS, dt.date(2024, 2, 1), now=NOW))
    create(database, transfer("ALICE", "PLANT", 10, effective_date=dt.date(2024, 2, 20)))
    with pytest.raises(E.PeriodNotClosed):
        run(database, lambda s: services.reopen_period(s, SYS, dt.date(2024, 2, 1), now=NOW))
    with pytest.raises(Exception, match="has not begun"):
        run(database, lambda s: services.close_period(s, SYS, dt.date(2024, 4, 1), now=NOW))
    actions = run(database, lambda s: list(s.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.action.like("ledger.period.%")).order_by(AuditEvent.seq))))
    assert actions == ["ledger.period.close", "ledger.period.reopen"]
    trader = Principal(role=Role.TRADER, label="t", token_id=3, party_id=world.plant)
    with pytest.raises(Forbidden):
        run(database, lambda s: services.close_period(s, trader, dt.date(2024, 1, 1), now=NOW))


def test_balance_assertions_record_pass_and_fail(world, database):
    fund(database, "ALICE", 1_000, day=dt.date(2024, 3, 1))
    ok = run(database, lambda s: services.assert_balance(
        s, SYS, "ALICE", as_of=dt.date(2024, 3, 1), expected_balance=1_000, now=NOW))
    bad = run(database, lambda s: services.assert_balance(
        s, SYS, "ALICE", as_of=dt.date(2024, 2, 28), expected_balance=1_000, now=NOW))
    assert ok.passed and not bad.passed and bad.actual_balance == 0
    # a back-dated deposit makes the failed assertion pass on recheck
    fund(database, "ALICE", 1_000, day=dt.date(2024, 2, 1))
    checked = run(database, lambda s: services.recheck_assertions(s, SYS, now=NOW))
    assert [a.passed for a in checked] == [False, True]  # 1 March is now 2,000, 28 Feb 1,000


# --- idempotency at the service layer --------------------------------------------------------


def test_service_idempotency_key(world, database):
    fund(database, "ALICE", 1_000)
    spec = transfer("ALICE", "PLANT", 100, idempotency_key="pay-1")
    first = create(database, spec)
    again = create(database, spec, now=NOW + dt.timedelta(days=1))
    assert again.replayed and again.id == first.id
    assert balance(database, "ALICE").balance == 900
    with pytest.raises(IdempotencyKeyReused):
        create(database, transfer("ALICE", "PLANT", 101, idempotency_key="pay-1"))
    other = Principal(role=Role.FINANCE, label="token:77:finance", token_id=77)
    create(database, spec, actor=other)  # another caller's key space
    assert balance(database, "ALICE").balance == 800


# --- batches ---------------------------------------------------------------------------------


def test_batch_is_all_or_nothing(world, database):
    fund(database, "ALICE", 1_000)
    good = [transfer("ALICE", "PLANT", 100) for _ in range(5)]
    _batch_id, ids = run(database, lambda s: services.post_batch(s, SYS, good, memo="x", now=NOW))
    assert len(ids) == 5 and ids == sorted(ids)
    assert balance(database, "PLANT").balance == 500
    bad = [transfer("ALICE", "PLANT", 100), transfer("ALICE", "NOPE", 1),
           transfer("ALICE", "PLANT", 1.5)]
    with pytest.raises(E.UnknownAccount) as info:
        run(database, lambda s: services.post_batch(s, SYS, bad, now=NOW))
    assert [e["field"] for e in info.value.errors] == ["transactions.1.postings.1.account",
                                                       "transactions.2.postings.0.amount",
                                                       "transactions.2.postings.1.amount"]
    with pytest.raises(E.InsufficientBalance):
        run(database, lambda s: services.post_batch(
            s, SYS, [transfer("ALICE", "PLANT", 300)] * 2, now=NOW))
    assert count(database, LedgerBatch) == 1
    assert balance(database, "PLANT").balance == 500
    events = run(database, lambda s: s.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "ledger.batch.post")).all())
    assert len(events) == 1 and events[0].after["transaction_count"] == 5
    assert verify(database) == []


def test_batch_guard_is_checked_on_the_end_state(world, database):
    """B has nothing; A pays B and B pays C in one batch: fine as a whole."""
    fund(database, "ALICE", 100)
    run(database, lambda s: services.post_batch(
        s, SYS, [transfer("PLANT", "FUND", 100), transfer("ALICE", "PLANT", 100)], now=NOW))
    assert balance(database, "FUND").balance == 100
    assert verify(database) == []


# --- audit and immutability ------------------------------------------------------------------


def test_every_change_is_audited_and_the_chain_holds(world, database):
    fund(database, "ALICE", 1_000)
    tx = create(database, transfer("ALICE", "PLANT", 5, pending=True))
    run(database, lambda s: services.post_pending(s, SYS, tx.id, now=NOW))
    actions = run(database, lambda s: list(s.scalars(sa.select(AuditEvent.action)
                                                     .order_by(AuditEvent.seq))))
    assert actions.count("ledger.account.create") == 8
    assert actions[-3:] == ["ledger.transaction.create", "ledger.pending.create",
                            "ledger.pending.post"]
    assert run(database, verify_chain).ok


def test_transactions_and_postings_are_immutable_in_postgresql(world, database):
    if database.dialect != "postgresql":
        pytest.skip("the triggers are PostgreSQL DDL; SQLite has no equivalent guard here")
    fund(database, "ALICE", 1_000)
    for statement in ("UPDATE ledger_postings SET amount = 1",
                      "DELETE FROM ledger_postings",
                      "UPDATE ledger_transactions SET memo = 'x'",
                      "DELETE FROM ledger_transactions"):
        with pytest.raises(sa.exc.IntegrityError, match="immutable"), \
                database.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert balance(database, "ALICE").balance == 1_000
