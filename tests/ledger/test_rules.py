"""The ledger's rules without a database: validation collects every error, totals move as
the legs say, the guard and the back-dating rule, digests, the closed-period rule."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from ecovalue.errors import BadRequest
from ledger.core import errors as E
from ledger.core import rules
from ledger.core.rules import AccountRow, PostingSpec, Prepared, Totals, TransactionSpec

NOW = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)  # 2026-12-01 07:30 in Shanghai
TODAY = dt.date(2026, 12, 1)
BANK = AccountRow(1, "BANK", 10, "external", False, 1, "CNY")
FUND = AccountRow(2, "FUND", 11, "fund", True, 1, "CNY")
PLANT = AccountRow(3, "PLANT", 12, "holding", True, 1, "CNY")
CREDITS = AccountRow(4, "C-2024", 12, "holding", True, 2, "CC-2024")
ACCOUNTS = {a.id: a for a in (BANK, FUND, PLANT, CREDITS)} | {
    a.code: a for a in (BANK, FUND, PLANT, CREDITS)}


def spec(*legs, **kw) -> TransactionSpec:
    return TransactionSpec(type=kw.pop("type", "transfer"),
                           postings=[PostingSpec(*leg) for leg in legs], **kw)


def transfer(debit, credit, amount, asset="CNY", **kw) -> TransactionSpec:
    return spec((debit, asset, "debit", amount), (credit, asset, "credit", amount), **kw)


def validate(*specs, batch=False):
    return rules.validate(specs, ACCOUNTS, today=TODAY, now=NOW, batch=batch)


def test_a_valid_transfer_resolves_accounts_by_id_and_code():
    [p] = validate(transfer("BANK", 3, 500))
    assert p.legs == [(BANK, "debit", 500), (PLANT, "credit", 500)]
    assert p.effective_date == TODAY and p.phase == "posted" and p.debited == {1: BANK}


def test_every_error_is_collected_and_the_first_decides_the_code():
    bad = spec(("NOPE", "CNY", "debit", 1.5), ("FUND", "USD", "credit", 0), ("PLANT", "CNY",
               "sideways", 5), type="Bad Type", memo="x" * 501,
               effective_date=dt.date(2026, 12, 2))
    with pytest.raises(E.InvalidTransaction) as caught:
        validate(bad)
    fields = [e["field"] for e in caught.value.errors]
    assert fields == ["type", "memo", "effective_date", "postings.0.amount", "postings.0.account",
                      "postings.1.amount", "postings.1.asset", "postings.2.direction"]


@pytest.mark.parametrize("specs, error, field", [
    ([transfer("BANK", "FUND", 100)], None, None),
    ([spec(("BANK", "CNY", "debit", 100), ("FUND", "CNY", "credit", 99))],
     E.UnbalancedTransaction, "postings"),
    ([spec(("BANK", "CNY", "debit", 100))], E.InvalidTransaction, "postings"),
    ([transfer("BANK", "FUND", 100, type="reversal")], E.InvalidTransaction, "type"),
    ([transfer("BANK", "FUND", 100, idempotency_key="é")], BadRequest, "idempotency_key"),
    ([transfer("BANK", "FUND", 100, expires_at=NOW + dt.timedelta(hours=1))],
     E.InvalidTransaction, "expires_at"),
    ([transfer("BANK", "FUND", 100, pending=True, expires_at=NOW)],
     E.InvalidTransaction, "expires_at"),
    ([transfer("BANK", "FUND", 2**62), transfer("BANK", "FUND", 2**62)], None, None),
    ([spec(("BANK", "CNY", "debit", 2**62), ("BANK", "CNY", "debit", 2**62),
           ("FUND", "CNY", "credit", 2**62), ("FUND", "CNY", "credit", 2**62))],
     E.InvalidAmount, "postings"),
])
def test_validation_table(specs, error, field):
    if error is None:
        assert len(validate(*specs)) == len(specs)
        return
    with pytest.raises(error) as caught:
        validate(*specs)
    assert caught.value.errors[0]["field"] == field


def test_batch_errors_name_the_transaction():
    with pytest.raises(E.UnknownAccount) as caught:
        validate(transfer("BANK", "FUND", 1), transfer("BANK", "GHOST", 1), batch=True)
    assert [e["field"] for e in caught.value.errors] == ["transactions.1.postings.1.account"]


def test_a_follow_up_may_not_predate_its_original():
    follow = TransactionSpec(type="reversal", postings=[], effective_date=dt.date(2026, 11, 1))
    with pytest.raises(E.EffectiveDateTooEarly):
        rules.validate_follow_up(follow, today=TODAY, now=NOW, not_before=dt.date(2026, 11, 2))
    assert rules.validate_follow_up(follow, today=TODAY, now=NOW,
                                    not_before=dt.date(2026, 11, 1)) == dt.date(2026, 11, 1)


def totals(**balances) -> dict[int, Totals]:
    """account id -> Totals with `posted_credits` = the given balance."""
    return {ACCOUNTS[code].id: Totals(0, amount, 0, 0, None, 0) for code, amount in
            balances.items()}


def test_legs_move_posted_and_pending_totals():
    t = totals(BANK=0, FUND=1_000)
    legs = [(FUND, "debit", 300), (BANK, "credit", 300)]
    rules.apply_legs(t, legs, pending=True, effective_date=TODAY)
    assert (t[2].pending_debits, t[2].available, t[1].pending_credits) == (300, 700, 300)
    rules.release_legs(t, [(2, "debit", 300), (1, "credit", 300)])
    rules.apply_legs(t, legs, pending=False, effective_date=TODAY)
    assert (t[2].posted_debits, t[2].pending_debits, t[2].available) == (300, 0, 700)
    assert t[2].last_effective_date == TODAY and t[2].changed


def test_the_guard_refuses_what_would_go_below_zero_and_names_every_short_account():
    t = totals(FUND=100, PLANT=50, BANK=0)
    rules.apply_legs(t, [(FUND, "debit", 101), (PLANT, "debit", 51), (BANK, "credit", 152)],
                     pending=False, effective_date=TODAY)
    with pytest.raises(E.InsufficientBalance) as caught:
        rules.check_guards(t, {2: FUND, 3: PLANT, 1: BANK})
    assert [e["message"] for e in caught.value.errors] == [
        "account FUND would be short by 1 CNY", "account PLANT would be short by 1 CNY"]
    rules.check_guards(t, {1: BANK})  # external accounts go negative as value enters


def test_running_totals_stay_in_64_bits():
    t = {2: Totals(0, rules.MAX_AMOUNT, 0, 0, None, 0, changed=True)}
    rules.check_range(t)
    t[2].posted_credits += 1
    with pytest.raises(E.AmountOutOfRange):
        rules.check_range(t)


def test_backdated_debits_are_found_against_stored_and_same_write_dates():
    early, late = dt.date(2026, 11, 10), dt.date(2026, 11, 20)
    debit = Prepared(spec=transfer("FUND", "BANK", 1), effective_date=early,
                     legs=[(FUND, "debit", 1), (BANK, "credit", 1)])
    assert rules.backdated_debits([debit], {2: late}) == {2: (FUND, early)}
    assert rules.backdated_debits([debit], {2: early}) == {}
    later = Prepared(spec=transfer("BANK", "FUND", 1), effective_date=late,
                     legs=[(BANK, "debit", 1), (FUND, "credit", 1)])
    assert rules.backdated_debits([debit, later], {2: None}) == {2: (FUND, early)}
    pending = Prepared(spec=debit.spec, effective_date=early, legs=debit.legs, phase="pending")
    assert rules.backdated_debits([pending], {2: late}) == {}


def test_first_negative_day_of_a_running_balance():
    days = [(dt.date(2026, 11, d), delta) for d, delta in ((1, -50), (2, -60), (3, 200))]
    assert rules.first_negative(100, days) == (dt.date(2026, 11, 2), -10)
    assert rules.first_negative(110, days) is None


def test_closed_months_are_refused_and_named():
    rules.refuse_closed([])
    with pytest.raises(E.PeriodClosed) as caught:
        rules.refuse_closed([dt.date(2026, 11, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)])
    assert "2026-10, 2026-11" in caught.value.detail
    moved = Prepared(spec=transfer("BANK", "FUND", 1), effective_date=dt.date(2026, 11, 30),
                     legs=[(BANK, "debit", 1), (FUND, "credit", 1)])
    void = Prepared(spec=moved.spec, effective_date=dt.date(2026, 10, 3), legs=[],
                    phase="void_pending")
    assert rules.months_posted([moved, void]) == {dt.date(2026, 11, 1)}


def test_digests_are_canonical():
    a = transfer("BANK", "FUND", 100, memo="补偿", metadata={"b": 1, "a": 2})
    b = transfer("BANK", "FUND", 100, memo="补偿", metadata={"a": 2, "b": 1})
    assert a.request_hash() == b.request_hash() != transfer("BANK", "FUND", 101).request_hash()
    # the documented form: sorted keys, no spaces, UTF-8 (not \u escapes)
    assert rules.digest({"y": [1], "x": "补偿"}) == hashlib.sha256(
        '{"x":"补偿","y":[1]}'.encode()).hexdigest()
    assert rules.batch_digest([(1, None, "a")]) == rules.batch_digest([(1, "", "a")])
    assert rules.batch_digest([(1, "a")]) != rules.batch_digest([(1, "b")])
