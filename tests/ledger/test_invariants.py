"""Hypothesis stateful test: random transfers, pendings (post, void, expiry), reversals,
replays and period closes against the service layer, next to an independent model.

After every step: every asset sums to zero; no guarded account is below zero; the
materialised balances equal the postings and the model; the balance as of each date used so
far equals the model's sum of postings up to that date; a replay changed nothing; every
reversal nets its original to zero.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections import defaultdict

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from catalog.services import load_reference_regions
from ecovalue.auth import system_principal
from ecovalue.errors import EcovalueError
from ledger.core import errors as E
from ledger.core import services
from ledger.core.calendar import local_date, month_of
from ledger.core.models import LedgerPosting
from ledger.core.posting import PostingSpec, TransactionSpec
from tests.conftest import wipe
from tests.ledger.conftest import make_party

ACTOR = system_principal("hypothesis")
START = dt.datetime(2024, 3, 20, 4, 0, tzinfo=dt.UTC)
CASH, CREDITS = "CNY", "FCC-T-2023-1"
#: code -> (asset, guarded)
ACCOUNTS = {"EXT": (CASH, False), "A": (CASH, True), "B": (CASH, True), "C": (CASH, True),
            "ESC": (CASH, True), "ISS": (CREDITS, False), "A-C": (CREDITS, True),
            "B-C": (CREDITS, True)}
CASH_ACCOUNTS = [c for c, (a, _) in ACCOUNTS.items() if a == CASH]
CREDIT_ACCOUNTS = [c for c, (a, _) in ACCOUNTS.items() if a == CREDITS]
DATABASE = None  # set by the test function (Hypothesis machines take no fixtures)


@dataclasses.dataclass
class Pending:
    id: int
    legs: list[tuple[str, str, int]]  # (code, direction, amount)
    expires_at: dt.datetime | None


class Model:
    """What the ledger should contain, computed without the ledger's code."""

    def __init__(self) -> None:
        self.posted: dict[str, list[tuple[dt.date, int]]] = defaultdict(list)
        self.pending: dict[int, Pending] = {}
        self.closed: set[dt.date] = set()

    def balance(self, code: str, as_of: dt.date | None = None) -> int:
        return sum(delta for day, delta in self.posted[code] if as_of is None or day <= as_of)

    def pending_totals(self, code: str) -> tuple[int, int]:
        debits = sum(a for p in self.pending.values() for c, d, a in p.legs
                     if c == code and d == "debit")
        credits = sum(a for p in self.pending.values() for c, d, a in p.legs
                      if c == code and d == "credit")
        return debits, credits

    def available(self, code: str) -> int:
        return self.balance(code) - self.pending_totals(code)[0]

    def history_ok(self, code: str, day: dt.date, delta: int) -> bool:
        """Would adding `delta` on `day` keep every as-of balance from `day` on >= 0?"""
        entries = sorted([*self.posted[code], (day, delta)])
        days = sorted({d for d, _ in entries if d >= day})
        return all(sum(x for d, x in entries if d <= when) >= 0 for when in days)

    def expired_debiting(self, codes: set[str], now: dt.datetime) -> list[int]:
        return [p.id for p in self.pending.values()
                if p.expires_at is not None and p.expires_at <= now
                and any(c in codes and d == "debit" for c, d, _ in p.legs)]


def signed(direction: str, amount: int) -> int:
    return amount if direction == "credit" else -amount


