"""Reversing a paid distribution (红字冲销): every ledger transaction of it, all or none, never
by its preparer, once; the traceability, statements, period totals and verify understand it.

The hand-worked run (the world's fund holds 300,000.00 from plant A and 200,000.00 from plant
B): 100,000.00 yuan by the Sanming 30/70 rule to Dalang (3 households) and Xinhe (2), split
between the villages by households 3:2 -> 60,000.00 and 40,000.00; in each village 30 % to the
collective and 70 % to the villagers by shares. Dalang: collective 18,000.00, wei (2 shares)
21,000.00, luo and huang (1 share each) 10,500.00; Xinhe: collective 12,000.00, cen (1 share)
7,000.00, li (3 shares) 21,000.00. The run is attributed to the inflows 3:2 (60,000.00 to
plant A's payment, 40,000.00 to plant B's), so wei's 21,000.00 came 12,600.00 from A and
8,400.00 from B.
"""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
import sqlalchemy as sa
import time_machine

from ecovalue.audit.models import AuditEvent
from ecovalue.auth import Principal
from ecovalue.auth.policy import Role
from ecovalue.errors import Forbidden, ValidationFailed
from ledger import core
from ledger.sharing import errors
from ledger.sharing.models import SharingAccount, SharingFund, SharingRule, SharingRun
from ledger.sharing.services import reversal, runs, statements, totals, trace, verify
from tests.ledger.sharing.conftest import ADMIN, APPROVER, NOW, PREPARER, finance, transfer
from tests.ledger.sharing.test_services import _prepare, _rule

TODAY = dt.date(2025, 3, 20)  # NOW in Shanghai
REVIEWER = finance("token:3 reviewer", 3)


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _paid(database, world, amount=100_000_00, reference="R1") -> int:
    with database.unit_of_work() as s:
        if s.scalar(sa.select(SharingRule.id).where(SharingRule.code == "SANMING")) is None:
            _rule(s)
        run_id = _prepare(s, world, amount=amount, reference=reference).id
    with database.unit_of_work() as s:
        runs.approve_run(s, APPROVER, run_id)
    return run_id


def _balance(s, code: str) -> int:
    return core.account_balance(s, ADMIN, code).balance


def _account(s, party_id: int) -> str:
    found = s.get(SharingAccount, party_id)
    assert found is not None
    return found.account_code


def _events(s, action: str) -> int:
    return len(s.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)).all())


def test_a_reversal_pays_every_fen_back_once(database, world):
    run_id = _paid(database, world)
    wei = world.households["wei"]
    with database.unit_of_work() as s:
        accounts = {key: _account(s, party) for key, party in world.households.items()}
        assert {k: _balance(s, a) for k, a in accounts.items()} == {
            "wei": 21_000_00, "luo": 10_500_00, "huang": 10_500_00, "cen": 7_000_00,
            "li": 21_000_00}
        assert _balance(s, _account(s, world.dalang)) == 18_000_00
        assert _balance(s, "FUND") == 400_000_00
    with database.unit_of_work() as s:
        result = reversal.reverse_run(s, REVIEWER, run_id,
                                      reason="  登记日期有误 wrong record date ")
        run = result.run
        assert not result.replayed and run.status == "reversed"
        assert (run.reversed_on, run.reversed_by) == (TODAY, REVIEWER.label)
        assert run.reversal_reason == "登记日期有误 wrong record date"
        pairs = run.reversal_transaction_ids
    assert len(pairs) == 1  # 7 lines: one transaction
    with database.unit_of_work() as s:
        assert {k: _balance(s, a) for k, a in accounts.items()} == dict.fromkeys(accounts, 0)
        assert _balance(s, _account(s, world.dalang)) == 0
        assert _balance(s, "FUND") == 500_000_00
        view = core.get_transaction(s, ADMIN, pairs[0][1])
        assert view.reverses_id == pairs[0][0] and view.effective_date == TODAY
        assert s.scalar(sa.select(SharingFund.attributed_fen)) == 0
    # a second reverse answers the same and pays back nothing more
    with database.unit_of_work() as s:
        again = reversal.reverse_run(s, REVIEWER, run_id, reason="again")
        assert again.replayed and again.run.reversal_transaction_ids == pairs
        assert again.run.reversal_reason == "登记日期有误 wrong record date"
        assert _balance(s, "FUND") == 500_000_00
        assert _events(s, "sharing.run.reverse") == 1
        assert len(s.scalars(core.list_transactions(s, ADMIN, type="reversal")).all()) == 1
        assert verify(s, ADMIN) == []
    # traceability: the household kept nothing net, the reversal is listed
    with database.unit_of_work() as s:
        household = trace.trace_household(s, ADMIN, wei)
        [receipt] = household["receipts"]
        assert (household["paid_fen"], household["reversed_fen"], household["received_fen"]) \
            == (21_000_00, 21_000_00, 0)
        assert receipt["status"] == "reversed" and receipt["reversed_on"] == TODAY
        assert receipt["reversal_transaction_id"] == pairs[0][1]
        assert [src["amount_fen"] for src in receipt["sources"]] == [12_600_00, 8_400_00]
        assert [p["amount_fen"] for p in household["by_payer"]] == [0, 0]
        payment = trace.trace_payment(s, ADMIN, world.inflows[0], detail=True)
        assert (payment["distributed_fen"], payment["undistributed_fen"]) == (0, 300_000_00)
        assert payment["recipients"] == [] and payment["by_village"] == []
        assert [(r["run_id"], r["amount_fen"], r["reversed_on"], r["reason"])
                for r in payment["reversed_runs"]] == [
            (run_id, 60_000_00, TODAY, "登记日期有误 wrong record date")]
        public = trace.trace_payment(s, None, world.inflows[1], detail=False)
        assert [(r["amount_fen"], "reason" in r) for r in public["reversed_runs"]] == \
            [(40_000_00, False)]
        inflows = trace.fund_inflows(s, ADMIN, "FUND")
        assert [i["unattributed_fen"] for i in inflows] == [300_000_00, 200_000_00]
        sources = trace.run_sources(s, run_id)
        assert sources["status"] == "reversed"
        assert [x["amount_fen"] for x in sources["sources"]] == [60_000_00, 40_000_00]


def test_statements_and_period_totals_show_the_reversal(database, world):
    run_id = _paid(database, world)
    wei = world.households["wei"]
    with database.unit_of_work() as s:
        reversal.reverse_run(s, REVIEWER, run_id, reason="重复发放 paid twice")
    with database.unit_of_work() as s:
        st = statements.household_statement(s, ADMIN, wei)
        page = statements.household_html(st)
        village = statements.village_statement(s, ADMIN, world.dalang)
        vpage = statements.village_html(village)
        book = openpyxl.load_workbook(io.BytesIO(statements.household_xlsx(st)))
        vbook = openpyxl.load_workbook(io.BytesIO(statements.village_xlsx(village)))
        rows = totals.paid_by_village(s, ADMIN, date_from=TODAY, date_to=TODAY)
        march = totals.paid_by_village(s, ADMIN, date_from=dt.date(2025, 3, 1),
                                       date_to=dt.date(2025, 3, 31))
        next_month = totals.paid_by_village(s, ADMIN, date_from=dt.date(2025, 4, 1),
                                            date_to=dt.date(2025, 4, 30))
    assert "红字冲销 reversal" in page and "-21000.00" in page and "重复发放 paid twice" in page
    assert "<td>21000.00</td>" in page  # the payment, then its reversal; total 0.00
    assert "合计 Total</td><td></td><td></td><td></td><td>0.00</td>" in page
    [entry] = village["runs"]
    assert (entry["status"], entry["total_fen"], entry["net_fen"]) == \
        ("reversed", 60_000_00, 0)
    assert (village["total_fen"], village["reversed_fen"]) == (0, 60_000_00)
    assert "-60000.00" in vpage
    sheet = list(book["对账单 Statement"].iter_rows(values_only=True))
    # the payment (two sources), its red-ink reversal (the same two, negative), the net total
    assert [(r[1], r[5], r[8]) for r in sheet[1:]] == [
        ("利益分配 benefit distribution", 21_000_00, 12_600_00), (None, None, 8_400_00),
        ("红字冲销 reversal", -21_000_00, -12_600_00), (None, None, -8_400_00),
        (None, 0, None)]
    vsheet = list(vbook["村对账单 Village"].iter_rows(values_only=True))
    assert [r[10] for r in vsheet if r[2] == "红字冲销 reversal"] == [-60_000_00]
    assert vsheet[-1][10] == 0
    # paid and reversed on the same day: a positive and a negative row per village, net zero
    assert rows == march and next_month == []
    assert [(r["village_party_id"], r["reversal"], r["runs"], r["households"],
             r["households_fen"], r["collective_fen"]) for r in rows] == [
        (world.dalang, False, 1, 3, 42_000_00, 18_000_00),
        (world.dalang, True, -1, -3, -42_000_00, -18_000_00),
        (world.xinhe, False, 1, 2, 28_000_00, 12_000_00),
        (world.xinhe, True, -1, -2, -28_000_00, -12_000_00)]


