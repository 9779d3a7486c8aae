"""Traceability both ways sums exactly, after random sequences of inflows and distributions
(Hypothesis, on the database: each example gets a fund and villages of its own)."""

from __future__ import annotations

import datetime as dt
import itertools

import sqlalchemy as sa
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.services import parties
from ledger import core
from ledger.sharing.models import SharingRun, SharingRunAttribution
from ledger.sharing.services import config, register, runs, trace
from tests.ledger.sharing.conftest import (
    ADMIN,
    APPROVER,
    JOINED,
    NOW,
    PREPARER,
    SANMING,
    make_household,
    make_world,
    transfer,
)

_example = itertools.count(1)

operations = st.lists(st.one_of(
    st.tuples(st.just("inflow"), st.sampled_from(["PLANT-A", "PLANT-B", "BUYER"]),
              st.integers(1, 5_000_000)),
    st.tuples(st.just("distribute"), st.integers(1, 100), st.integers(1, 3_000_000))),
    min_size=1, max_size=12)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations, shares=st.lists(st.integers(0, 9), min_size=2, max_size=6))
def test_both_directions_sum_exactly(database, ops, shares):
    n = next(_example)
    with time_machine.travel(NOW, tick=False):
        if n == 1:
            make_world(database, inflows=())
        with database.unit_of_work() as s:
            fund = f"FUND-{n}"
            bureau = parties.create_party(s, ADMIN, {"kind": "government",
                                                     "name_zh": f"基金{n}",
                                                     "region_code": "522300"}).id
            core.create_account(s, ADMIN, party_id=bureau, asset="CNY", kind="fund", code=fund)
            config.register_fund(s, ADMIN, account_code=fund, name_zh=f"基金{n}")
            collective = parties.create_party(s, ADMIN, {
                "kind": "village_collective", "name_zh": f"村{n}",
                "region_code": "522326104201"}).id
            households = []
            for i, share in enumerate(shares):
                h = make_household(s, f"户{n}-{i}")
                register.record_entry(s, ADMIN, collective_party_id=collective,
                                      household_party_id=h, effective_date=JOINED,
                                      shares=share if i else max(share, 1))
                households.append(h)
            config.create_rule(s, ADMIN, code=f"R{n}", name_zh="规则", name_en=None,
                               source_kind="fund", source_ref=fund, definition=SANMING)
        inflows: dict[int, int] = {}
        distributed = 0
        for step, op in enumerate(ops):
            with database.unit_of_work() as s:
                if op[0] == "inflow":
                    tx = core.post(s, ADMIN, transfer(op[1], fund, op[2]))
                    inflows[tx.id] = op[2]
                    continue
                available = core.account_balance(s, ADMIN, fund).available or 0
                amount = min(op[2], available)
                if amount <= 0:
                    continue
                run = runs.prepare_run(s, PREPARER, reference=f"P{n}-{step}", fund_code=fund,
                                       rule_code=f"R{n}", amount_fen=amount,
                                       collective_party_ids=[collective],
                                       record_date=dt.date(2025, 3, 1)).run
                runs.approve_run(s, APPROVER, run.id)
                distributed += amount
        with database.unit_of_work() as s:
            traced = 0
            for tx_id, amount in inflows.items():
                out = trace.trace_payment(s, ADMIN, tx_id, detail=True)
                parts = sum(r.amount_fen for r in out["recipients"])
                assert out["amount_fen"] == amount
                assert parts + out["undistributed_fen"] == amount
                assert all(r.amount_fen > 0 for r in out["recipients"])
                traced += parts
            assert traced == distributed
            received = 0
            for h in [collective, *households]:
                got = trace.trace_household(s, ADMIN, h)
                for receipt in got["receipts"]:
                    assert sum(x["amount_fen"] for x in receipt["sources"]) == \
                        receipt["amount_fen"]
                    assert {x["transaction_id"] for x in receipt["sources"]} <= set(inflows)
                received += got["received_fen"]
            assert received == distributed
            assert core.verify(s, ADMIN) == []
        with database.unit_of_work() as s:
            _stored_answers_are_the_recomputed_ones(s, fund, list(inflows),
                                                    [collective, *households])


def _answers(s, inflow_ids, party_ids):
    return ([trace.trace_payment(s, ADMIN, tx_id, detail=True) for tx_id in inflow_ids],
            [trace.trace_household(s, ADMIN, h) for h in party_ids])


def _stored_answers_are_the_recomputed_ones(s, fund_code, inflow_ids, party_ids):
    """The attribution stored when a run is paid is the matrix recomputed from its lines and
    sources, and both queries answer the same with it as without it."""
    fund = config.get_fund(s, fund_code)
    paid = s.scalars(sa.select(SharingRun).where(SharingRun.fund_id == fund.id,
                                                 SharingRun.status == "paid")).all()
    for run in paid:
        assert trace.stored_matrix(s, run.id) is not None
        _, ids, stored = trace._run_matrix(s, run)
        _, recomputed_ids, recomputed = trace._run_matrix(s, run, stored=False)
        assert ids == recomputed_ids
        assert stored.tolist() == recomputed.tolist()
    with_stored = _answers(s, inflow_ids, party_ids)
    nested = s.begin_nested()
    s.execute(sa.delete(SharingRunAttribution).where(
        SharingRunAttribution.run_id.in_([run.id for run in paid])))
    assert all(trace.stored_matrix(s, run.id) is None for run in paid)
    recomputed_answers = _answers(s, inflow_ids, party_ids)
    nested.rollback()
    assert with_stored == recomputed_answers
