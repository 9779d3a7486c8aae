"""The period report's market and benefit-sharing sections, on what those packages really
post: market trades settled through the market's services, a distribution paid through the
sharing services (each on its own clock: 20 March 2025, 12:00 in Shanghai)."""

from __future__ import annotations

import datetime as dt

import time_machine

from ledger.market.services import listings
from ledger.reconcile.services import reports
from ledger.sharing.services import config, reversal, runs
from tests.ledger.carbon.conftest import ADMIN as CARBON_ADMIN
from tests.ledger.carbon.conftest import NOW
from tests.ledger.market.conftest import LATER, make_market
from tests.ledger.reconcile.conftest import SIGNER
from tests.ledger.sharing.conftest import ADMIN, APPROVER, PREPARER, SANMING, make_world

MARCH = dt.date(2025, 3, 1)


def _sections(database):
    with database.session(write=False) as s:
        report = reports.build_report(s, SIGNER, MARCH)
    return {section.key: section for section in report.sections}


def test_market_section_sums_trades_tonnes_value_and_fees_by_day_batch_and_mode(database):
    with time_machine.travel(NOW, tick=False):
        market = make_market(database)
        with database.unit_of_work() as s:
            listing = listings.create_listing(
                s, CARBON_ADMIN, side="sell", batch=market.batch, quantity_t=300,
                price_fen_per_tco2e=5_000, expires_at=LATER, party_id=market.seller, now=NOW)
            trades = [listings.take(s, CARBON_ADMIN, listing.id, quantity_t=q,
                                    party_id=market.plant, now=NOW) for q in (120, 30)]
            day = trades[0].trade_date
            fees = sum(t.fee_fen for t in trades)
        sections = _sections(database)
    market_section = sections["market"]
    assert market_section.title_zh == "碳汇交易"
    # 150 t at 50.00 yuan: 7,500.00 yuan, the fees as the market charged them
    assert market_section.rows == [[day, market.batch, "挂牌 listed", 2, 150, 750_000, fees,
                                    "7,500.00"]]
    assert fees > 0 and "2 trades, 150 tCO2e" in market_section.note


def _paid_run(database, amount_fen: int, villages: list[int]) -> int:
    """A Sanming 30/70 distribution of the demo fund, prepared and approved (paid)."""
    with database.unit_of_work() as s:
        config.create_rule(s, ADMIN, code="SANMING", name_zh="三明林票 30/70", name_en=None,
                           source_kind="fund", source_ref="FUND", definition=SANMING)
        run_id = runs.prepare_run(
            s, PREPARER, reference="R1", fund_code="FUND", rule_code="SANMING",
            amount_fen=amount_fen, collective_party_ids=villages, record_date=MARCH).run.id
    with database.unit_of_work() as s:
        runs.approve_run(s, APPROVER, run_id)
    return run_id


def test_sharing_section_per_fund_and_village_with_household_counts(database):
    with time_machine.travel(NOW, tick=False):
        world = make_world(database)
        run_id = _paid_run(database, 123_456_78, [world.dalang, world.xinhe])
        with database.session(write=False) as s:
            lines = list(s.scalars(runs.lines_of(s, ADMIN, run_id)))
        sections = _sections(database)
    section = sections["sharing"]
    columns = [en for _, en in section.columns]
    rows = [dict(zip(columns, row, strict=True)) for row in section.rows]
    assert sum(r["total_fen"] for r in rows) == 123_456_78
    assert {r["fund_or_programme"] for r in rows} == {"FUND"}
    for village in (world.dalang, world.xinhe):
        [row] = [r for r in rows if r["village_party_id"] == village]
        mine = [x for x in lines if x.village_party_id == village]
        assert row["households"] == len({x.party_id for x in mine
                                         if x.kind == "household" and x.amount_fen > 0}) > 0
        assert row["households_fen"] == sum(x.amount_fen for x in mine if x.kind == "household")
        assert row["collective_fen"] == sum(x.amount_fen for x in mine
                                            if x.kind == "collective")
        assert row["village"].endswith("股份经济合作社") and row["runs"] == 1
    assert "FUND: 123,456.78 yuan" in section.note
    # the distribution's ledger transactions are listed too, and the other sections are empty
    assert sections["distributions"].rows and not sections["market"].rows


def test_a_run_reversed_in_the_month_shows_as_negative_red_ink_rows(database):
    with time_machine.travel(NOW, tick=False):
        world = make_world(database)
        run_id = _paid_run(database, 1_000_00, [world.dalang])
        with database.unit_of_work() as s:
            reversal.reverse_run(s, APPROVER, run_id, reason="登记有误 wrong register")
        section = _sections(database)["sharing"]
    columns = [en for _, en in section.columns]
    rows = [dict(zip(columns, row, strict=True)) for row in section.rows]
    paid = [r for r in rows if r["kind"] == "分配 distribution"]
    red = [r for r in rows if r["kind"] == "分配 distribution · 红字冲销 reversal"]
    assert len(paid) == len(red) == 1
    assert paid[0]["total_fen"] == 1_000_00 and red[0]["total_fen"] == -1_000_00
    assert red[0]["runs"] == -1 and red[0]["households"] == -paid[0]["households"]
    assert "FUND: 0.00 yuan" in section.note