def test_a_reversal_in_a_later_month_is_negative_in_that_month(database, world):
    run_id = _paid(database, world)
    with time_machine.travel(dt.datetime(2025, 4, 2, 4, 0, tzinfo=dt.UTC), tick=False):
        with database.unit_of_work() as s:
            reversal.reverse_run(s, REVIEWER, run_id, reason="late correction")
        with database.unit_of_work() as s:
            march = totals.paid_by_village(s, ADMIN, date_from=dt.date(2025, 3, 1),
                                           date_to=dt.date(2025, 3, 31))
            april = totals.paid_by_village(s, ADMIN, date_from=dt.date(2025, 4, 1),
                                           date_to=dt.date(2025, 4, 30))
            wei = world.households["wei"]
            in_march = trace.trace_household(s, ADMIN, wei, date_from=dt.date(2025, 3, 1),
                                             date_to=dt.date(2025, 3, 31))
            in_april = trace.trace_household(s, ADMIN, wei, date_from=dt.date(2025, 4, 1),
                                             date_to=dt.date(2025, 4, 30))
    assert [r["reversal"] for r in march] == [False, False]
    assert sum(r["households_fen"] + r["collective_fen"] for r in march) == 100_000_00
    assert [r["reversal"] for r in april] == [True, True]
    assert sum(r["households_fen"] + r["collective_fen"] for r in april) == -100_000_00
    assert in_march["received_fen"] == 21_000_00 and in_april["received_fen"] == -21_000_00
    assert [p["amount_fen"] for p in in_april["by_payer"]] == [-12_600_00, -8_400_00]


def test_the_fund_can_distribute_again_after_a_reversal(database, world):
    """The reversed run's attribution no longer counts: the whole fund (500,000.00) can be
    distributed and attributed again, 300,000.00 to A's payment and 200,000.00 to B's."""
    first = _paid(database, world)
    with database.unit_of_work() as s:
        reversal.reverse_run(s, REVIEWER, first, reason="wrong rule")
    second = _paid(database, world, amount=500_000_00, reference="R2")
    with database.unit_of_work() as s:
        assert s.get(SharingRun, second).status == "paid"
        assert [x["amount_fen"] for x in trace.run_sources(s, second)["sources"]] == \
            [300_000_00, 200_000_00]
        payment = trace.trace_payment(s, ADMIN, world.inflows[0], detail=True)
        assert (payment["distributed_fen"], payment["undistributed_fen"]) == (300_000_00, 0)
        assert [r["run_id"] for r in payment["reversed_runs"]] == [first]
        household = trace.trace_household(s, ADMIN, world.households["wei"])
        assert household["received_fen"] == 105_000_00  # 5 x 21,000.00, the first netted out
        assert verify(s, ADMIN) == []


