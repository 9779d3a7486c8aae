"""Pilot fixtures: the carbon registry's test world (a Wangmo afforestation batch of vintage
2023 owned by the Dalang collective, a thermal-power plant party), the plant holding 500 t of
that batch and 1,000,000.00 yuan, a forest compensation fund, and the 2025 pilot rule
(0.5 % of verified emissions, 50.00 yuan per tonne, Qianxinan forest credits of 2021-2025)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import time_machine

from ecovalue.auth import Principal, Role, system_principal
from ledger import core
from ledger.carbon.services import credits
from ledger.pilot.services import rules
from tests.ledger.carbon.conftest import World, issued_batch, make_world

ADMIN = system_principal("pilot-test")
#: the clock of the pilot tests: 10:00 in Shanghai on 20 March 2026 (2025 is a past year,
#: its report deadline 31 March 2026 and settlement deadline 31 December 2026 ahead)
NOW = dt.datetime(2026, 3, 20, 2, 0, tzinfo=dt.UTC)
FUND = "TEST-FOREST-FUND"
PLANT_CNY = "TEST-PLANT-CNY"
PLANT_MONEY_FEN = 100_000_000  # 1,000,000.00 yuan
PLANT_CREDITS_T = 500
RULE_2025 = {"share_bp": 50, "fee_fen_per_tco2": 5_000, "eligible_region_code": "522300",
             "eligible_methodologies": ["afforestation", "forest_management"],
             "vintage_from": 2021, "vintage_to": 2025,
             "report_deadline": dt.date(2026, 3, 31),
             "settlement_deadline": dt.date(2026, 12, 31), "fund_account_code": FUND}


@dataclasses.dataclass
class Pilot:
    world: World
    batch: str  #: asset code of the eligible batch
    plant_credits: str  #: the plant's carbon account in it (code)
    collective_credits: str  #: the owner's account (code), another party's credits
    plant: Principal  #: a trader acting for the plant
    other_plant: Principal  #: a trader acting for another enterprise (world.buyer)
    verifier: Principal


def make_pilot(database) -> Pilot:
    world = make_world(database)
    batch = issued_batch(database, world)
    with database.unit_of_work() as s:
        core.create_asset(s, ADMIN, code="CNY", kind="currency", name_zh="人民币")
        for party, kind, code in ((world.plant, "external", "TEST-PLANT-BANK"),
                                  (world.plant, "holding", PLANT_CNY),
                                  (world.buyer, "holding", "TEST-BUYER-CNY"),
                                  (world.bureau, "fund", FUND)):
            core.create_account(s, ADMIN, party_id=party, asset="CNY", kind=kind, code=code)
        core.post(s, ADMIN, core.TransactionSpec(type="deposit", postings=[
            core.PostingSpec("TEST-PLANT-BANK", "CNY", "debit", PLANT_MONEY_FEN),
            core.PostingSpec(PLANT_CNY, "CNY", "credit", PLANT_MONEY_FEN)]), now=NOW)
        owner = credits.tradable_account(s, ADMIN, credits.batch_of(s, batch), world.collective)
        moved = credits.transfer(s, ADMIN, account=owner.code, to_party_id=world.plant,
                                 quantity_t=PLANT_CREDITS_T, now=NOW)
        rules.put_rule(s, ADMIN, 2025, RULE_2025, now=NOW)
    return Pilot(world, batch, moved.target.code, owner.code,
                 Principal(role=Role.TRADER, label="token:plant", token_id=901,
                           party_id=world.plant),
                 Principal(role=Role.TRADER, label="token:other", token_id=902,
                           party_id=world.buyer),
                 Principal(role=Role.VERIFIER, label="token:verifier", token_id=903))


@pytest.fixture()
def pilot(database) -> Pilot:
    with time_machine.travel(NOW, tick=False):
        return make_pilot(database)


@pytest.fixture()
def frozen():
    """The wall clock at NOW, for tests through HTTP (the services read ecovalue.clock)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller
