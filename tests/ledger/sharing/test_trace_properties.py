"""Traceability both ways sums exactly, after random sequences of inflows and distributions
(Hypothesis, on the database: each example gets a fund and villages of its own)."""

from __future__ import annotations

import datetime as dt
import itertools

import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.services import parties
from ledger import core
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