def test_only_a_paid_distribution_by_someone_else_is_reversed(database, world):
    run_id = _paid(database, world)
    with database.unit_of_work() as s:
        prepared = _prepare(s, world, reference="R2").id
    cases = [
        (PREPARER, run_id, "x", errors.OwnRunReversal),  # four eyes
        (Principal(role=Role.AUDITOR, label="auditor"), run_id, "x", Forbidden),
        (REVIEWER, run_id, "", ValidationFailed),
        (REVIEWER, run_id, "   ", ValidationFailed),
        (REVIEWER, run_id, "x" * 501, ValidationFailed),
        (REVIEWER, run_id, None, ValidationFailed),
        (REVIEWER, prepared, "x", errors.RunNotReversible),
        (REVIEWER, 999_999, "x", errors.RunNotFound),
        (REVIEWER, 2**63, "x", errors.RunNotFound),
    ]
    for actor, target, reason, refusal in cases:
        with pytest.raises(refusal), database.unit_of_work() as s:
            reversal.reverse_run(s, actor, target, reason=reason)
    with database.unit_of_work() as s:
        runs.cancel_run(s, APPROVER, prepared)
    with pytest.raises(errors.RunNotReversible), database.unit_of_work() as s:
        reversal.reverse_run(s, REVIEWER, prepared, reason="x")
    with database.unit_of_work() as s:
        assert s.get(SharingRun, run_id).status == "paid"
        assert _events(s, "sharing.run.reverse") == 0
        assert s.scalars(core.list_transactions(s, ADMIN, type="reversal")).all() == []
        assert _balance(s, "FUND") == 400_000_00


def test_a_single_tree_purchase_is_not_reversed_here(database, world):
    from ledger.sharing.services import config

    with database.unit_of_work() as s:
        config.create_programme(s, ADMIN, code="WM", name_zh="望谟单株碳汇", name_en=None,
                                price_fen_per_tree_year=300, max_trees_per_household=450,
                                max_trees_per_mu=0, term_years=5)
        bought = runs.create_purchase(s, ADMIN, reference="P1", programme_code="WM",
                                      buyer_account_code="BUYER",
                                      collective_party_ids=[world.dalang],
                                      record_date=dt.date(2025, 3, 1)).run.id
    with pytest.raises(errors.RunNotReversible, match="single-tree"), \
            database.unit_of_work() as s:
        reversal.reverse_run(s, REVIEWER, bought, reason="x")


def test_a_reversal_is_all_or_nothing(database, world, monkeypatch):
    """Two credits per ledger transaction: the run is paid in 4 transactions. Li (the last
    line) has spent 1 fen of his 21,000.00, so the last reversal is refused: the three before
    it, flushed already, are rolled back with it."""
    monkeypatch.setattr(runs, "CREDITS_PER_TRANSACTION", 2)
    run_id = _paid(database, world)
    with database.unit_of_work() as s:
        li = _account(s, world.households["li"])
        batch = s.get(SharingRun, run_id).ledger_batch_id
        assert len(core.get_batch(s, ADMIN, batch)[1]) == 4
        core.post(s, ADMIN, transfer(li, "TOWNSHIP", 1), action="ledger.transaction.create")
    with pytest.raises(core.InsufficientBalance), database.unit_of_work() as s:
        reversal.reverse_run(s, REVIEWER, run_id, reason="x")
    with database.unit_of_work() as s:
        assert s.get(SharingRun, run_id).status == "paid"
        assert s.scalars(core.list_transactions(s, ADMIN, type="reversal")).all() == []
        assert _balance(s, "FUND") == 400_000_00 and _balance(s, li) == 21_000_00 - 1
        assert _events(s, "sharing.run.reverse") == 0
        assert verify(s, ADMIN) == []


def test_verify_finds_a_reversal_the_ledger_does_not_hold(database, world):
    run_id = _paid(database, world)
    with database.unit_of_work() as s:
        reversal.reverse_run(s, REVIEWER, run_id, reason="x")
    with database.unit_of_work() as s:
        run = s.get(SharingRun, run_id)
        run.reversal_transaction_ids = [[run.reversal_transaction_ids[0][0], 1]]
    with database.unit_of_work() as s:
        assert any("not all reversed" in p for p in verify(s, ADMIN))
