"""Register, rules, runs, purchases and traceability through the services, on the database."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from ecovalue.auth import system_principal
from ecovalue.errors import Forbidden, ValidationFailed
from ledger import core
from ledger.sharing import errors
from ledger.sharing.services import config, register, runs, trace
from tests.ledger.sharing.conftest import (
    ADMIN,
    APPROVER,
    JOINED,
    NOW,
    PREPARER,
    SANMING,
    make_household,
    transfer,
)

RECORD = dt.date(2025, 3, 1)


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _rule(s, code="SANMING", definition=SANMING):
    return config.create_rule(s, ADMIN, code=code, name_zh="三明林票 30/70", name_en=None,
                              source_kind="fund", source_ref="FUND", definition=definition)


def _prepare(s, world, amount=100_000_00, reference="R1", **kwargs):
    return runs.prepare_run(s, PREPARER, reference=reference, fund_code="FUND",
                            rule_code=kwargs.pop("rule_code", "SANMING"), amount_fen=amount,
                            collective_party_ids=kwargs.pop("collectives",
                                                            [world.dalang, world.xinhe]),
                            record_date=kwargs.pop("record_date", RECORD), **kwargs).run


def test_register_as_of_follows_the_history(database, world):
    with database.unit_of_work() as s:
        wei = world.households["wei"]
        register.record_entry(s, ADMIN, collective_party_id=world.dalang,
                              household_party_id=wei, effective_date=dt.date(2025, 2, 1),
                              shares=5, members=3, trees=450, area_m2=1334, reason="transfer")
        register.record_entry(s, ADMIN, collective_party_id=world.dalang,
                              household_party_id=world.households["luo"],
                              effective_date=dt.date(2025, 3, 1), status="left")
    with database.unit_of_work() as s:
        jan = {r.household_party_id: r.shares for r in
               register.register_as_of(s, ADMIN, world.dalang, dt.date(2025, 1, 15))}
        mar = {r.household_party_id: r.shares for r in
               register.register_as_of(s, ADMIN, world.dalang, dt.date(2025, 3, 1))}
        rows = register.register_as_of(s, ADMIN, world.dalang, dt.date(2025, 3, 1))
    assert jan == {wei: 2, world.households["luo"]: 1, world.households["huang"]: 1}
    assert mar == {wei: 5, world.households["huang"]: 1}
    assert all(r.bank_account_masked.startswith("*") for r in rows)
    assert all("*" in r.id_number_masked for r in rows)


def test_a_distribution_pays_once_in_one_batch_and_sums_exactly(database, world):
    with database.unit_of_work() as s:
        _rule(s)
        run = _prepare(s, world, amount=100_000_01)
        run_id = run.id
        assert run.status == "prepared"
    with database.unit_of_work() as s:
        paid = runs.approve_run(s, APPROVER, run_id).run
        assert paid.status == "paid" and paid.ledger_batch_id
    with database.unit_of_work() as s:
        again = runs.approve_run(s, APPROVER, run_id)
        assert again.replayed
        lines = s.scalars(runs.lines_of(s, ADMIN, run_id)).all()
        assert sum(ln.amount_fen for ln in lines) == 100_000_01
        # households split evenly between the villages (3 vs 2 households): 6,000,001 fen
        # to Dalang and 4,000,000 to Xinhe; each collective 30 %, its households 70 % by shares
        by = {(ln.kind, ln.party_id): ln.amount_fen for ln in lines}
        assert by[("collective", world.dalang)] == 18_000_00
        assert by[("household", world.households["wei"])] == 21_000_01
        assert by[("household", world.households["li"])] == 21_000_00
        balance = core.account_balance(s, ADMIN, "FUND").balance
        assert balance == 500_000_00 - 100_000_01
        assert core.verify(s, ADMIN) == []
        # the same reference and terms again: the first run, nothing new
        replay = runs.prepare_run(s, PREPARER, reference="R1", fund_code="FUND",
                                  rule_code="SANMING", amount_fen=100_000_01,
                                  collective_party_ids=[world.dalang, world.xinhe],
                                  record_date=RECORD)
        assert replay.replayed and replay.run.id == run_id
        with pytest.raises(errors.ReferenceTaken):
            _prepare(s, world, amount=5)


def test_traceability_both_ways_sums_exactly(database, world):
    with database.unit_of_work() as s:
        _rule(s)
        run_id = _prepare(s, world, amount=123_456_78).id
    with database.unit_of_work() as s:
        runs.approve_run(s, APPROVER, run_id)
    with database.unit_of_work() as s:
        total = 0
        for inflow, amount in zip(world.inflows, (300_000_00, 200_000_00), strict=True):
            out = trace.trace_payment(s, ADMIN, inflow, detail=True)
            parts = sum(r.amount_fen for r in out["recipients"])
            assert parts + out["undistributed_fen"] == out["amount_fen"] == amount
            agg = sum(v["collective_fen"] + v["households_fen"] + v["accounts_fen"]
                      for v in out["by_village"])
            assert agg == parts
            total += parts
        assert total == 123_456_78
        # inflows 300,000 and 200,000 yuan: attributed 60 % / 40 %
        first = trace.trace_payment(s, ADMIN, world.inflows[0], detail=False)
        assert first["distributed_fen"] == 74_074_07
        assert "recipients" not in first
        for key, party in world.households.items():
            traced = trace.trace_household(s, ADMIN, party)
            for receipt in traced["receipts"]:
                assert sum(x["amount_fen"] for x in receipt["sources"]) == receipt["amount_fen"]
            assert {p["payer_name_zh"] for p in traced["by_payer"]} <= {
                "兴义火电厂(测试)", "册亨火电厂(测试)"}, key


def test_approving_ones_own_distribution_is_refused(database, world):
    with database.unit_of_work() as s:
        _rule(s)
        run_id = _prepare(s, world).id
    with database.unit_of_work() as s, pytest.raises(errors.FourEyesViolation):
        runs.approve_run(s, PREPARER, run_id)


def test_distributing_more_than_the_fund_holds_is_refused(database, world):
    with database.unit_of_work() as s:
        _rule(s)
        with pytest.raises(errors.FundInsufficient):
            _prepare(s, world, amount=500_000_01)
        run_id = _prepare(s, world, amount=400_000_00).id
        # the fund pays out elsewhere before the approval: the approval is refused
        core.post(s, ADMIN, transfer("FUND", "TOWNSHIP", 200_000_00))
    with database.unit_of_work() as s, pytest.raises(errors.FundInsufficient):
        runs.approve_run(s, APPROVER, run_id)
    with database.unit_of_work() as s:
        assert core.account_balance(s, ADMIN, "FUND").balance == 300_000_00
        assert runs.get_run(s, run_id).status == "prepared"


@pytest.mark.parametrize("amount", [-1, 0, 1.5, "100"])
def test_a_negative_or_odd_amount_is_refused(database, world, amount):
    with database.unit_of_work() as s:
        _rule(s)
        with pytest.raises(ValidationFailed) as refused:
            _prepare(s, world, amount=amount)
        assert refused.value.errors[0]["field"] == "amount_fen"


def test_shares_that_do_not_sum_to_the_whole_are_refused(database, world):
    bad = {"kind": "villages", "basis": "equal", "parts": [
        {"kind": "collective", "share_bp": 3000},
        {"kind": "households", "basis": "shares", "share_bp": 6000}]}
    with database.unit_of_work() as s, pytest.raises(errors.InvalidRule) as refused:
        _rule(s, definition=bad)
    assert refused.value.errors[0]["field"] == "definition.parts"


def test_a_rule_version_is_immutable_once_used(database, world):
    with database.unit_of_work() as s:
        _rule(s)
        _prepare(s, world)
        with pytest.raises(errors.RuleVersionUsed):
            config.replace_version(s, ADMIN, "SANMING", 1, SANMING)
        v2 = config.add_version(s, ADMIN, "SANMING", SANMING)
        assert v2.version == 2
        assert config.replace_version(s, ADMIN, "SANMING", 2, SANMING).version == 2


def test_unknown_households_and_record_dates_before_joining(database, world):
    with database.unit_of_work() as s:
        _rule(s)
        stranger = make_household(s, "外村某", "522326104202")
        with pytest.raises(errors.UnknownHousehold):
            _prepare(s, world, household_party_ids=[stranger])
        with pytest.raises(errors.UnknownHousehold):
            _prepare(s, world, household_party_ids=[world.dalang])
        late = make_household(s, "新户某")
        register.record_entry(s, ADMIN, collective_party_id=world.dalang,
                              household_party_id=late, effective_date=dt.date(2025, 3, 10),
                              shares=1)
        with pytest.raises(errors.RecordDateBeforeJoining):
            _prepare(s, world, household_party_ids=[late, world.households["wei"]])
        run = _prepare(s, world, household_party_ids=[world.households["wei"]],
                       collectives=[world.dalang])
        households = {ln.party_id for ln in s.scalars(runs.lines_of(s, ADMIN, run.id))
                      if ln.kind == "household"}
        assert households == {world.households["wei"]}


def test_the_register_is_fixed_up_to_a_paid_record_date(database, world):
    with database.unit_of_work() as s:
        _rule(s)
        run_id = _prepare(s, world).id
        runs.approve_run(s, APPROVER, run_id)
        with pytest.raises(errors.RegisterLocked):
            register.record_entry(s, ADMIN, collective_party_id=world.dalang,
                                  household_party_id=world.households["wei"],
                                  effective_date=RECORD, shares=9)
        register.record_entry(s, ADMIN, collective_party_id=world.dalang,
                              household_party_id=world.households["wei"],
                              effective_date=RECORD + dt.timedelta(days=1), shares=9)


def test_a_registrar_prepares_only_in_its_county(database, world):
    from ecovalue.auth.policy import Principal, Role

    wangmo = Principal(role=Role.REGISTRAR, label="token:9", token_id=9, county_code="522326")
    ceheng = Principal(role=Role.REGISTRAR, label="token:8", token_id=8, county_code="522327")
    with database.unit_of_work() as s:
        _rule(s)
        assert runs.prepare_run(s, wangmo, reference="R-WM", fund_code="FUND",
                                rule_code="SANMING", amount_fen=100, record_date=RECORD,
                                collective_party_ids=[world.dalang]).run.status == "prepared"
        with pytest.raises(Forbidden):
            runs.prepare_run(s, ceheng, reference="R-CH", fund_code="FUND",
                             rule_code="SANMING", amount_fen=100, record_date=RECORD,
                             collective_party_ids=[world.dalang])


def test_single_tree_purchase_pays_households_in_full(database, world):
    with database.unit_of_work() as s:
        programme = config.create_programme(
            s, ADMIN, code="WANGMO", name_zh="望谟单株碳汇", name_en="Wangmo single-tree",
            price_fen_per_tree_year=300, max_trees_per_household=450, max_trees_per_mu=225,
            term_years=5)
        assert programme.price_fen_per_tree_year == 300
        result = runs.create_purchase(s, ADMIN, reference="P1", programme_code="WANGMO",
                                      buyer_account_code="BUYER", record_date=RECORD,
                                      collective_party_ids=[world.dalang, world.xinhe],
                                      years=2)
        lines = {ln.party_id: (ln.basis_value, ln.amount_fen)
                 for ln in s.scalars(runs.lines_of(s, ADMIN, result.run.id))}
    h = world.households
    # wei: 450 trees on 1,334 m2 (2.001 mu -> 450 allowed); luo: 300 trees, area not
    # registered; huang: 450 trees on 667 m2 (1.0005 mu -> 225 allowed); cen 450 on 3 mu
    # (capped at 450); li 100
    assert lines == {h["wei"]: (450, 450 * 300 * 2), h["luo"]: (300, 300 * 300 * 2),
                     h["huang"]: (225, 225 * 300 * 2), h["cen"]: (450, 450 * 300 * 2),
                     h["li"]: (100, 100 * 300 * 2)}
    with database.unit_of_work() as s:
        total = sum(a for _, a in lines.values())
        assert core.account_balance(s, ADMIN, "BUYER").balance == 10_000_000_00 - total
        traced = trace.trace_household(s, ADMIN, h["wei"])
        assert traced["receipts"][0]["sources"][0]["payer_name_zh"] == "碳汇买家(测试)"
        again = runs.create_purchase(s, ADMIN, reference="P1", programme_code="WANGMO",
                                     buyer_account_code="BUYER", record_date=RECORD,
                                     collective_party_ids=[world.dalang, world.xinhe], years=2)
        assert again.replayed
        assert core.account_balance(s, ADMIN, "BUYER").balance == 10_000_000_00 - total


def test_wangmo_published_village_totals(database, world):
    """Dalang 128 households x 450 trees x 3 yuan = 172,800 yuan a year; Xinhe 137 x 450 x 3
    = 184,950 yuan (published "17万多元", "18万多元")."""
    with database.unit_of_work() as s:
        config.create_programme(s, ADMIN, code="WANGMO", name_zh="望谟单株碳汇", name_en=None,
                                price_fen_per_tree_year=300, max_trees_per_household=450,
                                max_trees_per_mu=225, term_years=5)
        from catalog.services import parties

        villages = {}
        for name, region, count in (("打狼村(公布)", "522326104201", 128),
                                    ("新合村(公布)", "522326104202", 137)):
            collective = parties.create_party(s, ADMIN, {
                "kind": "village_collective", "name_zh": name, "region_code": region}).id
            for _ in range(count):
                household = make_household(s, "某户", region)
                register.record_entry(s, ADMIN, collective_party_id=collective,
                                      household_party_id=household, effective_date=JOINED,
                                      trees=480, area_m2=1334)  # more than the caps allow
            villages[name] = collective
        for name, expected in (("打狼村(公布)", 172_800_00), ("新合村(公布)", 184_950_00)):
            result = runs.create_purchase(s, ADMIN, reference=f"P-{name}",
                                          programme_code="WANGMO", buyer_account_code="BUYER",
                                          record_date=RECORD,
                                          collective_party_ids=[villages[name]])
            assert result.run.amount_fen == expected


def test_a_trader_buys_only_from_its_own_account(database, world):
    from ecovalue.auth.policy import Principal, Role

    buyer = Principal(role=Role.TRADER, label="token:5", token_id=5, party_id=world.buyer)
    other = Principal(role=Role.TRADER, label="token:6", token_id=6, party_id=world.plant_a)
    with database.unit_of_work() as s:
        config.create_programme(s, ADMIN, code="WANGMO", name_zh="望谟单株碳汇", name_en=None,
                                price_fen_per_tree_year=300, max_trees_per_household=450,
                                max_trees_per_mu=225, term_years=5)
        with pytest.raises(core.AccountNotOwned):
            runs.create_purchase(s, other, reference="P9", programme_code="WANGMO",
                                 buyer_account_code="BUYER", record_date=RECORD,
                                 collective_party_ids=[world.dalang])
        paid = runs.create_purchase(s, buyer, reference="P8", programme_code="WANGMO",
                                    buyer_account_code="BUYER", record_date=RECORD,
                                    collective_party_ids=[world.dalang])
        assert paid.run.status == "paid"
        out = trace.trace_payment(s, buyer, paid.run and s.scalars(
            runs.lines_of(s, ADMIN, paid.run.id)).first().transaction_id, detail=True)
        assert sum(r.amount_fen for r in out["recipients"]) == paid.run.amount_fen


def test_cancelled_runs_pay_nothing(database, world):
    with database.unit_of_work() as s:
        _rule(s)
        run_id = _prepare(s, world).id
        runs.cancel_run(s, APPROVER, run_id)
        with pytest.raises(errors.RunNotPrepared):
            runs.approve_run(s, APPROVER, run_id)
        assert core.account_balance(s, system_principal("t"), "FUND").balance == 500_000_00


def test_paid_by_village_sums_each_villages_lines(database, world):
    """The period reports' read: per fund and village, what a paid run sent to households,
    the collective and named accounts, and how many households it paid, from its lines."""
    from ledger.sharing.services import totals
    with database.unit_of_work() as s:
        _rule(s)
        run_id = _prepare(s, world, amount=123_456_78).id
    with database.unit_of_work() as s:
        paid = runs.approve_run(s, APPROVER, run_id).run
        day = paid.paid_on
        lines = list(s.scalars(runs.lines_of(s, ADMIN, run_id)))
        rows = totals.paid_by_village(s, ADMIN, date_from=day, date_to=day)
        assert totals.paid_by_village(s, ADMIN, date_from=day + dt.timedelta(days=1),
                                      date_to=day + dt.timedelta(days=30)) == []
    assert {r["fund_or_programme"] for r in rows} == {"FUND"}
    assert sum(r["households_fen"] + r["collective_fen"] + r["accounts_fen"]
               for r in rows) == 123_456_78
    for row in rows:
        mine = [x for x in lines if x.village_party_id == row["village_party_id"]]
        assert row["runs"] == 1 and row["kind"] == "distribution"
        assert row["households"] == len({x.party_id for x in mine
                                          if x.kind == "household" and x.amount_fen > 0})
        for kind in ("household", "collective", "account"):
            assert row[f"{kind}s_fen" if kind != "collective" else "collective_fen"] == sum(
                x.amount_fen for x in mine if x.kind == kind)
    assert {r["village_party_id"] for r in rows} >= {world.dalang, world.xinhe}


def test_lines_leave_room_on_postgresql_pages_for_their_one_update(database):
    """Paying a run sets each line's transaction id once; with fillfactor 50 that update stays
    on its page (a heap-only tuple update, no index entries), which halves the cost of paying
    100,000 lines (migration s0004)."""
    if database.dialect != "postgresql":
        pytest.skip("fillfactor is a PostgreSQL storage parameter; SQLite has none")
    with database.engine.connect() as conn:
        options = conn.exec_driver_sql(
            "SELECT reloptions FROM pg_class WHERE relname = 'sharing_run_lines'").scalar()
    assert options == ["fillfactor=50"]