class LedgerMachine(RuleBasedStateMachine):
    posted = Bundle("posted")
    keyed = Bundle("keyed")
    pendings = Bundle("pendings")

    def __init__(self) -> None:
        super().__init__()
        self.db = DATABASE
        wipe(self.db)
        with self.db.unit_of_work() as s:
            load_reference_regions(s)
            owner = make_party(s, "测试村", "village_collective")
            services.create_asset(s, ACTOR, code=CASH, kind="currency", name_zh="人民币")
            services.create_asset(s, ACTOR, code=CREDITS, kind="carbon_credit", name_zh="碳汇",
                                  vintage_year=2023, batch_reference="T-2023-1")
            for code, (asset, guarded) in ACCOUNTS.items():
                services.create_account(s, ACTOR, party_id=owner, asset=asset, code=code,
                                        kind="holding" if guarded else "external")
        self.owner = owner
        self.clock = START
        self.model = Model()
        self.reversals: list[tuple[int, int]] = []
        self.keys = itertools.count(1)
        # opening balances, dated before anything the rules do
        opening = START.date() - dt.timedelta(days=90)
        for code in ("A", "B", "C"):
            spec = TransactionSpec("deposit", [PostingSpec("EXT", CASH, "debit", 2_000),
                                               PostingSpec(code, CASH, "credit", 2_000)],
                                   effective_date=opening)
            self.call(lambda s, spec=spec: services.create_transaction(s, ACTOR, spec,
                                                                       now=self.clock))
            self.apply([("EXT", "debit", 2_000), (code, "credit", 2_000)], opening)

    # --- helpers -----------------------------------------------------------------------------

    @property
    def today(self) -> dt.date:
        return local_date(self.clock)

    def call(self, fn):
        with self.db.unit_of_work() as s:
            return fn(s)

    def balances(self, s, as_of=None):
        rows, _ = services.party_balances(s, ACTOR, self.owner, as_of=as_of)
        return {r.account_code: r for r in rows}

    def snapshot(self):
        with self.db.session(write=False) as s:
            return (s.scalar(sa.select(sa.func.count()).select_from(LedgerPosting)),
                    self.balances(s))

    def expect_refusal(self, fn, error):
        before = self.snapshot()
        try:
            self.call(fn)
        except error:
            pass
        else:  # pragma: no cover - a failure of the ledger
            raise AssertionError(f"expected {error.__name__}")
        assert self.snapshot() == before, "a refused request changed the ledger"

    def sweep_model(self, debited: set[str]) -> None:
        for tx_id in self.model.expired_debiting(
                {c for c in debited if ACCOUNTS[c][1]}, self.clock):
            del self.model.pending[tx_id]

    def predict(self, legs, day: dt.date, *, pending: bool) -> type[Exception] | None:
        """The error the ledger must raise for these legs, or None."""
        if month_of(day) in self.model.closed:
            return E.PeriodClosed
        saved = dict(self.model.pending)
        self.sweep_model({c for c, d, _ in legs if d == "debit"})
        error = None
        for code in {c for c, d, _ in legs if d == "debit"}:
            if not ACCOUNTS[code][1]:
                continue
            net = sum(signed(d, a) for c, d, a in legs if c == code)
            debit = sum(a for c, d, a in legs if c == code and d == "debit")
            if pending:
                if self.model.available(code) - debit < 0:
                    error = E.InsufficientBalance
            elif self.model.available(code) + net < 0 or not self.model.history_ok(code, day,
                                                                                    net):
                error = E.InsufficientBalance
        self.model.pending = saved
        return error

    def apply(self, legs, day: dt.date) -> None:
        self.sweep_model({c for c, d, _ in legs if d == "debit"})
        for code, direction, amount in legs:
            self.model.posted[code].append((day, signed(direction, amount)))

    # --- rules -------------------------------------------------------------------------------

    @rule(target=posted, data=st.data(), credits=st.booleans(),
          amount=st.integers(min_value=1, max_value=400), days_back=st.integers(0, 45),
          keyed=st.booleans())
    def transfer(self, data, credits, amount, days_back, keyed):
        codes = CREDIT_ACCOUNTS if credits else CASH_ACCOUNTS
        source = data.draw(st.sampled_from(codes))
        target = data.draw(st.sampled_from([c for c in codes if c != source]))
        asset = CREDITS if credits else CASH
        day = self.today - dt.timedelta(days=days_back)
        key = f"k{next(self.keys)}" if keyed else None
        spec = TransactionSpec("transfer", [PostingSpec(source, asset, "debit", amount),
                                            PostingSpec(target, asset, "credit", amount)],
                               effective_date=day, idempotency_key=key)
        legs = [(source, "debit", amount), (target, "credit", amount)]
        error = self.predict(legs, day, pending=False)
        if error is not None:
            self.expect_refusal(lambda s: services.create_transaction(s, ACTOR, spec,
                                                                      now=self.clock), error)
            return None
        view = self.call(lambda s: services.create_transaction(s, ACTOR, spec, now=self.clock))
        self.apply(legs, day)
        if key:
            self.keyed_specs = getattr(self, "keyed_specs", {})
            self.keyed_specs[view.id] = spec
        return view.id

    @precondition(lambda self: self.model.pending)
    @rule(data=st.data(), amount=st.integers(1, 300), let_it_expire=st.booleans())
    def spend_from_reserved_account(self, data, amount, let_it_expire):
        """Spend from an account with a reservation, possibly after it expired (expired
        reservations are released before the guard is checked)."""
        pending = data.draw(st.sampled_from(sorted(self.model.pending)))
        source = self.model.pending[pending].legs[0][0]
        expires_at = self.model.pending[pending].expires_at
        if let_it_expire and expires_at is not None and expires_at > self.clock:
            self.clock = expires_at + dt.timedelta(seconds=1)
        spec = TransactionSpec("payment", [PostingSpec(source, CASH, "debit", amount),
                                           PostingSpec("C" if source != "C" else "B", CASH,
                                                       "credit", amount)])
        legs = [(source, "debit", amount), (spec.postings[1].account, "credit", amount)]
        error = self.predict(legs, self.today, pending=False)
        if error is not None:
            self.expect_refusal(lambda s: services.create_transaction(s, ACTOR, spec,
                                                                      now=self.clock), error)
            return
        self.call(lambda s: services.create_transaction(s, ACTOR, spec, now=self.clock))
        self.apply(legs, self.today)

    @rule(amount=st.integers(1, 5_000), to=st.sampled_from(["A", "B", "C"]))
    def deposit(self, amount, to):
        legs = [("EXT", "debit", amount), (to, "credit", amount)]
        if self.predict(legs, self.today, pending=False) is E.PeriodClosed:
            return
        spec = TransactionSpec("deposit", [PostingSpec("EXT", CASH, "debit", amount),
                                           PostingSpec(to, CASH, "credit", amount)])
        self.call(lambda s: services.create_transaction(s, ACTOR, spec, now=self.clock))
        self.apply(legs, self.today)

    @rule(amount=st.integers(1, 200), to=st.sampled_from(["A-C", "B-C"]))
    def issue_credits(self, amount, to):
        legs = [("ISS", "debit", amount), (to, "credit", amount)]
        if self.predict(legs, self.today, pending=False) is E.PeriodClosed:
            return
        spec = TransactionSpec("issuance", [PostingSpec("ISS", CREDITS, "debit", amount),
                                            PostingSpec(to, CREDITS, "credit", amount)])
        self.call(lambda s: services.create_transaction(s, ACTOR, spec, now=self.clock))
        self.apply(legs, self.today)

    @rule(target=pendings, source=st.sampled_from(["A", "B", "C"]),
          amount=st.integers(1, 800), expires_in=st.none() | st.integers(1, 4 * 24 * 60))
    def reserve(self, source, amount, expires_in):
        expires_at = self.clock + dt.timedelta(minutes=expires_in) if expires_in else None
        spec = TransactionSpec("settlement", [PostingSpec(source, CASH, "debit", amount),
                                              PostingSpec("ESC", CASH, "credit", amount)],
                               pending=True, expires_at=expires_at)
        legs = [(source, "debit", amount), ("ESC", "credit", amount)]
        error = self.predict(legs, self.today, pending=True)
        if error is not None:
            self.expect_refusal(lambda s: services.create_transaction(s, ACTOR, spec,
                                                                      now=self.clock), error)
            return None
        view = self.call(lambda s: services.create_transaction(s, ACTOR, spec, now=self.clock))
        self.sweep_model({source})
        self.model.pending[view.id] = Pending(view.id, legs, expires_at)
        return view.id

    @rule(target=posted, pending_id=consumes(pendings))
    def post(self, pending_id):
        if pending_id is None:
            return None
        p = self.model.pending.get(pending_id)
        if p is None:
            self.expect_refusal(lambda s: services.post_pending(s, ACTOR, pending_id,
                                                                now=self.clock),
                                E.PendingAlreadyResolved)
            return None
        if p.expires_at is not None and p.expires_at <= self.clock:
            self.expect_refusal(lambda s: services.post_pending(s, ACTOR, pending_id,
                                                                now=self.clock), E.PendingExpired)
            return None
        if month_of(self.today) in self.model.closed:
            self.expect_refusal(lambda s: services.post_pending(s, ACTOR, pending_id,
                                                                now=self.clock), E.PeriodClosed)
            return None
        view = self.call(lambda s: services.post_pending(s, ACTOR, pending_id, now=self.clock))
        del self.model.pending[pending_id]
        for code, direction, amount in p.legs:
            self.model.posted[code].append((self.today, signed(direction, amount)))
        return view.id

    @rule(pending_id=consumes(pendings))
    def void(self, pending_id):
        if pending_id is None:
            return
        p = self.model.pending.get(pending_id)
        if p is None:
            error = E.PendingAlreadyResolved
        elif p.expires_at is not None and p.expires_at <= self.clock:
            error = E.PendingExpired
        else:
            self.call(lambda s: services.void_pending(s, ACTOR, pending_id, now=self.clock))
            del self.model.pending[pending_id]
            return
        self.expect_refusal(lambda s: services.void_pending(s, ACTOR, pending_id,
                                                            now=self.clock), error)

    @rule(minutes=st.integers(1, 3 * 24 * 60))
    def advance_clock(self, minutes):
        self.clock += dt.timedelta(minutes=minutes)

    @rule()
    def sweep(self):
        expired = self.call(lambda s: services.expire_pendings(s, ACTOR, now=self.clock))
        expected = sorted(p.id for p in self.model.pending.values()
                          if p.expires_at is not None and p.expires_at <= self.clock)
        assert expired == expected
        for tx_id in expired:
            del self.model.pending[tx_id]

    @rule(tx_id=consumes(posted))
    def reverse(self, tx_id):
        if tx_id is None:
            return
        with self.db.session(write=False) as s:
            original = services.get_transaction(s, ACTOR, tx_id)
        legs = [(p.account_code, "credit" if p.direction == "debit" else "debit", p.amount)
                for p in original.postings]
        error = self.predict(legs, self.today, pending=False)
        if error is not None:
            self.expect_refusal(lambda s: services.reverse_transaction(s, ACTOR, tx_id,
                                                                       now=self.clock), error)
            return
        view = self.call(lambda s: services.reverse_transaction(s, ACTOR, tx_id, now=self.clock))
        self.apply(legs, self.today)
        self.reversals.append((tx_id, view.id))
        self.expect_refusal(lambda s: services.reverse_transaction(s, ACTOR, tx_id,
                                                                   now=self.clock),
                            E.AlreadyReversed)
        self.expect_refusal(lambda s: services.reverse_transaction(s, ACTOR, view.id,
                                                                   now=self.clock),
                            E.NotReversible)

    @precondition(lambda self: getattr(self, "keyed_specs", None))
    @rule(data=st.data())
    def replay(self, data):
        tx_id = data.draw(st.sampled_from(sorted(self.keyed_specs)))
        spec = self.keyed_specs[tx_id]
        before = self.snapshot()
        view = self.call(lambda s: services.create_transaction(s, ACTOR, spec, now=self.clock))
        assert view.replayed and view.id == tx_id
        assert self.snapshot() == before, "a replay changed the ledger"
        changed = dataclasses.replace(spec, memo="different")
        self.expect_refusal(lambda s: services.create_transaction(s, ACTOR, changed,
                                                                  now=self.clock), EcovalueError)

    @rule(months_back=st.integers(0, 2))
    def close_or_reopen(self, months_back):
        month = month_of(self.today)
        for _ in range(months_back):
            month = month_of(month - dt.timedelta(days=1))
        if month in self.model.closed:
            self.call(lambda s: services.reopen_period(s, ACTOR, month, now=self.clock))
            self.model.closed.discard(month)
        else:
            self.call(lambda s: services.close_period(s, ACTOR, month, now=self.clock))
            self.model.closed.add(month)

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def ledger_is_consistent(self):
        with self.db.session(write=False) as s:
            assert services.verify(s, ACTOR) == []  # sums, guards, totals = postings, holds
            totals = defaultdict(int)
            balances = self.balances(s)
            for code, (asset, guarded) in ACCOUNTS.items():
                b = balances[code]
                debits, credits = self.model.pending_totals(code)
                assert (b.balance, b.pending_debits, b.pending_credits) == (
                    self.model.balance(code), debits, credits), code
                if guarded:
                    assert b.balance >= 0 and b.available >= 0
                totals[asset] += b.balance
            assert all(total == 0 for total in totals.values())

    @invariant()
    def balance_as_of_equals_postings_up_to_that_date(self):
        days = sorted({d for entries in self.model.posted.values() for d, _ in entries})
        probe = days[:1] + days[-2:] + [START.date() - dt.timedelta(days=60)]
        with self.db.session(write=False) as s:
            for day in probe:
                for code, b in self.balances(s, as_of=day).items():
                    assert b.balance == self.model.balance(code, day), (code, day)

    @invariant()
    def reversals_net_to_zero(self):
        if not self.reversals:
            return
        ids = [i for pair in self.reversals for i in pair]
        with self.db.session(write=False) as s:
            net = defaultdict(int)
            for view in services.load_views(s, ids):
                for p in view.postings:
                    net[p.account_id] += signed(p.direction, p.amount)
            assert all(v == 0 for v in net.values())


@pytest.mark.shared_database
def test_ledger_invariants_hold_under_random_operations(database):
    global DATABASE
    DATABASE = database
    try:
        run_state_machine_as_test(LedgerMachine, settings=settings(
            max_examples=10 if database.dialect == "postgresql" else 15,
            stateful_step_count=25, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    finally:
        wipe(database)
        with database.unit_of_work() as s:
            load_reference_regions(s)
